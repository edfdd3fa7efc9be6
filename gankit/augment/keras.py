"""The keras-io "Data-efficient GANs with ADA" example's augmenter, gankit's seed, kept by name.

With probability p an image goes through the whole chain, each layer drawing its own parameter:
  RandomFlip("horizontal")        left-right with probability 1/2
  RandomTranslation(0.125)        uniform in +-1/8 of the size per axis
  RandomRotation(0.125)           uniform in +-1/8 of a turn
  RandomZoom((-0.25, 0), (-0.25, 0))  each axis on its own, zooming in by up to 25%
with reflection beyond the edges (keras' fill_mode="reflect", which repeats the edge pixel);
otherwise it is passed through untouched. Its controller is KerasController (ada.py).

One difference, on purpose: keras resamples after each layer (nearest for the translation,
bilinear for rotation and zoom), three interpolations; here the four maps compose into one and the
image is sampled once, bilinearly, so it is blurred once rather than twice.
"""

from __future__ import annotations

import math

import torch

from .ops import rotate2d, scale2d, translate2d
from .sampling import grid_sample
from .pipeline import Augmentation

MAX_TRANSLATION, MAX_ROTATION, MAX_ZOOM = 0.125, 0.125, 0.25  # the example's constants


class KerasAugment(Augmentation):
    def augment(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        device = x.device

        def uniform(low: float, high: float, *shape) -> torch.Tensor:
            return torch.rand(n, *shape, device=device) * (high - low) + low

        flip = torch.where(torch.rand(n, device=device) < 0.5, -1.0, 1.0)
        # scaled column by column: a torch.tensor([w, h]) on the GPU would be a host copy, a sync
        shift = uniform(-MAX_TRANSLATION, MAX_TRANSLATION, 2)
        shift = torch.stack([shift[:, 0] * w, shift[:, 1] * h], dim=-1)
        turn = uniform(-MAX_ROTATION, MAX_ROTATION) * 2 * math.pi
        zoom = uniform(1 - MAX_ZOOM, 1.0, 2)  # < 1: the output shows less of the image, larger
        # each layer reads its input at (its map) x output position; chained, the first layer's
        # map is applied last: flip @ translate @ rotate @ zoom
        inverse = (scale2d(flip, torch.ones_like(flip)) @ translate2d(-shift[:, 0], -shift[:, 1])
                   @ rotate2d(turn) @ scale2d(zoom[:, 0], zoom[:, 1]))
        ys = torch.arange(h, device=device, dtype=torch.float32) - (h - 1) / 2
        xs = torch.arange(w, device=device, dtype=torch.float32) - (w - 1) / 2
        points = torch.stack([xs.view(1, -1).expand(h, -1), ys.view(-1, 1).expand(-1, w),
                              torch.ones(h, w, device=device)], dim=-1)
        source = torch.einsum("bij,hwj->bhwi", inverse, points)[..., :2]
        grid = torch.stack([source[..., 0] / (w / 2), source[..., 1] / (h / 2)], dim=-1)  # align_corners=False units
        augmented = grid_sample(x, grid, "reflection",
                                align_corners=False)  # reflection about the outer edge: "d c b a | a b c d"
        chosen = torch.rand(n, 1, 1, 1, device=device) < self.p
        return torch.where(chosen, augmented, x)
