"""Gradient penalties on D: pure functions of D and the images it saw.

    gp  (Gulrajani et al. 2017)  E[(||grad_x D(x_hat)||_2 - 1)^2],  x_hat = a x_real + (1 - a) x_fake,
                                  a ~ U(0, 1) per sample: keeps the critic 1-Lipschitz along the
                                  lines between the two distributions (WGAN-GP; weight 10)
    r1  (Mescheder et al. 2018)   E[||grad_x D(x_real)||_2^2]: no gradient on the data manifold,
                                  which makes the game converge locally; weight = gamma / 2

The penalty is taken on the images as D saw them (after augmentation), so it constrains D where
D is actually evaluated. Both need per-sample gradients: a D with batch norm mixes samples and
makes them meaningless (use layer norm or none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..registry import Registry

Tensor = torch.Tensor


def _input_gradients(D: nn.Module, images: Tensor, labels: Tensor | None) -> Tensor:
    images = images.detach().requires_grad_(True)
    logits = D(images, labels)
    # create_graph: the penalty itself is differentiated when D steps
    (grad,) = torch.autograd.grad(logits.float().sum(), images, create_graph=True)
    return grad.flatten(1)  # (B, C*H*W)


def gradient_penalty(D: nn.Module, real: Tensor, fake: Tensor, labels: Tensor | None) -> Tensor:
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = alpha * real.detach() + (1.0 - alpha) * fake.detach()
    grad = _input_gradients(D, mixed, labels)
    return ((grad.float().norm(2, dim=1) - 1.0) ** 2).mean()


def r1_penalty(D: nn.Module, real: Tensor, fake: Tensor, labels: Tensor | None) -> Tensor:
    grad = _input_gradients(D, real, labels)
    return grad.float().pow(2).sum(1).mean()


@dataclass(frozen=True)
class Penalty:
    name: str
    fn: Callable[[nn.Module, Tensor, Tensor, Tensor | None], Tensor]  # (D, real, fake, labels)
    default_weight: float
    description: str


PENALTIES: Registry[Penalty] = Registry("penalty", lambda x: isinstance(x, Penalty))
PENALTIES.register("gp", Penalty("gp", gradient_penalty, 10.0, "WGAN-GP gradient penalty on interpolates"))
PENALTIES.register("r1", Penalty("r1", r1_penalty, 5.0, "R1 penalty on reals (weight gamma/2, gamma=10)"))
