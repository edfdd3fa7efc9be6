"""Adversarial losses: pure functions of the discriminator's logits.

A loss is a pair (d_loss(real_logits, fake_logits), g_loss(fake_logits)), each returning a
scalar averaged over every logit (so patch discriminators work unchanged). New losses are one
entry in LOSSES; the training loop only ever calls these two methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..registry import Registry

Tensor = torch.Tensor


@dataclass(frozen=True)
class AdversarialLoss:
    name: str
    d_loss: Callable[[Tensor, Tensor], Tensor]
    g_loss: Callable[[Tensor], Tensor]


LOSSES: Registry[AdversarialLoss] = Registry("loss", lambda x: isinstance(x, AdversarialLoss))


def get_loss(name: str) -> AdversarialLoss:
    return LOSSES.get(name)


def _nonsaturating_d(real: Tensor, fake: Tensor) -> Tensor:
    # -log(sigmoid(real)) - log(1 - sigmoid(fake)), i.e. BCE(1, real) + BCE(0, fake)
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def _nonsaturating_g(fake: Tensor) -> Tensor:
    # -log(sigmoid(fake)): strong gradients while D still rejects the fakes (Goodfellow 2014)
    return F.softplus(-fake).mean()


LOSSES.register("nonsaturating", AdversarialLoss("nonsaturating", _nonsaturating_d, _nonsaturating_g))
