"""Adversarial losses: pure functions of the discriminator's logits.

A loss is a pair d_loss(real_logits, fake_logits, real_target, fake_target) and
g_loss(fake_logits), each returning a scalar averaged over every logit (so patch discriminators
work unchanged). Targets are 1 and 0 unless label smoothing, noise or flips (targets.py) ask for
others; only losses with `uses_targets` accept them. A new loss is one entry in LOSSES; the
training loop only ever calls these two functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..registry import Registry

Tensor = torch.Tensor
Target = Tensor | float  # a number, or one target per sample (B,)


@dataclass(frozen=True)
class AdversarialLoss:
    name: str
    d_loss: Callable[..., Tensor]  # (real_logits, fake_logits, real_target=1, fake_target=0)
    g_loss: Callable[[Tensor], Tensor]  # (fake_logits)
    uses_targets: bool  # whether real/fake targets (smoothing, noise, flips) mean anything
    # D's output at which it is undecided (0 for logits, 0.5 for least squares); None when the
    # output has no such point (a Wasserstein critic may shift freely): no accuracy, no ADA signal
    boundary: float | None
    description: str = ""


LOSSES: Registry[AdversarialLoss] = Registry("loss", lambda x: isinstance(x, AdversarialLoss))


def get_loss(name: str) -> AdversarialLoss:
    return LOSSES.get(name)


def _per_logit(target: Target, logits: Tensor) -> Tensor:
    """A per-sample target (B,) broadcast over the logits of that sample, e.g. (B, 1, h, w)."""
    if not isinstance(target, Tensor):
        return torch.full_like(logits, float(target))
    assert target.shape == logits.shape[:1], f"targets {tuple(target.shape)} vs logits {tuple(logits.shape)}"
    return target.to(logits.dtype).view(-1, *([1] * (logits.dim() - 1))).expand_as(logits)


# ---- binary cross-entropy family (Goodfellow et al. 2014) -------------------------------------

def _bce_d(real: Tensor, fake: Tensor, real_target: Target = 1.0, fake_target: Target = 0.0) -> Tensor:
    # BCE(t_r, real) + BCE(t_f, fake); with t = 1, 0: -log(sigmoid(real)) - log(1 - sigmoid(fake))
    return (F.binary_cross_entropy_with_logits(real, _per_logit(real_target, real))
            + F.binary_cross_entropy_with_logits(fake, _per_logit(fake_target, fake)))


def _nonsaturating_g(fake: Tensor) -> Tensor:
    # -log(sigmoid(fake)): strong gradients while D still rejects the fakes (Goodfellow 2014)
    return F.softplus(-fake).mean()


def _saturating_g(fake: Tensor) -> Tensor:
    # log(1 - sigmoid(fake)) = -softplus(fake): the original minimax game. Its gradient vanishes
    # while D confidently rejects the fakes, which is why the non-saturating form is the default.
    return -F.softplus(fake).mean()


# ---- Wasserstein (Arjovsky et al. 2017) and hinge (Lim & Ye 2017; Miyato et al. 2018) ---------

def _wasserstein_d(real: Tensor, fake: Tensor, real_target: Target = 1.0, fake_target: Target = 0.0) -> Tensor:
    # E[D(fake)] - E[D(real)]: the critic estimates the earth mover's distance; it needs a
    # Lipschitz constraint (gradient penalty or spectral norm) to mean anything
    return fake.mean() - real.mean()


def _wasserstein_g(fake: Tensor) -> Tensor:
    # -E[D(fake)]
    return -fake.mean()


def _hinge_d(real: Tensor, fake: Tensor, real_target: Target = 1.0, fake_target: Target = 0.0) -> Tensor:
    # E[relu(1 - D(real))] + E[relu(1 + D(fake))]: no gradient from samples already beyond the margin
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


# ---- least squares (Mao et al. 2017, a=0, b=1, c=1) ------------------------------------------

def _lsgan_d(real: Tensor, fake: Tensor, real_target: Target = 1.0, fake_target: Target = 0.0) -> Tensor:
    # 1/2 E[(D(real) - t_r)^2] + 1/2 E[(D(fake) - t_f)^2]
    return 0.5 * ((real - _per_logit(real_target, real)) ** 2).mean() + \
        0.5 * ((fake - _per_logit(fake_target, fake)) ** 2).mean()


def _lsgan_g(fake: Tensor) -> Tensor:
    # 1/2 E[(D(fake) - 1)^2]: penalises fakes by their distance from the real target, so
    # gradients do not vanish for fakes D classifies correctly but far from the data
    return 0.5 * ((fake - 1.0) ** 2).mean()


for _loss in (
    AdversarialLoss("nonsaturating", _bce_d, _nonsaturating_g, True, 0.0,
                    "binary cross-entropy; G maximises log D(G(z)) (the usual GAN loss)"),
    AdversarialLoss("saturating", _bce_d, _saturating_g, True, 0.0,
                    "binary cross-entropy; G minimises log(1 - D(G(z))) (the original minimax)"),
    AdversarialLoss("wasserstein", _wasserstein_d, _wasserstein_g, False, None,
                    "critic scores; use with a gradient penalty (WGAN-GP) or spectral norm"),
    AdversarialLoss("hinge", _hinge_d, _wasserstein_g, False, 0.0,
                    "margin loss for D, -D(G(z)) for G (SAGAN, BigGAN)"),
    AdversarialLoss("lsgan", _lsgan_d, _lsgan_g, True, 0.5, "least squares towards targets 1 / 0"),
):
    LOSSES.register(_loss.name, _loss)
