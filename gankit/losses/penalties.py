"""Gradient penalties on D: pure functions of D and the images it saw.

    gp  (Gulrajani et al. 2017)  E[(||grad_x D(x_hat)||_2 - 1)^2],  x_hat = a x_real + (1 - a) x_fake,
                                  a ~ U(0, 1) per sample: keeps the critic 1-Lipschitz along the
                                  lines between the two distributions (WGAN-GP; weight 10)
    r1  (Mescheder et al. 2018)   E[||grad_x D(x_real)||_2^2]: no gradient on the data manifold,
                                  which makes the game converge locally; weight = gamma / 2

`critic(images, labels)` is D as the training step sees it, augmentation included: the gradient is
taken with respect to the images *before* augmentation, back through it, as StyleGAN2-ADA takes R1
(its loss.py differentiates D(augment(x)) with respect to x). Both need per-sample gradients: a D
with batch norm mixes samples and makes them meaningless (use layer norm or none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..registry import Registry

Tensor = torch.Tensor


Critic = Callable[[Tensor, "Tensor | None"], Tensor]  # (images, labels) -> logits


def _input_gradients(critic: Critic, images: Tensor, labels: Tensor | None) -> Tensor:
    images = images.detach().requires_grad_(True)
    logits = critic(images, labels)
    # create_graph: the penalty itself is differentiated when D steps
    (grad,) = torch.autograd.grad(logits.float().sum(), images, create_graph=True)
    return grad.flatten(1)  # (B, C*H*W)


def gradient_penalty(critic: Critic, real: Tensor, fake: Tensor, labels: Tensor | None) -> Tensor:
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = alpha * real.detach() + (1.0 - alpha) * fake.detach()
    grad = _input_gradients(critic, mixed, labels)
    return ((grad.float().norm(2, dim=1) - 1.0) ** 2).mean()


def r1_penalty(critic: Critic, real: Tensor, fake: Tensor, labels: Tensor | None) -> Tensor:
    grad = _input_gradients(critic, real, labels)
    return grad.float().pow(2).sum(1).mean()


@dataclass(frozen=True)
class Penalty:
    name: str
    fn: Callable[[Critic, Tensor, Tensor, Tensor | None], Tensor]  # (critic, real, fake, labels)
    default_weight: float
    description: str


PENALTIES: Registry[Penalty] = Registry("penalty", lambda x: isinstance(x, Penalty))
PENALTIES.register("gp", Penalty("gp", gradient_penalty, 10.0, "WGAN-GP gradient penalty on interpolates"))
PENALTIES.register("r1", Penalty("r1", r1_penalty, 5.0, "R1 penalty on reals (weight gamma/2, gamma=10)"))
