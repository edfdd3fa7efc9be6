"""Warping images under per-sample affine maps, anti-aliased as StyleGAN2-ADA resamples.

Bilinear sampling of a rotated or shrunken image aliases: fine detail folds into false low
frequencies that D can key on and G may learn to copy. StyleGAN2-ADA avoids it by upsampling 2x
through a low-pass filter (the symlet-6 wavelet's), sampling that image bilinearly on a 2x output
grid and low-pass filtering back down. Pixels brought in from outside the image are reflections of
it (`F.pad(mode="reflect")`: mirrored about the edge pixels), so D sees no black corners.

How this differs from the reference, and why: the reference reflect-pads each batch by the margin
its maps need, measured on the host (a device sync every batch) and clamped at one image width
(zeros beyond). Here nothing is measured. The image reflected without end is periodic (period
2(L - 1) pixels), and so is its upsampled version (period 4(L - 1)); one period is built with a
small matrix per axis and sampled with wrapped coordinates. That is the reference's construction
with unlimited padding, with no sync and a fixed memory cost; it differs from the reference only
where the reference has run out of padding and shows zeros.

Every step here is a fixed linear map per axis (a matrix product: far faster on a CPU than
single-channel convolutions) except the bilinear sampling, and all of it is differentiable.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from .sampling import grid_sample

Tensor = torch.Tensor
FILTER = "sym6"  # the reference's geometric low-pass filter (orthogonal: down(up(x)) == x)


@functools.lru_cache(maxsize=None)
def wavelet_lowpass(name: str) -> np.ndarray:
    """The decomposition low-pass filter of wavelet `name`, normalised to unit DC gain."""
    import pywt  # PyWavelets: the standard wavelet coefficients

    f = np.asarray(pywt.Wavelet(name).dec_lo, dtype=np.float64)
    return f / f.sum()


def reflect_index(i: np.ndarray | Tensor, length: int):
    """Fold indices (or coordinates) into [0, length - 1], mirroring about the edge pixels'
    centres (d c b | a b c d | c b a), for any distance."""
    if length == 1:
        return i * 0
    period = 2 * (length - 1)
    r = i % period  # numpy and torch both give a non-negative remainder here
    return (length - 1) - abs(r - (length - 1))


@functools.lru_cache(maxsize=64)
def _upsample_period(length: int, name: str) -> np.ndarray:
    """(2N + 1, length) matrix: one period (plus its first sample again, for the bilinear
    neighbour at the wrap) of the 2x upsampled, endlessly reflected signal, N = 2(length - 1).

    Upsampling as upfirdn2d does it: zeros between samples, then the filter with gain 2, so input
    sample i lands at position 2i + 1/2 and y[k] = 2 sum_i x[i] f[k + taps/2 - 1 - 2i]."""
    f = wavelet_lowpass(name)
    taps = len(f)
    period = 2 * (2 * (length - 1) if length > 1 else 1)  # twice the reflected input's period
    rows = np.zeros((period + 1, length))
    for k in range(period + 1):
        first = -(-(k + taps // 2 - taps) // 2)  # ceil((k + taps/2 - taps) / 2): lowest i that reaches k
        for i in range(first, (k + taps // 2 - 1) // 2 + 1):
            rows[k, reflect_index(np.asarray(i), length)] += 2 * f[k + taps // 2 - 1 - 2 * i]
    return rows


@functools.lru_cache(maxsize=64)
def _downsample(length: int, border: int, name: str) -> np.ndarray:
    """(length, 2(length + 2 border)) matrix: low-pass filter a 2x signal that has `border`
    pixels' worth of margin each side, and keep every second sample. The adjoint alignment of the
    upsampling, so down(up(x)) == x for an orthogonal wavelet's filter."""
    f = wavelet_lowpass(name)
    skip = 2 * border - (len(f) - 1) // 2  # where output 0's window starts
    assert skip >= 0
    rows = np.zeros((length, 2 * (length + 2 * border)))
    for m in range(length):
        rows[m, 2 * m + skip: 2 * m + skip + len(f)] = f
    return rows


@functools.lru_cache(maxsize=64)
def _matrix(kind: str, args: tuple, device: str) -> Tensor:
    table = {"up": _upsample_period, "down": _downsample}[kind](*args)
    return torch.tensor(table, dtype=torch.float32, device=device)


def _along_axes(x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """rows @ x @ cols^T for every (B, C) plane: (B, C, H, W) -> (B, C, R, K) (width first:
    measured the fastest order on a CPU)."""
    return torch.matmul(rows, torch.matmul(x, cols.t()))


def _centred_grid(h: int, w: int, step: float, inverse: Tensor) -> tuple[Tensor, Tensor]:
    """Where each output position reads from: pixel-index coordinates (col, row) in the input,
    for an output grid of `step`-pixel spacing centred on the image, mapped by `inverse`."""
    out_h, out_w = round(h / step), round(w / step)
    device = inverse.device
    ys = (torch.arange(out_h, device=device, dtype=torch.float32) - (out_h - 1) / 2) * step
    xs = (torch.arange(out_w, device=device, dtype=torch.float32) - (out_w - 1) / 2) * step
    points = torch.stack([xs.view(1, -1).expand(out_h, -1), ys.view(-1, 1).expand(-1, out_w),
                          torch.ones(out_h, out_w, device=device)], dim=-1)  # (H', W', 3)
    source = torch.einsum("bij,hwj->bhwi", inverse.float(), points)  # (B, H', W', 3)
    return source[..., 0] + (w - 1) / 2, source[..., 1] + (h - 1) / 2


def warp(images: Tensor, inverse: Tensor, antialias: bool = True) -> Tensor:
    """Resample each image under its affine map, with reflection beyond the edges.

    images: (B, C, H, W). inverse: (B, 3, 3), mapping an output pixel's position to the position
    it is read from in the input, in pixels from the image centre, acting on [x, y, 1].
    antialias: the reference's 2x oversampled, low-pass filtered resampling; False samples the
    image itself bilinearly (faster, aliases under zoom-out and rotation).
    """
    n, c, h, w = images.shape
    assert inverse.shape == (n, 3, 3), inverse.shape
    device, dtype = images.device, images.dtype
    if not antialias:
        col, row = _centred_grid(h, w, 1.0, inverse)
        col, row = reflect_index(col, w), reflect_index(row, h)
        grid = torch.stack([2 * col / max(w - 1, 1) - 1, 2 * row / max(h - 1, 1) - 1], dim=-1)
        return grid_sample(images, grid, "border", align_corners=True)

    margin = len(wavelet_lowpass(FILTER)) // 4  # pixels of border the downsampling filter reads
    key = str(device)
    big = _along_axes(images, _matrix("up", (h, FILTER), key).to(dtype),
                      _matrix("up", (w, FILTER), key).to(dtype))  # (B, C, 2N_h + 1, 2N_w + 1)
    # A 2x output grid over the image plus `margin` pixels each side. As the reference (which
    # conjugates the map by a half-pixel shift of the 2x grid), the map acts on positions moved by
    # +1/4 pixel and its result moves back by 1/4: a quarter-pixel offset of the transform's centre.
    shifted = inverse.float() @ _shift(0.25, inverse)
    col, row = _centred_grid(h + 2 * margin, w + 2 * margin, 0.5, shifted)
    col, row = col - margin - 0.25, row - margin - 0.25
    # input index i sits at 2i + 1/2 of the upsampled signal, whose period is 2N = 4(L - 1)
    period_w, period_h = big.shape[-1] - 1, big.shape[-2] - 1
    col = torch.remainder(2 * col + 0.5, period_w)
    row = torch.remainder(2 * row + 0.5, period_h)
    grid = torch.stack([2 * col / period_w - 1, 2 * row / period_h - 1], dim=-1)  # align_corners=True
    sampled = grid_sample(big, grid, "border", align_corners=True)  # (B, C, 2(H + 2 margin), 2(W + 2 margin))
    return _along_axes(sampled, _matrix("down", (h, margin, FILTER), key).to(dtype),
                       _matrix("down", (w, margin, FILTER), key).to(dtype))


def _shift(offset: float, like: Tensor) -> Tensor:
    m = torch.eye(3, device=like.device)
    m[:2, 2].fill_(offset)  # not m[0, 2] = offset: that copies a host scalar, a GPU sync
    return m
