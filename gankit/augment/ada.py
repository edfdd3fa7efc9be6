"""Controllers of the augmentation strength p, each a small object of its own.

AdaController  StyleGAN2-ADA (Karras et al. 2020, section 3): r_t = E[sign(D(augmented real))]
               measures how far D has started to memorise the training set. Every `interval`
               steps p moves by sign(r_t - target) x (images since the last move) / (ada_kimg x
               1000): integral control that holds r_t at the target (0.6); p only kept >= 0.
KerasController  the keras-io "Data-efficient GANs with ADA" example: every step
               p <- clip(p + (accuracy on reals - target) / integration_steps, 0, 1), a
               proportional controller on D's accuracy (target 0.85, 1000 steps).

Both read D's signal once per update on the host, as the reference does: after the training
step, whose optimiser steps have already synchronised the device. The pipeline itself never does.
"""

from __future__ import annotations

import torch

from .pipeline import Augmentation


class AdaController:
    def __init__(self, pipe: Augmentation, target: float = 0.6, ada_kimg: float = 500.0,
                 interval: int = 4, p_max: float | None = None):
        self.pipe, self.target, self.ada_kimg = pipe, target, ada_kimg
        self.interval, self.p_max = interval, p_max
        self.sign_sum: torch.Tensor | float = 0.0  # sum over reals since the last update of sign(D(real))
        self.count = 0
        self.last_signal: float | None = None  # r_t at the last update

    def observe(self, sign_real_mean: torch.Tensor | float, images: int) -> None:
        """A step's mean sign(D(real)) over `images` reals (kept as a tensor: no sync here)."""
        self.sign_sum = self.sign_sum + sign_real_mean * images
        self.count += images

    def maybe_update(self, step: int) -> None:
        if step % self.interval or not self.count:
            return
        self.last_signal = float(self.sign_sum) / self.count
        # a true sign: exactly on target, p stays (np.sign(0) == 0 in the reference)
        direction = (self.last_signal > self.target) - (self.last_signal < self.target)
        p = max(self.pipe.p_value + direction * self.count / (self.ada_kimg * 1000), 0.0)
        self.pipe.set_p(min(p, self.p_max) if self.p_max is not None else p)
        self.sign_sum, self.count = 0.0, 0

    def state_dict(self) -> dict:
        return {"sign_sum": float(self.sign_sum), "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.sign_sum, self.count = float(state["sign_sum"]), int(state["count"])


class KerasController:
    def __init__(self, pipe: Augmentation, target: float = 0.85, integration_steps: int = 1000,
                 p_max: float | None = None):
        self.pipe, self.target, self.integration_steps = pipe, target, integration_steps
        self.p_max = 1.0 if p_max is None else p_max
        self.accuracy: torch.Tensor | float | None = None
        self.last_signal: float | None = None  # D's accuracy on reals at the last update

    def observe(self, sign_real_mean: torch.Tensor | float, images: int) -> None:
        # keras' step(logits) = (1 + sign(logits)) / 2: a logit exactly on 0 counts one half
        self.accuracy = (1 + sign_real_mean) / 2

    def maybe_update(self, step: int) -> None:
        if self.accuracy is None:
            return
        self.last_signal = float(self.accuracy)
        p = self.pipe.p_value + (self.last_signal - self.target) / self.integration_steps
        self.pipe.set_p(min(max(p, 0.0), self.p_max))
        self.accuracy = None

    def state_dict(self) -> dict:
        return {}  # p itself is the pipeline's buffer

    def load_state_dict(self, state: dict) -> None:
        pass
