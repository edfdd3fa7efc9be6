"""The optimisers of G and D."""

from __future__ import annotations

import torch

from ..config import OptimConfig


def make_optimizer(net: torch.nn.Module, optim: OptimConfig, lr: float) -> torch.optim.Optimizer:
    # frozen weights (FreezeD) are not the optimiser's: no moments are kept for them
    params = [p for p in net.parameters() if p.requires_grad]
    if optim.name == "rmsprop":  # Keras' RMSprop defaults (rho 0.9, eps 1e-7), as Hands-On ML uses it
        return torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-7)
    return torch.optim.Adam(params, lr=lr, betas=(optim.beta1, optim.beta2))
