"""The adaptive discriminator augmentation controller (Karras et al. 2020), on its own.

r_t = E[sign(D(augmented real))] (= 2 * accuracy on reals - 1) measures how far D has started
to memorise the training set. Every `interval` steps p moves by sign(r_t - target) times the
images seen since the last update divided by `speed_images` (the images p needs to move by 1):
integral control that holds r_t at the target.
"""

from __future__ import annotations

import torch

from .pipeline import AugmentPipe


class AdaController:
    def __init__(self, pipe: AugmentPipe, target: float, speed_images: float, interval: int,
                 p_max: float):
        self.pipe, self.target, self.speed_images = pipe, target, speed_images
        self.interval, self.p_max = interval, p_max
        self.sign_sum = 0.0  # sum over reals since the last update of sign(D(real))
        self.count = 0
        self.last_r_t: float | None = None

    def observe(self, sign_real_mean: torch.Tensor | float, batch: int) -> None:
        # kept as a tensor until the update: no device sync on every step
        self.sign_sum = self.sign_sum + sign_real_mean * batch
        self.count += batch

    def maybe_update(self, step: int) -> None:
        if step % self.interval or not self.count:
            return
        self.last_r_t = float(self.sign_sum) / self.count
        adjust = (1.0 if self.last_r_t > self.target else -1.0) * self.count / self.speed_images
        self.pipe.p.copy_((self.pipe.p + adjust).clamp(0.0, self.p_max))
        self.sign_sum, self.count = 0.0, 0

    def state_dict(self) -> dict:
        return {"sign_sum": float(self.sign_sum), "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.sign_sum, self.count = float(state["sign_sum"]), int(state["count"])
