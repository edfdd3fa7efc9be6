"""Small building blocks shared by several architectures."""

from __future__ import annotations

import torch
from torch import nn


class ShiftOnlyBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm with a learnable shift but no learnable scale (Keras `scale=False`).

    Followed by ReLU/LeakyReLU a scale is redundant (the next layer can absorb it), which is
    why the keras-io GAN-ADA DCGAN drops it. Works on (B, C) and (B, C, H, W) inputs.
    """

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=True)
        # F.batch_norm accepts weight=None with a bias: the normalised input is only shifted.
        self.register_parameter("weight", None)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() not in (2, 4):
            raise ValueError(f"expected a 2D or 4D input, got {input.dim()}D")
