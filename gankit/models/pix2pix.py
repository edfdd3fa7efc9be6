"""pix2pix's networks (Isola et al. 2017; junyanz/pytorch-CycleGAN-and-pix2pix, networks.py).

G, a U-Net: an encoder of `downs` 4x4 stride-2 convs (LeakyReLU 0.2, then conv, then norm;
none before the first conv, no norm after the first nor after the innermost one, which reaches
1x1), a mirrored decoder of 4x4 stride-2 transposed convs (ReLU, conv, norm; tanh at the end),
and a skip connection around every level: each decoder level sees its encoder twin's features
beside its own. Widths ngf, 2, 4, 8, 8, ... x ngf (at most 8x); dropout 0.5 after the decoder
convs of the 8x levels between the innermost one and the 8x level nearest the outside (three
levels at 256 px), as in the reference. The encoder features a skip carries are those after the
next level's LeakyReLU: the reference's LeakyReLU works in place on the tensor that is also
concatenated, so its skips carry activated features, and we do the same on purpose.

D, the conditional 70x70 PatchGAN: the PatchGAN of CycleGAN (models/cyclegan.py) on the input
image and the real or generated output side by side (2C channels, input first); one logit per
patch, so it judges whether each patch of the output is a plausible translation of the input.

Normalisation: the reference trains with batch norm at batch size 1, and tests in train mode
(without --eval), so its "batch norm" is a per-image normalisation with a learnt scale and shift,
in training and at test time alike. `norm="instance"` (affine instance norm) is exactly that at
any batch size, and keeps a translation independent of what else is in its batch; `norm="batch"`
is real batch norm, for batches of several images (at evaluation it uses running statistics, as
the reference with --eval). The convs before a norm have no bias (the norm's shift replaces it),
as in the reference. Weights start N(0, 0.02), norm scales N(1, 0.02).

Deliberate deviation: the reference also keeps dropout on at test time (the paper's source of
noise); `translate apply` runs G in eval mode, so a translation is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import GankitError
from .cyclegan import PatchDiscriminator

NORMS = ("instance", "batch", "none")
MAX_DOWNS = 8  # the reference's unet_256; 2^8 = 256


@dataclass
class Pix2PixOptions:
    g_width: int = 64  # filters of the U-Net's outermost level (ngf)
    downs: int | None = None  # U-Net levels; None: halve down to 1x1 (8 at 256 px, at most 8)
    d_width: int = 64  # filters of D's first layer (ndf), doubling per layer up to 8x
    d_layers: int = 3  # stride-2 convs in D: 3 makes the 70x70 PatchGAN
    norm: str = "instance"  # instance | batch | none (see the module's docstring)
    dropout: float = 0.5  # in the decoder's inner 8x levels (the reference: 0.5)
    l1_weight: float = 100.0  # lambda_L1: weight of the L1 distance between G(input) and the target
    gan_weight: float = 1.0  # the reference's G loss is GAN + 100 L1 with the same BCE as ours


def validate_options(o: Pix2PixOptions) -> None:
    if o.norm not in NORMS:
        raise GankitError(f"model.norm={o.norm!r} is not valid: use one of {', '.join(NORMS)}")
    if o.g_width < 1 or o.d_width < 1 or o.d_layers < 1 or (o.downs is not None and o.downs < 1):
        raise GankitError("model.g_width, d_width, d_layers and downs must be at least 1 (the "
                          "defaults are 64, 64, 3 and as many halvings as the size allows, at most 8)")
    if not 0.0 <= o.dropout < 1.0:
        raise GankitError(f"model.dropout={o.dropout} must be in [0, 1) (the default is 0.5)")
    if min(o.l1_weight, o.gan_weight) < 0:
        raise GankitError("model.l1_weight and gan_weight must be 0 or more (the defaults are 100 and 1)")


def default_downs(size: int) -> int:
    """Halvings down to 1x1 (as unet_256 and unet_128), at most 8; sizes that are not powers of
    two stop where the side becomes odd."""
    downs = 0
    while size % 2 == 0 and size > 1 and downs < MAX_DOWNS:
        size, downs = size // 2, downs + 1
    return downs


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


def _init(module: nn.Module) -> None:
    # the reference's init_type=normal, gain 0.02; a norm's scale N(1, 0.02) and shift 0
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class UNetLevel(nn.Module):
    """One level of the U-Net: x -> [skip(x), up(inner(down(x)))] (the outermost: without the skip)."""

    def __init__(self, outer: int, inner: int, norm: str, inner_level: "UNetLevel | None",
                 outermost_in: int | None = None, dropout: float = 0.0):
        super().__init__()
        self.outermost = outermost_in is not None
        self.innermost = inner_level is None
        bias = norm == "none"
        down_norm = not (self.outermost or self.innermost)
        self.act = nn.Identity() if self.outermost else nn.LeakyReLU(0.2)
        self.down = nn.Sequential(
            # no bias even without a norm after it (outermost, innermost): as the reference
            nn.Conv2d(outermost_in if self.outermost else outer, inner, 4, 2, 1, bias=bias),
            _norm(norm, inner) if down_norm else nn.Identity())
        self.inner = inner_level if inner_level is not None else nn.Identity()
        up_in = inner if self.innermost else 2 * inner  # the inner level returns [skip, features]
        if self.outermost:
            self.up = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(up_in, outer, 4, 2, 1), nn.Tanh())
        else:
            self.up = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=bias),
                                    _norm(norm, outer), *([nn.Dropout(dropout)] if dropout else []))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(x)  # the skip carries the activated features (see the module's docstring)
        y = self.up(self.inner(self.down(x)))
        return y if self.outermost else torch.cat([x, y], 1)


class UNetGenerator(nn.Module):
    """pix2pix's G (the ImageTranslator contract, one direction: input -> target)."""

    output_range = (-1.0, 1.0)
    directions = ("a2b",)

    def __init__(self, size: int, channels: int, o: Pix2PixOptions):
        super().__init__()
        self.size, self.channels = size, channels
        self.downs = o.downs if o.downs is not None else default_downs(size)
        if self.downs < 1 or size % 2 ** self.downs:
            raise GankitError(f"size {size} does not suit a U-Net of {self.downs} levels, which halves "
                              f"the image {self.downs} times: use a size divisible by 2^{self.downs} "
                              "(e.g. --size 32 or 256) or set model.downs")
        widths = [o.g_width * min(2 ** i, 8) for i in range(self.downs)]  # inner widths, outside in
        level = None
        for i in reversed(range(self.downs)):
            outer = widths[i - 1] if i else channels
            inner_8x = i >= 4 and i < self.downs - 1  # the reference's num_downs - 5 dropout levels
            level = UNetLevel(outer, widths[i], o.norm, level, outermost_in=channels if i == 0 else None,
                              dropout=o.dropout if inner_8x else 0.0)
        self.net = level
        _init(self)

    def forward(self, images: torch.Tensor, direction: str = "a2b") -> torch.Tensor:
        assert direction == "a2b", f"pix2pix translates one way (a2b), got {direction!r}"
        assert images.dim() == 4 and images.shape[1] == self.channels, (
            f"images: expected (B, {self.channels}, H, W), got {tuple(images.shape)}")
        return self.net(images)  # (B, C, H, W) in [-1, 1]


class ConditionalPatchDiscriminator(nn.Module):
    """D(output, input): the PatchGAN on [input, output] (the Discriminator contract, with the
    input image as the condition)."""

    def __init__(self, size: int, channels: int, o: Pix2PixOptions):
        super().__init__()
        self.size, self.channels = size, channels
        self.patch = PatchDiscriminator(size, 2 * channels, o.d_width, o.d_layers, o.norm, affine=True)
        _init(self)

    def blocks_from_image(self) -> list[nn.Module]:
        return self.patch.blocks_from_image()

    def forward(self, images: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        assert condition is not None and condition.shape == images.shape, (
            "pix2pix's D judges an output beside its input: D(output, input)")
        return self.patch(torch.cat([condition, images], 1))  # the reference's order: A, then B
