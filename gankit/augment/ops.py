"""Differentiable augmentations, one small function per operation.

Geometric ops return, for the selected samples, a 3x3 matrix in the normalised coordinates that
`F.affine_grid` uses ([-1, 1] across the image); the pipeline multiplies them and resamples each
affected image once. Every distribution here is symmetric (x and its inverse equally likely), so
a matrix can serve directly as the sampling grid's output->input map. Colour ops likewise return
per-sample colour matrices, applied in one pass; mask ops (cutout) map images to images. All draw
from the global torch RNG on the images' device (checkpointed, so a resumed run draws the same
numbers).

To add an op: write the function and add one entry to GEOMETRIC, COLOUR or MASK."""

from __future__ import annotations

import math
from typing import Callable

import torch

Tensor = torch.Tensor
ValueRange = tuple[float, float]


def _eye(n: int, device) -> Tensor:
    return torch.eye(3, device=device).repeat(n, 1, 1)  # (n, 3, 3)


def _scale(sx: Tensor, sy: Tensor) -> Tensor:
    m = _eye(len(sx), sx.device)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def _rotation(angle: Tensor) -> Tensor:
    m = _eye(len(angle), angle.device)
    c, s = torch.cos(angle), torch.sin(angle)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


# ------------------------------------------------------------------ geometric: (n, size) -> (n, 3, 3)


def xflip(n: int, size: int, device) -> Tensor:
    # Flip with probability 1/2 once selected: flipped and unflipped views then differ in how
    # likely they are for every p < 1, so D can still tell G's mirrored images apart (no leak).
    sign = torch.where(torch.rand(n, device=device) < 0.5, -1.0, 1.0)
    return _scale(sign, torch.ones(n, device=device))


def rotate90(n: int, size: int, device) -> Tensor:
    quarter_turns = torch.randint(0, 4, (n,), device=device).float()  # 0 included: no leak, as xflip
    return _rotation(quarter_turns * (math.pi / 2)).round()  # exact 0/±1 entries: no blur


def translate(n: int, size: int, device, max_fraction: float = 0.125) -> Tensor:
    # whole pixels only (as StyleGAN2-ADA's integer translation): the resampling stays exact
    pixels = torch.round((torch.rand(n, 2, device=device) * 2 - 1) * max_fraction * size)
    m = _eye(n, device)
    m[:, :2, 2] = pixels * (2.0 / size)  # normalised coordinates span 2 across the image
    return m


def zoom(n: int, size: int, device, max_zoom: float = 0.25) -> Tensor:
    s = torch.exp((torch.rand(n, device=device) * 2 - 1) * math.log1p(max_zoom))  # log-uniform
    return _scale(s, s)


def zoom_aniso(n: int, size: int, device, max_zoom: float = 0.25) -> Tensor:
    s = torch.exp((torch.rand(n, device=device) * 2 - 1) * math.log1p(max_zoom))
    return _scale(s, 1.0 / s)  # stretch one axis, squeeze the other


def rotate(n: int, size: int, device, max_turn: float = 0.125) -> Tensor:
    # up to 0.125 of a full turn either way, as the keras example's RandomRotation(0.125)
    return _rotation((torch.rand(n, device=device) * 2 - 1) * max_turn * 2 * math.pi)


# ------------------------------------------------------------------ colour: (n, channels) -> (n, C+1, C+1)
# Each colour op is an affine map of a pixel's channel vector, as a homogeneous matrix, so any
# chain of them is one matrix per sample and costs one pass over the pixels (StyleGAN2-ADA's
# colour matrix). Values are in the model's range; `mid` and `span` come from it.


def _colour_eye(n: int, channels: int, device) -> Tensor:
    return torch.eye(channels + 1, device=device).repeat(n, 1, 1)


def brightness(n: int, channels: int, mid: float, span: float, device, std: float = 0.2) -> Tensor:
    m = _colour_eye(n, channels, device)
    # std in units of half the range (StyleGAN2-ADA's 0.2 on [-1, 1]); added to all channels
    m[:, :channels, channels] = torch.randn(n, 1, device=device) * std * span / 2
    return m


def contrast(n: int, channels: int, mid: float, span: float, device, std: float = 0.5) -> Tensor:
    # scale around the range's middle grey: x -> mid + c (x - mid), c log-normal (base 2)
    c = torch.exp2(torch.randn(n, device=device) * std)
    m = _colour_eye(n, channels, device)
    idx = torch.arange(channels, device=device)
    m[:, idx, idx] = c.unsqueeze(1)
    m[:, :channels, channels] = (mid * (1 - c)).unsqueeze(1)
    return m


def saturation(n: int, channels: int, mid: float, span: float, device, std: float = 1.0) -> Tensor:
    # x -> luma + s (x - luma): grey images have no saturation to change
    if channels != 3:
        return _colour_eye(n, channels, device)
    s = torch.exp2(torch.randn(n, device=device) * std).view(n, 1, 1)
    luma = torch.tensor([0.299, 0.587, 0.114], device=device).expand(3, 3)  # each row: luma weights
    m = _colour_eye(n, channels, device)
    m[:, :3, :3] = luma + s * (torch.eye(3, device=device) - luma)
    return m


# ------------------------------------------------------------------ masks: images -> images


def cutout(x: Tensor, mid: float, fraction: float = 0.5) -> Tensor:
    """A square of `fraction` of the side, centred anywhere, filled with the range's middle grey."""
    n, _, h, w = x.shape
    centre = torch.rand(n, 2, 1, 1, device=x.device)
    ys = (torch.arange(h, device=x.device).view(1, h, 1) + 0.5) / h
    xs = (torch.arange(w, device=x.device).view(1, 1, w) + 0.5) / w
    outside = ((ys - centre[:, 0]).abs() >= fraction / 2) | ((xs - centre[:, 1]).abs() >= fraction / 2)
    return torch.where(outside.unsqueeze(1), x, torch.full_like(x, mid))


GeometricOp = Callable[[int, int, torch.device], Tensor]
ColourOp = Callable[[int, int, float, float, torch.device], Tensor]
MaskOp = Callable[[Tensor, float], Tensor]

# name -> op. Matrices compose in table order; then geometry, colour and masks apply in that order.
GEOMETRIC: dict[str, GeometricOp] = {
    "xflip": xflip, "rotate90": rotate90, "translate": translate, "zoom": zoom,
    "zoom_aniso": zoom_aniso, "rotate": rotate,
}
COLOUR: dict[str, ColourOp] = {"brightness": brightness, "contrast": contrast, "saturation": saturation}
MASK: dict[str, MaskOp] = {"cutout": cutout}
