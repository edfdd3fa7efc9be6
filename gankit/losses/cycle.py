"""CycleGAN's reconstruction losses: pure functions of images (Zhu et al. 2017, eq. 2 and sec. 5.2).

    cycle     E[|F(G(x)) - x|_1]  translating there and back must return the input; without it
                                  G may map every x to any image of the target domain
    identity  E[|G(y) - y|_1]     an image already in G's target domain should pass unchanged;
                                  keeps colours and tints that the cycle loss alone lets drift

L1 rather than L2: the paper's choice, which tolerates the few pixels a translation must change.
Both are taken in fp32, as the adversarial losses are.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def cycle_loss(reconstructed: Tensor, original: Tensor) -> Tensor:
    # mean |F(G(x)) - x| over every pixel and channel
    return (reconstructed.float() - original.float()).abs().mean()


def identity_loss(mapped: Tensor, original: Tensor) -> Tensor:
    # mean |G(y) - y|: the same L1, named for what it asks of G
    return (mapped.float() - original.float()).abs().mean()
