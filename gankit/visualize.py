"""Images people look at: sample grids (and, later, interpolations and progress GIFs)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid


def to_unit_range(images: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """Map images from a model's output range to [0, 1]."""
    low, high = value_range
    return ((images.float() - low) / (high - low)).clamp_(0.0, 1.0)


def from_unit_range(images: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """Map [0, 1] images into a model's value range."""
    low, high = value_range
    return images * (high - low) + low


def to_uint8_hwc(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] -> (N, H, W, C) uint8."""
    assert images.dim() == 4, f"expected (N, C, H, W), got {tuple(images.shape)}"
    array = (images.detach().float().cpu().clamp(0, 1) * 255.0).round().to(torch.uint8)
    return array.permute(0, 2, 3, 1).numpy()


def _pil(array_hwc: np.ndarray) -> Image.Image:
    return Image.fromarray(array_hwc[..., 0] if array_hwc.shape[-1] == 1 else array_hwc)


def grid_image(images: torch.Tensor, nrow: int | None = None, padding: int = 2) -> Image.Image:
    """(N, C, H, W) in [0, 1] -> one PIL image, `nrow` images per row (default: square-ish)."""
    nrow = nrow or max(1, math.ceil(math.sqrt(len(images))))
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, padding=padding, pad_value=1.0)
    if images.shape[1] == 1:
        grid = grid[:1]  # make_grid repeats grey to 3 channels; keep the PNG grey
    return _pil(to_uint8_hwc(grid.unsqueeze(0))[0])


def save_image_atomic(image: Image.Image, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    image.save(tmp)
    os.replace(tmp, path)
    return path


def save_grid(images: torch.Tensor, path: Path, nrow: int | None = None) -> Path:
    return save_image_atomic(grid_image(images, nrow), path)


def save_folder(images: torch.Tensor, folder: Path, prefix: str = "sample") -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(len(images))))
    return [save_image_atomic(_pil(a), folder / f"{prefix}-{i:0{width}d}.png")
            for i, a in enumerate(to_uint8_hwc(images))]


def save_npz(images: torch.Tensor, path: Path) -> Path:
    """An .npz holding `images`: uint8 (N, H, W, C), the layout other GAN tools read."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.npz")
    np.savez_compressed(tmp, images=to_uint8_hwc(images))
    os.replace(tmp, path)
    return path
