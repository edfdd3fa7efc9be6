"""CycleGAN's networks (Zhu et al. 2017, appendix 7.2; junyanz/pytorch-CycleGAN-and-pix2pix).

G, Johnson et al.'s ResNet: c7s1-64, d128, d256, R256 x n, u128, u64, c7s1-C, tanh
    c7s1-k  reflection pad 3, 7x7 conv with k filters, instance norm, ReLU (the last: tanh, no norm)
    dk      3x3 conv stride 2, instance norm, ReLU          (B, k, S/2, S/2)
    Rk      x + [pad 1, 3x3 conv, norm, ReLU, pad 1, 3x3 conv, norm](x), at S/4
    uk      3x3 transposed conv stride 1/2, instance norm, ReLU
    n = 6 residual blocks up to 128 px, 9 above (the paper's choice).
D, the 70x70 PatchGAN of pix2pix: C64 - C128 - C256 - C512 - 1-channel conv
    Ck      4x4 conv stride 2 (C512: stride 1), instance norm (never on C64), LeakyReLU 0.2
    Each output logit sees a 70x70 patch of the input, so D judges texture and style rather than
    layout, with fewer weights, and works at any image size.
Reflection padding keeps the borders free of the artefacts zero padding leaves; instance norm
has no affine parameters (as the reference), so every conv keeps its bias. Weights start N(0, 0.02).

The loop sees one G and one D: `CycleGenerators` holds both generators (one optimiser, one
checkpoint entry) and `CycleDiscriminators` both discriminators, one per domain.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import GankitError
from ..nn import split_at

DIRECTIONS = ("a2b", "b2a")
NORMS = ("instance", "none")


@dataclass
class CycleGANOptions:
    g_width: int = 64  # filters of G's first layer (ngf); d128 and d256 are 2x and 4x it
    g_blocks: int | None = None  # residual blocks; None: 6 up to 128 px, 9 above (the paper)
    d_width: int = 64  # filters of D's first layer (ndf), doubling per layer up to 8x
    d_layers: int = 3  # stride-2 convs in D: 3 makes the 70x70 PatchGAN
    norm: str = "instance"  # instance | none: per-image statistics (batch norm would mix a batch)
    dropout: float = 0.0  # inside the residual blocks (the reference trains CycleGAN without it)
    cycle_weight: float = 10.0  # lambda: weight of the L1 cycle losses A->B->A and B->A->B
    identity_weight: float = 0.5  # identity L1 weighs this times cycle_weight (the paper: 0.5 lambda)
    # Our lsgan G loss is Mao et al.'s 1/2 E[(D - 1)^2]; the reference's is E[(D - 1)^2]. Twice
    # ours keeps the reference's balance of 1 : lambda between the adversarial and cycle terms.
    gan_weight: float = 2.0


def validate_options(o: CycleGANOptions) -> None:
    if o.norm not in NORMS:
        raise GankitError(f"model.norm={o.norm!r} is not valid: use one of {', '.join(NORMS)}")
    if o.g_width < 1 or o.d_width < 1 or o.d_layers < 1 or (o.g_blocks is not None and o.g_blocks < 0):
        raise GankitError("model.g_width, d_width and d_layers must be at least 1 and model.g_blocks "
                          "0 or more (the defaults are 64, 64, 3 and 6 or 9 by size)")
    if not 0.0 <= o.dropout < 1.0:
        raise GankitError(f"model.dropout={o.dropout} must be in [0, 1) (the default is 0)")
    if min(o.cycle_weight, o.identity_weight, o.gan_weight) < 0:
        raise GankitError("model.cycle_weight, identity_weight and gan_weight must be 0 or more "
                          "(the defaults are 10, 0.5 and 2)")


def default_blocks(size: int) -> int:
    return 6 if size <= 128 else 9


def _norm(kind: str, channels: int, affine: bool = False) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.InstanceNorm2d(channels, affine=affine) if kind == "instance" else nn.Identity()


def _normal_init(module: nn.Module) -> None:
    # the reference's init_type=normal, gain 0.02 (the DCGAN paper's initialisation)
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, norm: str, dropout: float):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(norm, channels), nn.ReLU(True),
            *([nn.Dropout(dropout)] if dropout else []),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(norm, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    def __init__(self, size: int, channels: int, o: CycleGANOptions):
        super().__init__()
        if size % 4 or size < 8:
            raise GankitError(f"size {size} does not suit CycleGAN's generator, which halves the "
                              "image twice: use a multiple of 4 from 8 up (e.g. --size 32 or 256)")
        self.size, self.channels = size, channels
        self.blocks = o.g_blocks if o.g_blocks is not None else default_blocks(size)
        w = o.g_width
        self.net = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(channels, w, 7), _norm(o.norm, w), nn.ReLU(True),  # c7s1-64
            nn.Conv2d(w, 2 * w, 3, 2, 1), _norm(o.norm, 2 * w), nn.ReLU(True),  # d128
            nn.Conv2d(2 * w, 4 * w, 3, 2, 1), _norm(o.norm, 4 * w), nn.ReLU(True),  # d256
            *[ResidualBlock(4 * w, o.norm, o.dropout) for _ in range(self.blocks)],  # R256 x n
            nn.ConvTranspose2d(4 * w, 2 * w, 3, 2, 1, output_padding=1), _norm(o.norm, 2 * w), nn.ReLU(True),
            nn.ConvTranspose2d(2 * w, w, 3, 2, 1, output_padding=1), _norm(o.norm, w), nn.ReLU(True),
            nn.ReflectionPad2d(3), nn.Conv2d(w, channels, 7), nn.Tanh())  # c7s1-C
        _normal_init(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # any size that is a multiple of 4 (the nets are fully convolutional), so `translate
        # apply` is not tied to the training size by the model itself
        assert images.dim() == 4 and images.shape[1] == self.channels, (
            f"images: expected (B, {self.channels}, H, W), got {tuple(images.shape)}")
        return self.net(images)  # (B, C, H, W) in [-1, 1]


class PatchDiscriminator(nn.Module):
    """The PatchGAN on `channels`-channel images (pix2pix's sees input and output side by side)."""

    def __init__(self, size: int, channels: int, width: int = 64, layers_: int = 3,
                 norm: str = "instance", affine: bool = False):
        super().__init__()
        self.size, self.channels = size, channels
        widths = [width * min(2 ** i, 8) for i in range(layers_ + 1)]  # 64, 128, 256, 512
        # a norm with a learnt shift makes the conv's bias redundant (the reference drops it)
        bias = norm == "none" or (norm == "instance" and not affine)
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for i in range(1, layers_ + 1):
            stride = 2 if i < layers_ else 1  # C512 keeps the resolution
            layers += [nn.Conv2d(widths[i - 1], widths[i], 4, stride, 1, bias=bias),
                       _norm(norm, widths[i], affine), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, 1))  # one logit per patch
        self.net = nn.Sequential(*layers)
        side = size
        for conv in self.convs():
            side = (side + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1
        if side < 1:
            raise GankitError(f"size {size} is too small for D's {layers_} stride-2 layers "
                              f"(model.d_layers={layers_}): use a larger --size (32 or more for "
                              "the default 3) or fewer layers")
        self.patches = side  # logits per side
        _normal_init(self)

    def convs(self) -> list[nn.Conv2d]:
        return [m for m in self.net if isinstance(m, nn.Conv2d)]

    @property
    def receptive_field(self) -> int:
        """Side of the input patch one logit sees: r <- (r - 1) * stride + kernel, from the output back."""
        r = 1
        for conv in reversed(self.convs()):
            r = (r - 1) * conv.stride[0] + conv.kernel_size[0]
        return r

    def blocks_from_image(self) -> list[nn.Module]:
        """D's blocks in the order the image meets them, the head excluded (FreezeD freezes the
        first N; the contract FreezableDiscriminator)."""
        return split_at(self.net, (nn.Conv2d,))[:-1]  # the last conv, one logit per patch, is the head

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        assert images.shape[1:] == (self.channels, self.size, self.size), (
            f"images: expected (B, {self.channels}, {self.size}, {self.size}), got {tuple(images.shape)}")
        return self.net(images)  # (B, 1, p, p): one logit per patch; the losses average them


class CycleGenerators(nn.Module):
    """G: A -> B and F: B -> A (the ImageTranslator contract, both directions)."""

    output_range = (-1.0, 1.0)
    directions = DIRECTIONS

    def __init__(self, size: int, channels: int, o: CycleGANOptions):
        super().__init__()
        self.a2b = ResnetGenerator(size, channels, o)
        self.b2a = ResnetGenerator(size, channels, o)
        self.size, self.channels = size, channels

    def forward(self, images: torch.Tensor, direction: str = "a2b") -> torch.Tensor:
        assert direction in DIRECTIONS, direction
        return self.a2b(images) if direction == "a2b" else self.b2a(images)


class CycleDiscriminators(nn.Module):
    """D_A judges images of domain A (reals against B->A fakes), D_B those of domain B (the
    DomainDiscriminators contract)."""

    parts = ("a", "b")  # the task keeps one replay pool per part: their fakes are different domains

    def __init__(self, size: int, channels: int, o: CycleGANOptions):
        super().__init__()
        self.a = PatchDiscriminator(size, channels, o.d_width, o.d_layers, o.norm)
        self.b = PatchDiscriminator(size, channels, o.d_width, o.d_layers, o.norm)

    def part(self, domain: str) -> PatchDiscriminator:
        assert domain in self.parts, domain
        return self.a if domain == "a" else self.b

    def forward(self, images: torch.Tensor, domain: str) -> torch.Tensor:
        return self.part(domain)(images)
