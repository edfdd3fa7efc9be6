"""DiffAugment (Zhao et al. 2020), as its authors' DiffAugment_pytorch.py defines it.

Every image D sees, real or fake, every time, gets the policy's transforms in the policy's order
(default "color,translation,cutout"):
  color        brightness + U(-0.5, 0.5); saturation: each pixel's distance from its channel mean
               x U(0, 2); contrast: distance from the image mean x U(0.5, 1.5)
  translation  whole pixels, uniform in [-s, s] per axis with s = round(size / 8); what comes in
               from outside is zero (middle grey)
  cutout       a square of half the side, set to zero, centred at a uniformly drawn pixel (parts
               outside the image are cut off)
on images in [-1, 1] (zero is the middle grey), with nothing clamped. Random numbers are drawn in
the reference's order and shapes, and nothing is read back to the host.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .pipeline import Augmentation

Tensor = torch.Tensor


def _uniform(x: Tensor) -> Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device)  # one per image


def brightness(x: Tensor) -> Tensor:
    return x + (_uniform(x) - 0.5)


def saturation(x: Tensor) -> Tensor:
    mean = x.mean(dim=1, keepdim=True)  # per pixel, over channels (grey images: unchanged)
    return (x - mean) * (_uniform(x) * 2) + mean


def contrast(x: Tensor) -> Tensor:
    mean = x.mean(dim=[1, 2, 3], keepdim=True)  # per image
    return (x - mean) * (_uniform(x) + 0.5) + mean


def translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    n, c, h, w = x.shape
    shift_h, shift_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-shift_h, shift_h + 1, size=[n, 1, 1], device=x.device)
    dx = torch.randint(-shift_w, shift_w + 1, size=[n, 1, 1], device=x.device)
    # read row i + dy (column j + dx) of the image framed by one zero pixel; further out: the frame
    rows = torch.clamp(torch.arange(h, device=x.device).view(1, -1) + dy[:, :, 0] + 1, 0, h + 1)  # (n, h)
    cols = torch.clamp(torch.arange(w, device=x.device).view(1, -1) + dx[:, :, 0] + 1, 0, w + 1)  # (n, w)
    framed = F.pad(x, [1, 1, 1, 1])
    framed = framed.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w + 2))
    return framed.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))


def cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    n, _, h, w = x.shape
    cut_h, cut_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - cut_h % 2), size=[n, 1, 1], device=x.device) - cut_h // 2
    left = torch.randint(0, w + (1 - cut_w % 2), size=[n, 1, 1], device=x.device) - cut_w // 2
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (ys >= top) & (ys < top + cut_h) & (xs >= left) & (xs < left + cut_w)  # (n, h, w)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES: dict[str, tuple[Callable[[Tensor], Tensor], ...]] = {
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}
DEFAULT_POLICY = "color,translation,cutout"


def policy_parts(policy: str) -> list[str]:
    return [part.strip() for part in policy.split(",") if part.strip()]


class DiffAugment(Augmentation):
    """Always on: p is fixed at 1 (shown in the logs as such)."""

    def __init__(self, value_range: tuple[float, float], policy: str = DEFAULT_POLICY):
        super().__init__(value_range, p=1.0)
        self.parts = policy_parts(policy)
        assert self.parts and all(part in POLICIES for part in self.parts), policy

    def augment(self, x: Tensor) -> Tensor:
        x = self.to_unit_frame(x)
        for part in self.parts:
            for fn in POLICIES[part]:
                x = fn(x)
        return self.from_unit_frame(x)
