"""The DCGAN of the keras-io example "Data-efficient GANs with Adaptive Discriminator Augmentation".

G: z (B, latent) -> Linear (no bias) -> BN (shift only) -> ReLU -> (B, width, 4, 4)
   -> (depth - 1) x [ConvT 4x4 /2 (no bias) -> BN (shift only) -> ReLU] -> ConvT 4x4 /2 -> sigmoid
D: (B, C, S, S) -> depth x [Conv 4x4 /2 (no bias) -> BN (shift only) -> LeakyReLU 0.2]
   -> flatten -> dropout -> Linear -> logit
with depth = log2(size) - 2, so G doubles 4 -> size and D halves size -> 4.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import GankitError
from ..nn import ShiftOnlyBatchNorm, split_at
from .convnets import glorot_init  # Keras' default initialiser, as the reference example


def dcgan_depth(size: int) -> int:
    """Number of stride-2 stages between 4x4 and `size` x `size`."""
    if size < 8 or size > 1024 or size & (size - 1):
        raise GankitError(
            f"size {size} is not supported by the DCGAN: use a power of two from 8 to 1024 "
            "(e.g. --size 32 or --size 64)"
        )
    return int(math.log2(size)) - 2


def _norm(channels: int) -> ShiftOnlyBatchNorm:
    # Keras' BatchNormalization defaults (moving-average momentum 0.99, eps 1e-3), as in the
    # reference: the EMA generator samples in eval mode with these running statistics.
    return ShiftOnlyBatchNorm(channels, momentum=0.01, eps=1e-3)


class DCGANGenerator(nn.Module):
    output_range = (0.0, 1.0)  # sigmoid output

    def __init__(self, size: int, channels: int, latent_dim: int = 64, width: int = 128):
        super().__init__()
        depth = dcgan_depth(size)
        self.latent_dim, self.size, self.channels, self.width = latent_dim, size, channels, width
        self.num_classes = 0  # unconditional (the cgan recipe is the conditional DCGAN family)
        self.project = nn.Sequential(
            nn.Linear(latent_dim, 4 * 4 * width, bias=False),
            _norm(4 * 4 * width),
            nn.ReLU(inplace=True),
        )
        blocks = []
        for _ in range(depth - 1):
            blocks += [
                nn.ConvTranspose2d(width, width, 4, stride=2, padding=1, bias=False),
                _norm(width),
                nn.ReLU(inplace=True),
            ]
        blocks += [nn.ConvTranspose2d(width, channels, 4, stride=2, padding=1), nn.Sigmoid()]
        self.upsample = nn.Sequential(*blocks)
        glorot_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        assert z.dim() == 2 and z.shape[1] == self.latent_dim, f"z: expected (B, {self.latent_dim})"
        x = self.project(z).view(-1, self.width, 4, 4)  # (B, width, 4, 4)
        return self.upsample(x)  # (B, C, size, size)


class DCGANDiscriminator(nn.Module):
    def __init__(self, size: int, channels: int, width: int = 128, dropout: float = 0.4):
        super().__init__()
        depth = dcgan_depth(size)
        self.size, self.channels = size, channels
        layers: list[nn.Module] = []
        in_channels = channels
        for _ in range(depth):
            layers += [
                nn.Conv2d(in_channels, width, 4, stride=2, padding=1, bias=False),
                _norm(width),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            in_channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(width * 4 * 4, 1))
        glorot_init(self)

    def blocks_from_image(self) -> list[nn.Module]:
        """D's blocks in the order the image meets them, the head excluded (FreezeD freezes the
        first N; the contract FreezableDiscriminator)."""
        return split_at(self.features, (nn.Conv2d,))  # conv, norm, LeakyReLU

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        assert images.shape[1:] == (self.channels, self.size, self.size), (
            f"images: expected (B, {self.channels}, {self.size}, {self.size}), got {tuple(images.shape)}"
        )
        return self.head(self.features(images)).squeeze(1)  # (B,)
