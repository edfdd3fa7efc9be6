"""An augmentation pipeline: every op fires per sample with probability p * multiplier.

Only the selected samples are touched: they are gathered once, all geometric ops of a sample
share one resampling (one affine matrix, one `grid_sample` with reflection padding) and all
colour ops one colour matrix, as in StyleGAN2-ADA, and the results are scattered back once.
Everything is differentiable, so G learns through the augmentations D sees (Karras et al. 2020;
Zhao et al. 2020) and, as long as p stays below the leak threshold, never learns to produce them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GankitError
from .ops import COLOUR, GEOMETRIC, MASK, ValueRange

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
ALL_OPS = {**GEOMETRIC, **COLOUR, **MASK}


class AugmentPipe(nn.Module):
    def __init__(self, multipliers: dict[str, float], value_range: ValueRange, p: float = 0.0):
        super().__init__()
        unknown = sorted(set(multipliers) - set(ALL_OPS))
        if unknown:
            raise GankitError(f"unknown augmentation {unknown[0]!r}: choose from {', '.join(ALL_OPS)}")
        active = {k: float(v) for k, v in multipliers.items() if v > 0}
        self.ops = {kind: {k: v for k, v in active.items() if k in table}
                    for kind, table in (("geometric", GEOMETRIC), ("colour", COLOUR), ("mask", MASK))}
        self.value_range = value_range
        self.register_buffer("p", torch.tensor(float(p)))  # a buffer: saved with the checkpoint

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        p = float(self.p)
        if p <= 0.0 or not active_ops(self.ops):
            return images
        # Augment in fp32 even under bf16 autocast: exact integer shifts and flips, and one
        # precision for reals and fakes; the result goes back to the input's dtype.
        with torch.autocast(images.device.type, enabled=False):
            return self._augment(images.float(), p).to(images.dtype)

    def _augment(self, images: torch.Tensor, p: float) -> torch.Tensor:
        n, c, h, w = images.shape  # (B, C, H, W)
        device = images.device
        low, high = self.value_range
        mid, span = (low + high) / 2, high - low

        # Decide per sample and op; build one spatial and one colour matrix per sample.
        spatial = torch.eye(3, device=device).repeat(n, 1, 1)  # (B, 3, 3)
        colour = torch.eye(c + 1, device=device).repeat(n, 1, 1)  # (B, C+1, C+1)
        masked = {}
        for kind, ops in self.ops.items():
            for name, multiplier in ops.items():
                idx = torch.nonzero(torch.rand(n, device=device) < min(p * multiplier, 1.0)).squeeze(1)
                if not idx.numel():
                    continue
                if kind == "geometric":
                    spatial[idx] = spatial[idx] @ GEOMETRIC[name](idx.numel(), h, device)
                elif kind == "colour":
                    colour[idx] = COLOUR[name](idx.numel(), c, mid, span, device) @ colour[idx]
                else:
                    masked[name] = idx
        warp = _changed(spatial)
        recolour = _changed(colour)
        chosen = warp | recolour
        for idx in masked.values():
            chosen[idx] = True
        if not chosen.any():
            return images
        picked = torch.nonzero(chosen).squeeze(1)
        x = images[picked]  # only the selected samples: (S, C, H, W)

        local = warp[picked]
        if local.any():
            rows = torch.nonzero(local).squeeze(1)
            grid = F.affine_grid(spatial[picked][rows, :2].to(x.dtype), [len(rows), c, h, w],
                                 align_corners=False)
            warped = F.grid_sample(x[rows], grid, mode="bilinear", padding_mode="reflection",
                                   align_corners=False)
            x = x.index_copy(0, rows, warped)
        local = recolour[picked]
        if local.any():
            m = colour[picked].to(x.dtype)  # identity rows leave their samples unchanged
            x = torch.einsum("sij,sjhw->sihw", m[:, :c, :c], x) + m[:, :c, c].view(-1, c, 1, 1)
            x = x.clamp(low, high)  # D must never see values a real image cannot have
        position = torch.full((n,), -1, dtype=torch.long, device=device)
        position[picked] = torch.arange(len(picked), device=device)
        for name, idx in masked.items():
            rows = position[idx]
            x = x.index_copy(0, rows, MASK[name](x[rows], mid))

        layout = torch.channels_last if images.is_contiguous(memory_format=torch.channels_last) \
            else torch.contiguous_format
        return images.index_copy(0, picked, x).contiguous(memory_format=layout)


def _changed(matrices: torch.Tensor) -> torch.Tensor:
    """Which samples' matrices differ from the identity: (B,) bool."""
    eye = torch.eye(matrices.shape[-1], device=matrices.device)
    return (matrices != eye).flatten(1).any(1)


def active_ops(ops: dict[str, dict[str, float]]) -> bool:
    return any(ops.values())
