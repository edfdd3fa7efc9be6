"""Exponential moving average of the generator's weights.

Samples from the averaged weights are smoother and better than from the raw G, whose weights
jitter with every adversarial step (Karras et al. 2018; Yazici et al. 2019). Every sample and
evaluation in gankit uses the EMA copy.

Two ways to say how long the memory is:

- a fixed per-step `decay` (the keras GAN-ADA example's 0.99): the memory is counted in steps;
- a half-life in images, `half_life_kimg` (StyleGAN2-ADA's `ema_kimg`): per step
  beta = 0.5 ** (batch / (1000 * half_life_kimg)), so the memory is the same number of images
  at any batch size; with `rampup` (the reference's `ema_rampup`, 0.05 in its auto config) the
  half-life is at most `rampup` x the images seen so far, so early in training, while G changes
  fast, the average does not drag in its first random weights (beta = 0 at the first step).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float, half_life_kimg: float | None = None,
                 rampup: float | None = None):
        assert half_life_kimg is None or half_life_kimg > 0, half_life_kimg
        self.decay, self.half_life_kimg, self.rampup = decay, half_life_kimg, rampup
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def beta(self, images_before: int, batch: int) -> float:
        """This step's decay: `images_before` images were seen before this step's `batch`."""
        if self.half_life_kimg is None:
            return self.decay
        half_life = self.half_life_kimg * 1000
        if self.rampup is not None:
            half_life = min(half_life, images_before * self.rampup)
        return 0.5 ** (batch / max(half_life, 1e-8))

    @torch.no_grad()
    def update(self, model: nn.Module, images_before: int = 0, batch: int = 1) -> None:
        beta = self.beta(images_before, batch)
        ema_params = list(self.model.parameters())
        params = [p.detach() for p in model.parameters()]
        # ema <- ema + (1 - beta) * (param - ema)  ==  beta * ema + (1 - beta) * param
        torch._foreach_lerp_(ema_params, params, 1.0 - beta)
        # Buffers (BatchNorm running statistics) are running averages already: copy them.
        for ema_buffer, buffer in zip(self.model.buffers(), model.buffers()):
            ema_buffer.copy_(buffer)
