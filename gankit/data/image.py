"""Pixel operations: any PIL image -> a cropped, resized uint8 tensor; channel and size changes.

Every loader goes through these, so a folder of PNGs, CelebA and MNIST all end up with the same
crop, filter and channel conventions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageColor, ImageOps

from ..config import DataConfig
from ..errors import GankitError

CROPS = ("center", "random", "none")  # how a non-square image becomes square (data.crop)

_SIXTEEN_BIT = ("I", "I;16", "I;16L", "I;16B", "I;16N")  # older Pillow opened 16-bit PNGs as "I"
_GREY = ("1", "L", "LA", "La") + _SIXTEEN_BIT
_ALPHA = ("LA", "La", "PA", "RGBA", "RGBa")
_REDUCING_GAP = 3.0  # downscale by an integer box filter first, then Lanczos: fast and still sharp


def background_rgb(colour: str) -> tuple[int, int, int]:
    try:
        return ImageColor.getrgb(colour)[:3]
    except ValueError:
        raise GankitError(
            f"background colour {colour!r} is not understood: use a name such as white or black, "
            "or a hex value such as #808080"
        ) from None


def is_grey(img: Image.Image, background: tuple[int, int, int]) -> bool:
    """Whether `img` becomes one channel (from its mode and header alone: nothing decoded). A grey
    image with transparency over a coloured background is no longer grey."""
    # (16-bit images are rescaled to a fresh "L" image before compositing: their transparency is dropped)
    transparent = (img.mode in _ALPHA or "transparency" in img.info) and img.mode not in _SIXTEEN_BIT
    return img.mode in _GREY and not (transparent and not background[0] == background[1] == background[2])


def to_grey_or_rgb(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Any PIL mode -> "L" (greyscale sources) or "RGB"; transparency composited on `background`."""
    grey = is_grey(img, background)
    if img.mode in _SIXTEEN_BIT:
        # Scale the 16-bit range down (65535 -> 255); Pillow's own convert("L") would clip at 255.
        pixels = np.asarray(img, dtype=np.float32) / 257.0
        img = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "L")
    if img.mode in _ALPHA or "transparency" in img.info:
        canvas = Image.new("RGBA", img.size, background + (255,))
        img = Image.alpha_composite(canvas, img.convert("RGBA"))
    return img.convert("L" if grey else "RGB")


def square_around(box: tuple[float, float, float, float], width: int, height: int,
                  padding: float) -> tuple[int, int, int, int]:
    """The square (left, top, right, bottom) centred on box (x, y, w, h) with side
    max(w, h) * (1 + padding), shifted to stay inside the image, shrunk to fit if need be."""
    x, y, w, h = box
    side = min(round(max(w, h) * (1 + padding)), width, height)
    left = min(max(round(x + w / 2 - side / 2), 0), width - side)
    top = min(max(round(y + h / 2 - side / 2), 0), height - side)
    return left, top, left + side, top + side


def jittered(size: int, jitter: float) -> int:
    """The short side random crops of `size` are taken from."""
    return round(size * (1 + jitter))


def fit(img: Image.Image, size: int, crop: str,
        box: tuple[float, float, float, float] | None = None, padding: float = 0.0,
        jitter: float = 0.0) -> Image.Image:
    """Crop and resize to size x size (crop="random": short side = size x (1 + jitter); batches
    crop later).

    With a bounding box, the crop is a square around the box whatever `crop` says.
    """
    assert crop in CROPS, crop
    width, height = img.size
    if box is not None:
        img = img.crop(square_around(box, width, height, padding))
    elif crop == "center":
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        img = img.crop((left, top, left + side, top + side))
    elif crop == "random":
        short = jittered(size, jitter)
        scale = short / min(width, height)
        target = (max(short, round(width * scale)), max(short, round(height * scale)))
        return img.resize(target, Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)
    return img.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)


@dataclass(frozen=True)
class Preprocess:
    """What every decoded image goes through: EXIF orientation, mode, crop and resize."""

    size: int
    crop: str  # one of CROPS
    background: tuple[int, int, int]  # RGB that transparent pixels are composited onto
    bbox_padding: float
    jitter: float = 0.0  # crop random: the short side is size x (1 + jitter)

    @classmethod
    def from_config(cls, cfg: DataConfig) -> Preprocess:
        return cls(cfg.size, cfg.crop, background_rgb(cfg.background), cfg.bbox_padding, cfg.jitter)

    def __call__(self, img: Image.Image, box: tuple[float, float, float, float] | None = None
                 ) -> torch.Tensor:
        """A PIL image -> (C, h, w) uint8 with C = 1 for greyscale sources, else 3."""
        img = ImageOps.exif_transpose(img)  # boxes and crops refer to the image as it is displayed
        img = to_grey_or_rgb(img, self.background)
        img = fit(img, self.size, self.crop, box, self.bbox_padding, self.jitter)
        pixels = torch.from_numpy(np.array(img, dtype=np.uint8))  # (h, w) or (h, w, 3)
        return pixels.unsqueeze(0) if pixels.ndim == 2 else pixels.permute(2, 0, 1).contiguous()


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 (..., C, h, w) -> (..., channels, h, w): grey repeated to RGB, RGB to luma."""
    have = images.shape[-3]
    if have == channels:
        return images
    if channels == 3:
        return images.expand(*images.shape[:-3], 3, *images.shape[-2:]).contiguous()
    # ITU-R 601-2 luma with the integer weights of PIL's convert("L"), so tensors and files agree.
    r, g, b = images.to(torch.int32).unbind(-3)
    luma = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16
    return luma.to(torch.uint8).unsqueeze(-3)


def resize_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, h, h) -> (N, C, size, size), antialiased bicubic (clamped to 0..255)."""
    n, c, h, w = images.shape
    assert h == w, "in-memory datasets are square"
    if h == size:
        return images
    out = torch.empty(n, c, size, size, dtype=torch.uint8)
    chunk = 4096  # float copies of all of MNIST at 64 px would need several GB at once
    for start in range(0, n, chunk):
        part = images[start:start + chunk].float()
        part = F.interpolate(part, size=(size, size), mode="bicubic", antialias=True,
                             align_corners=False)
        out[start:start + chunk] = part.round_().clamp_(0, 255).to(torch.uint8)
    return out
