"""Bilinear resampling for the augmentations: torch's grid_sample, or on a GPU in deterministic
mode the same interpolation written with gather.

grid_sample's CUDA backward adds into the input's gradient with atomics, in whatever order the
threads run, and torch has no deterministic version of it (use_deterministic_algorithms raises
"grid_sampler_2d_backward_cuda does not have a deterministic implementation"; seen on an H200).
ADA's geometric ops sit between G and D, so G's gradient goes through that backward and two runs
with one seed would drift apart. gather's backward (scatter_add) has a deterministic CUDA
implementation, which torch uses once deterministic algorithms are on (training/device.py turns
them on for CUDA runs unless `deterministic: false`). The gather version also runs where this
torch cannot differentiate grid_sample twice (R1 through the augmentation; see
grid_sample_has_double_backward). Elsewhere grid_sample runs: deterministic on the CPU and faster.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def grid_sample(images: Tensor, grid: Tensor, padding: str, align_corners: bool) -> Tensor:
    """F.grid_sample(images, grid, "bilinear", padding, align_corners) for padding "border" or
    "reflection"; see the module's docstring for when the gather version runs. Give the grid in
    fp32 (or fp64): gather keeps its precision; grid_sample gets it in the images' dtype, as it
    requires."""
    deterministic_gpu = images.is_cuda and torch.are_deterministic_algorithms_enabled()
    if deterministic_gpu or (images.requires_grad and not grid_sample_has_double_backward()):
        return gather_sample(images, grid, padding, align_corners)
    return F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode=padding,
                         align_corners=align_corners)


@functools.cache
def grid_sample_has_double_backward() -> bool:
    """Whether this torch differentiates grid_sample's backward. R1 through the augmentation needs
    it (D's gradient w.r.t. the reals before they were augmented, differentiated again), and
    torch 2.11 raises "derivative for aten::grid_sampler_2d_backward is not implemented" where
    2.14 does not; StyleGAN2-ADA's reference carries its own grid_sample_gradfix for the same gap.
    Asked once, on a 2x2 image."""
    x = torch.ones(1, 1, 2, 2, dtype=torch.float64, requires_grad=True)
    grid = torch.full((1, 1, 1, 2), 0.25, dtype=torch.float64)
    try:
        with torch.enable_grad():
            y = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
            (g,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
            torch.autograd.grad(g.sum(), x)
    except RuntimeError:
        return False
    return True


def gather_sample(images: Tensor, grid: Tensor, padding: str, align_corners: bool) -> Tensor:
    """Bilinear sampling by gather, as grid_sample computes it: normalised coordinates to pixels,
    then padding by clipping ("border") or by reflecting and clipping ("reflection"), then the
    four neighbours weighted by distance. No gradient for the grid (the augmentations' grids are
    made from random transforms, not learned)."""
    b, c, h, w = images.shape
    out_h, out_w = grid.shape[1:3]
    grid = grid.detach().to(torch.promote_types(grid.dtype, torch.float32))
    # a non-finite position would become an out-of-range index (a device-side assert on a GPU):
    # clip it as grid_sample does
    grid = torch.nan_to_num(grid, nan=0.0, posinf=1e6, neginf=-1e6)
    x = _pixels(grid[..., 0], w, align_corners)
    y = _pixels(grid[..., 1], h, align_corners)
    if padding == "reflection":
        x, y = _reflect(x, w, align_corners), _reflect(y, h, align_corners)
    elif padding != "border":
        raise ValueError(f"padding {padding!r}: border or reflection")
    x, y = x.clamp(0, w - 1), y.clamp(0, h - 1)
    x0, y0 = x.floor(), y.floor()
    wx, wy = (x - x0).to(images.dtype), (y - y0).to(images.dtype)
    x0, y0 = x0.long(), y0.long()
    x1, y1 = (x0 + 1).clamp(max=w - 1), (y0 + 1).clamp(max=h - 1)
    flat = images.reshape(b, c, h * w)

    def tap(row: Tensor, col: Tensor) -> Tensor:
        index = (row * w + col).reshape(b, 1, -1).expand(b, c, -1)
        return flat.gather(2, index).view(b, c, out_h, out_w)

    wx, wy = wx.unsqueeze(1), wy.unsqueeze(1)
    top = tap(y0, x0) * (1 - wx) + tap(y0, x1) * wx
    bottom = tap(y1, x0) * (1 - wx) + tap(y1, x1) * wx
    return top * (1 - wy) + bottom * wy


def _pixels(coordinate: Tensor, size: int, align_corners: bool) -> Tensor:
    if align_corners:  # -1 and 1 are the centres of the corner pixels
        return (coordinate + 1) / 2 * (size - 1)
    return ((coordinate + 1) * size - 1) / 2  # -1 and 1 are the outer edges of the corner pixels


def _reflect(x: Tensor, size: int, align_corners: bool) -> Tensor:
    """Reflect positions into the image's span about its edges (the corner pixels' centres with
    align_corners, else their outer edges), as grid_sample's reflection padding does."""
    low, high = (0.0, size - 1.0) if align_corners else (-0.5, size - 0.5)
    span = high - low
    if span <= 0:
        return torch.zeros_like(x)
    x = (x - low).abs()
    flips = torch.floor(x / span)
    extra = x - flips * span
    return torch.where(flips % 2 == 0, extra + low, span - extra + low)
