"""StyleGAN2-ADA's augmentations (Karras et al. 2020, appendix B), one small function per op.

Each op decides *per sample* whether it fires (probability `prob` = the pipeline's p times the
op's multiplier) and draws its parameter, returning the identity for the samples it skips. Every
op draws its random numbers for the whole batch, whether or not a sample fires, in the order and
shapes of the reference implementation (stylegan2-ada-pytorch, training/augment.py): with the
same seed both draw the same parameters, which is how tests/test_augment.py checks this file
against the paper's definitions. No op reads a tensor back to the host, so none stalls a GPU.

Three kinds, applied by the pipeline in this order:
  geometric  (n, prob, (H, W), device) -> (n, 3, 3): the *inverse* map, output pixel -> input
             pixel, in pixels from the image centre; the pipeline multiplies them in table order
             and resamples once (resample.py)
  colour     (n, prob, channels, device) -> (n, 4, 4) or None: a homogeneous map of a pixel's RGB
             vector, for images in [-1, 1]; the pipeline multiplies them and applies them once.
             None: the op does not apply to this many channels (hue and saturation on grey)
  image      (images, prob) -> images, for images in [-1, 1]: filtering, noise and cutout

Nothing is clamped: a clamp would make brightness and contrast lose information (so they could
leak into G) and would zero G's gradient on every clipped pixel.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import numpy as np
import torch

from .resample import reflect_index, wavelet_lowpass

Tensor = torch.Tensor
Size = tuple[int, int]


# ------------------------------------------------------------------ matrices (batched)


def _batched(rows: list[list], like: Tensor) -> Tensor:
    """A (n, R, C) matrix from rows of per-sample tensors (n,) and constants."""
    n, device = like.shape[0], like.device
    entries = [e if isinstance(e, Tensor) else torch.full((n,), float(e), device=device)
               for row in rows for e in row]
    return torch.stack(entries, dim=-1).view(n, len(rows), len(rows[0]))


def translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    return _batched([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def scale2d(sx: Tensor, sy: Tensor) -> Tensor:
    return _batched([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def rotate2d(theta: Tensor) -> Tensor:
    c, s = torch.cos(theta), torch.sin(theta)
    return _batched([[c, -s, 0], [s, c, 0], [0, 0, 1]], theta)


def translate3d(t: Tensor) -> Tensor:
    return _batched([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]], t)


def scale3d(s: Tensor) -> Tensor:
    return _batched([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]], s)


GREY = (1 / math.sqrt(3),) * 3  # the unit grey axis of RGB
LUMA_AXIS = (*GREY, 0.0)  # ... homogeneous


# Constants reach the GPU once per device: a CPU tensor copied in every call (torch.tensor(...,
# device=), .to(device)) is a pageable host-to-device copy, which synchronises with the GPU.
@functools.lru_cache(maxsize=8)
def _constant(values: tuple, device: str) -> Tensor:
    return torch.tensor(values, dtype=torch.float32, device=device)


def rotate3d(axis: tuple[float, float, float], theta: Tensor) -> Tensor:
    """Rotation by theta about a unit axis (Rodrigues' formula), homogeneous (n, 4, 4)."""
    x, y, z = axis
    s, c = torch.sin(theta), torch.cos(theta)
    cc = 1 - c
    return _batched([[x * x * cc + c, x * y * cc - z * s, x * z * cc + y * s, 0],
                     [y * x * cc + z * s, y * y * cc + c, y * z * cc - x * s, 0],
                     [z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c, 0],
                     [0, 0, 0, 1]], theta)


def _chosen(shape, prob: float, device) -> Tensor:
    """Which samples an op fires on: True with probability `prob`."""
    return torch.rand(shape, device=device) < prob


# ------------------------------------------------------------------ geometric: pixel blitting


def xflip(n: int, prob: float, size: Size, device) -> Tensor:
    # once chosen, flipped or not with probability 1/2: the unflipped view stays the likelier one
    # for every p < 1, so flips cannot leak into G (the paper's non-leaking condition)
    flip = torch.floor(torch.rand(n, device=device) * 2)
    flip = torch.where(_chosen(n, prob, device), flip, torch.zeros_like(flip))
    return scale2d(1 - 2 * flip, torch.ones_like(flip))


def rotate90(n: int, prob: float, size: Size, device) -> Tensor:
    quarters = torch.floor(torch.rand(n, device=device) * 4)  # 0 included: no leak, as xflip
    quarters = torch.where(_chosen(n, prob, device), quarters, torch.zeros_like(quarters))
    return rotate2d(quarters * (math.pi / 2))


def xint(n: int, prob: float, size: Size, device, max_shift: float = 0.125) -> Tensor:
    """Integer translation, uniform up to 1/8 of the image each way, rounded to whole pixels."""
    h, w = size
    t = (torch.rand(n, 2, device=device) * 2 - 1) * max_shift
    t = torch.where(_chosen((n, 1), prob, device), t, torch.zeros_like(t))
    return translate2d(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h))


# ------------------------------------------------------------------ geometric: general


def scale(n: int, prob: float, size: Size, device, std: float = 0.2) -> Tensor:
    """Isotropic scaling by 2^N(0, 0.2^2)."""
    s = torch.exp2(torch.randn(n, device=device) * std)
    s = torch.where(_chosen(n, prob, device), s, torch.ones_like(s))
    return scale2d(1 / s, 1 / s)


def rotate(n: int, prob: float, size: Size, device, max_turn: float = 1.0) -> Tensor:
    """Rotation by any angle, uniform in (-pi, pi) x max_turn. The pipeline draws it twice, before
    and after the anisotropic scaling, each with 1 - sqrt(1 - prob), so that a sample is rotated at
    least once with probability prob (and the two together reach any rotated ellipse)."""
    prob = 1 - math.sqrt(min(max(1 - prob, 0.0), 1.0))
    theta = (torch.rand(n, device=device) * 2 - 1) * math.pi * max_turn
    theta = torch.where(_chosen(n, prob, device), theta, torch.zeros_like(theta))
    return rotate2d(theta)


def aniso(n: int, prob: float, size: Size, device, std: float = 0.2) -> Tensor:
    """Anisotropic scaling: one axis by 2^N(0, 0.2^2), the other by its inverse."""
    s = torch.exp2(torch.randn(n, device=device) * std)
    s = torch.where(_chosen(n, prob, device), s, torch.ones_like(s))
    return scale2d(1 / s, s)


def xfrac(n: int, prob: float, size: Size, device, std: float = 0.125) -> Tensor:
    """Fractional translation by N(0, 0.125^2) of the image size."""
    h, w = size
    t = torch.randn(n, 2, device=device) * std
    t = torch.where(_chosen((n, 1), prob, device), t, torch.zeros_like(t))
    return translate2d(-t[:, 0] * w, -t[:, 1] * h)


# ------------------------------------------------------------------ colour: (n, 4, 4) on [-1, 1] RGB


def brightness(n: int, prob: float, channels: int, device, std: float = 0.2) -> Tensor:
    b = torch.randn(n, device=device) * std  # added to every channel
    b = torch.where(_chosen(n, prob, device), b, torch.zeros_like(b))
    return translate3d(b)


def contrast(n: int, prob: float, channels: int, device, std: float = 0.5) -> Tensor:
    c = torch.exp2(torch.randn(n, device=device) * std)  # scaled about 0, the range's middle grey
    c = torch.where(_chosen(n, prob, device), c, torch.ones_like(c))
    return scale3d(c)


def lumaflip(n: int, prob: float, channels: int, device) -> Tensor:
    """Mirror the colour about the plane orthogonal to the grey axis (inverts luma, keeps hue) with
    probability 1/2 once chosen (a Householder reflection)."""
    v = _constant(LUMA_AXIS, str(device))
    flip = torch.floor(torch.rand(n, 1, 1, device=device) * 2)
    flip = torch.where(_chosen((n, 1, 1), prob, device), flip, torch.zeros_like(flip))
    return torch.eye(4, device=device) - 2 * torch.outer(v, v) * flip


def hue(n: int, prob: float, channels: int, device, max_turn: float = 1.0) -> Tensor | None:
    """Rotate the colour about the grey axis by any angle (RGB only)."""
    if channels == 1:
        return None
    theta = (torch.rand(n, device=device) * 2 - 1) * math.pi * max_turn
    theta = torch.where(_chosen(n, prob, device), theta, torch.zeros_like(theta))
    return rotate3d(GREY, theta)


def saturation(n: int, prob: float, channels: int, device, std: float = 1.0) -> Tensor | None:
    """Scale the colour's distance from the grey axis by 2^N(0, 1) (RGB only)."""
    if channels == 1:
        return None
    v = _constant(LUMA_AXIS, str(device))
    s = torch.exp2(torch.randn(n, 1, 1, device=device) * std)
    s = torch.where(_chosen((n, 1, 1), prob, device), s, torch.ones_like(s))
    grey = torch.outer(v, v)
    return grey + (torch.eye(4, device=device) - grey) * s


# ------------------------------------------------------------------ image space, on [-1, 1]

BANDS_EXPECTED_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)  # of natural images' four octaves (1/f)


@functools.lru_cache(maxsize=8)
def _filter_bank(device: str) -> Tensor:
    """(4, taps) band-pass filters splitting the spectrum into four octaves, from the symlet-2
    wavelet's half-band pair: band 0 the lowest, band 3 the highest; they sum to a unit impulse."""
    low = wavelet_lowpass("sym2") * math.sqrt(2)  # the orthonormal coefficients
    high = low * (-1.0) ** np.arange(len(low))  # the mirror half-band
    low2 = np.convolve(low, low[::-1]) / 2  # power-complementary: low2 + high2 = impulse
    high2 = np.convolve(high, high[::-1]) / 2
    bank = np.eye(4, 1)  # (bands, taps); start: everything in band 0
    for band in range(1, 4):
        # split the (so far) lowest band in two: stretch the bank one octave down, low-pass it,
        # and give the freed upper half to the new band
        stretched = np.zeros((4, bank.shape[1] * 2 - 1))
        stretched[:, ::2] = bank
        bank = np.stack([np.convolve(row, low2) for row in stretched])
        start = (bank.shape[1] - len(high2)) // 2
        bank[band, start:start + len(high2)] += high2
    return torch.tensor(bank, dtype=torch.float32, device=device)


def imgfilter(x: Tensor, prob: float, std: float = 1.0, bands: tuple = (1, 1, 1, 1)) -> Tensor:
    """Amplify or damp each of four frequency bands by 2^N(0, 1) (each band chosen on its own),
    keeping the image's expected power (Karras et al. 2020, appendix B.3)."""
    n, c, h, w = x.shape
    bank = _filter_bank(str(x.device))
    expected = _constant(BANDS_EXPECTED_POWER, str(x.device))
    gains = torch.ones(n, 4, device=x.device)
    for band, strength in enumerate(bands):
        t_band = torch.exp2(torch.randn(n, device=x.device) * std)
        t_band = torch.where(_chosen(n, prob * strength, x.device), t_band, torch.ones_like(t_band))
        t = torch.ones(n, 4, device=x.device)
        t[:, band] = t_band
        gains = gains * t / (expected * t.square()).sum(dim=-1, keepdim=True).sqrt()
    taps = (gains @ bank).repeat_interleave(c, dim=0)  # (n * c, taps): one filter per image
    pad = bank.shape[1] // 2
    # reflect-pad by index: unlike F.pad's reflect, for any image size (43 taps reach 21 pixels)
    rows = reflect_index(torch.arange(-pad, h + pad, device=x.device), h)
    cols = reflect_index(torch.arange(-pad, w + pad, device=x.device), w)
    planes = x.reshape(1, n * c, h, w)[:, :, rows][..., cols]
    planes = torch.nn.functional.conv2d(planes, taps.view(n * c, 1, 1, -1), groups=n * c)
    planes = torch.nn.functional.conv2d(planes, taps.view(n * c, 1, -1, 1), groups=n * c)
    return planes.reshape(n, c, h, w)


def noise(x: Tensor, prob: float, std: float = 0.1) -> Tensor:
    """Additive Gaussian noise of a per-image strength |N(0, 0.1^2)|."""
    n = x.shape[0]
    sigma = torch.randn(n, 1, 1, 1, device=x.device).abs() * std
    sigma = torch.where(_chosen((n, 1, 1, 1), prob, x.device), sigma, torch.zeros_like(sigma))
    return x + torch.randn_like(x) * sigma


def cutout(x: Tensor, prob: float, size: float = 0.5) -> Tensor:
    """Zero (middle grey) a square of half the image's side, centred anywhere (DeVries & Taylor)."""
    n, _, h, w = x.shape
    side = torch.full((n, 2, 1, 1, 1), size, device=x.device)
    side = torch.where(_chosen((n, 1, 1, 1, 1), prob, x.device), side, torch.zeros_like(side))
    centre = torch.rand(n, 2, 1, 1, 1, device=x.device)
    cols = (torch.arange(w, device=x.device).view(1, 1, 1, -1) + 0.5) / w
    rows = (torch.arange(h, device=x.device).view(1, 1, -1, 1) + 0.5) / h
    keep = ((cols - centre[:, 0]).abs() >= side[:, 0] / 2) | ((rows - centre[:, 1]).abs() >= side[:, 1] / 2)
    return x * keep.to(x.dtype)


GeometricOp = Callable[[int, float, Size, torch.device], Tensor]
ColourOp = Callable[[int, float, int, torch.device], "Tensor | None"]
ImageOp = Callable[[Tensor, float], Tensor]

# The reference's order. `rotate` appears twice: before and after the anisotropic scaling.
GEOMETRIC: tuple[tuple[str, GeometricOp], ...] = (
    ("xflip", xflip), ("rotate90", rotate90), ("xint", xint), ("scale", scale), ("rotate", rotate),
    ("aniso", aniso), ("rotate", rotate), ("xfrac", xfrac))
COLOUR: tuple[tuple[str, ColourOp], ...] = (
    ("brightness", brightness), ("contrast", contrast), ("lumaflip", lumaflip), ("hue", hue),
    ("saturation", saturation))
IMAGE: tuple[tuple[str, ImageOp], ...] = (("imgfilter", imgfilter), ("noise", noise), ("cutout", cutout))
OP_NAMES = tuple(dict.fromkeys(name for table in (GEOMETRIC, COLOUR, IMAGE) for name, _ in table))
