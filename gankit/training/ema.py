"""Exponential moving average of the generator's weights.

Samples from the averaged weights are smoother and better than from the raw G, whose weights
jitter with every adversarial step (Karras et al. 2018; Yazici et al. 2019). Every sample and
evaluation in gankit uses the EMA copy.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_params = list(self.model.parameters())
        params = [p.detach() for p in model.parameters()]
        # ema <- ema + (1 - decay) * (param - ema)  ==  decay * ema + (1 - decay) * param
        torch._foreach_lerp_(ema_params, params, 1.0 - self.decay)
        # Buffers (BatchNorm running statistics) are running averages already: copy them.
        for ema_buffer, buffer in zip(self.model.buffers(), model.buffers()):
            ema_buffer.copy_(buffer)
