"""An augmentation pipeline: every op fires per sample with probability p * multiplier.

Only the selected samples are touched, and all geometric ops of a sample share one resampling
(one affine matrix, one `grid_sample` with reflection padding), as in StyleGAN2-ADA. Everything
is differentiable, so G learns through the augmentations D sees (Karras et al. 2020; Zhao et al.
2020) and, as long as p stays below the leak threshold, never learns to produce them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GankitError
from .ops import GEOMETRIC, PIXEL, ValueRange

# Per-op probability multipliers of each mode. "ada" and "fixed" use the StyleGAN2-ADA "bgc"
# set (blit, geometric, colour) plus the keras example's rotation; 90-degree turns and cutout are
# available but off, since they leak into the outputs at lower p than the others.
MODE_OPS = {
    "ada": {"xflip": 1, "translate": 1, "zoom": 1, "zoom_aniso": 1, "rotate": 1,
            "brightness": 1, "contrast": 1, "saturation": 1},
    # DiffAugment's "color,translation,cutout" policy: applied to every image, every time
    "diffaug": {"brightness": 1, "saturation": 1, "contrast": 1, "translate": 1, "cutout": 1},
    "none": {},
}
MODE_OPS["fixed"] = MODE_OPS["ada"]


class AugmentPipe(nn.Module):
    def __init__(self, multipliers: dict[str, float], value_range: ValueRange, p: float = 0.0):
        super().__init__()
        unknown = sorted(set(multipliers) - set(GEOMETRIC) - set(PIXEL))
        if unknown:
            raise GankitError(f"unknown augmentation {unknown[0]!r}: choose from "
                              f"{', '.join(list(GEOMETRIC) + list(PIXEL))}")
        self.geometric = {k: float(v) for k, v in multipliers.items() if k in GEOMETRIC and v > 0}
        self.pixel = {k: float(v) for k, v in multipliers.items() if k in PIXEL and v > 0}
        self.value_range = value_range
        self.register_buffer("p", torch.tensor(float(p)))  # a buffer: saved with the checkpoint

    def _selected(self, n: int, multiplier: float, device) -> torch.Tensor:
        """Indices of the samples an op with this multiplier applies to."""
        chance = min(float(self.p) * multiplier, 1.0)
        return torch.nonzero(torch.rand(n, device=device) < chance).squeeze(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if float(self.p) <= 0.0 or not (self.geometric or self.pixel):
            return images
        n, _, h, w = images.shape  # (B, C, H, W)
        device = images.device
        layout = torch.channels_last if images.is_contiguous(memory_format=torch.channels_last) \
            else torch.contiguous_format
        if self.geometric:
            theta = torch.eye(3, device=device).repeat(n, 1, 1)  # (B, 3, 3)
            for name, multiplier in self.geometric.items():
                idx = self._selected(n, multiplier, device)
                if idx.numel():
                    theta[idx] = theta[idx] @ GEOMETRIC[name](idx.numel(), h, device)
            moved = torch.nonzero((theta != torch.eye(3, device=device)).flatten(1).any(1)).squeeze(1)
            if moved.numel():
                subset = images[moved]
                grid = F.affine_grid(theta[moved, :2].to(subset.dtype), list(subset.shape), align_corners=False)
                warped = F.grid_sample(subset, grid, mode="bilinear", padding_mode="reflection",
                                       align_corners=False)
                images = images.index_copy(0, moved, warped)  # keeps the images' memory format
        for name, multiplier in self.pixel.items():
            idx = self._selected(n, multiplier, device)
            if idx.numel():
                # clamped: D must never see values a real image cannot have
                changed = PIXEL[name](images[idx], self.value_range).clamp(*self.value_range)
                images = images.index_copy(0, idx, changed)
        return images.contiguous(memory_format=layout)
