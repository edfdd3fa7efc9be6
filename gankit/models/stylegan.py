"""A StyleGAN-style generator and its residual discriminator (Karras et al. 2019, 2020).

G = synthesis(mapping(z)):
  mapping    z (B, latent) -> pixel norm [+ label embedding] -> n x (equalized linear, lr x0.01,
             leaky ReLU) -> w (B, w_dim); the running mean of w is tracked for truncation
  synthesis  a learned constant (C4, 4, 4) -> per resolution: [upsampling] style conv ->
             noise -> leaky ReLU, twice (once at 4x4), each conv styled by its own w; a 1x1
             toRGB per resolution, summed up the resolutions (StyleGAN2's skip generator)
             -> (B, C, size, size) through tanh (model.output=linear: the reference's; see the option)
  ws: one w per style layer, `num_ws` = 2 x resolutions; index 0 is the coarsest. Styles are
  applied by modulated/demodulated convs (StyleGAN2, `style=modulated`) or by AdaIN after plain
  convs (StyleGAN, `style=adain`). In training, with probability `mixing_prob` a batch switches
  from one z's w to another's at a random layer (style mixing regularisation), so neighbouring
  styles do not learn to depend on each other.
D: fromRGB -> per resolution a residual block (two 3x3 convs, 2x average pool; the skip a 1x1
   conv), scaled by 1/sqrt(2) -> 4x4: minibatch stddev -> 3x3 conv -> linear -> linear -> logit
   [+ projection of a label embedding]. Every layer uses the equalized learning rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GankitError
from ..nn import MinibatchStdDev
from ..nn.equalized import (OUTPUTS, AdaIN, Blur, EqualizedConv2d, EqualizedLinear, ModulatedConv2d, NoiseInjection,
                            PixelNorm, lrelu)
from .conditional import Projection


@dataclass
class StyleGANOptions:
    latent_dim: int = 128  # z size (512 in the papers; smaller suits small data and a CPU)
    w_dim: int = 128  # style vector size
    mapping_layers: int = 8  # StyleGAN's depth; 2 is enough for small data (StyleGAN2-ADA cifar)
    mapping_lr_mul: float = 0.01  # the mapping network learns 100x slower (StyleGAN)
    channel_base: int = 2048  # channels at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 128  # (512 in the papers: small data and a CPU want less)
    style: str = "modulated"  # modulated (StyleGAN2 demodulated convs) | adain (StyleGAN)
    noise: bool = True  # per-layer noise inputs with learned per-channel strength
    mixing_prob: float = 0.9  # style mixing regularisation (StyleGAN)
    w_avg_beta: float = 0.995  # decay of the tracked mean of w (truncation's centre)
    mbstd_group: int = 4  # minibatch stddev group size in D
    embedding_dim: int = 64  # conditional: size of the label embedding joined to z
    # tanh, a deliberate deviation from StyleGAN2's reference, which outputs linearly (a saturating
    # tanh needs unbounded pre-activations for pure black and white pixels). Measured on mnist5k at
    # 32 px with the CPU sizes (channel_max 64, 4 mapping layers, batch 32, one thread): with the
    # linear output the raw G collapsed to one or two digits in 3 of 3 runs (800 steps with and
    # without path-length regularisation, with blur or pool in D; the 3007-step benchmark run:
    # recall 0.0, KID 1.30), with tanh it drew 7 of 10 digits at 800 steps in 3 of 3 (and KID 0.165,
    # recall 0.64 in the 2828-step run). `model.output=linear` is the reference's choice; images
    # are clipped to the range for display and metrics only.
    output: str = "tanh"
    # how D halves the resolution: blur (StyleGAN2's [1, 3, 3, 1] low-pass, then stride 2) or pool
    # (a 2x2 average after the conv: gankit's runs saved before this option)
    d_downsample: str = "blur"


def validate_options(o: StyleGANOptions) -> None:
    if o.output not in OUTPUTS:
        raise GankitError(f"model.output={o.output!r} is not valid: use linear (the references) or tanh")
    if o.d_downsample not in ("blur", "pool"):
        raise GankitError(f"model.d_downsample={o.d_downsample!r} is not valid: use blur (StyleGAN2) or pool")
    if o.style not in ("modulated", "adain"):
        raise GankitError(f"model.style={o.style!r} is not valid: use modulated (StyleGAN2) or adain (StyleGAN)")
    for key in ("latent_dim", "w_dim", "mapping_layers", "channel_base", "channel_max", "mbstd_group", "embedding_dim"):
        if getattr(o, key) < 1:
            raise GankitError(f"model.{key}={getattr(o, key)} must be at least 1")
    if not 0.0 <= o.mixing_prob <= 1.0 or not 0.0 <= o.w_avg_beta < 1.0 or o.mapping_lr_mul <= 0:
        raise GankitError("model.mixing_prob must be in [0, 1], model.w_avg_beta in [0, 1) and "
                          "model.mapping_lr_mul positive")


def resolutions(size: int) -> list[int]:
    if size < 4 or size & (size - 1):
        raise GankitError(f"size {size} is not supported by the StyleGAN generator: use a power of two "
                          "from 4 up (e.g. --size 32 or --size 64)")
    return [2 ** k for k in range(2, int(math.log2(size)) + 1)]


def channels_at(res: int, o: StyleGANOptions) -> int:
    return max(1, min(o.channel_base // res, o.channel_max))


class MappingNetwork(nn.Module):
    def __init__(self, o: StyleGANOptions, num_classes: int):
        super().__init__()
        self.embed = EqualizedLinear(num_classes, o.embedding_dim) if num_classes else None
        self.num_classes = num_classes
        dims = [o.latent_dim + (o.embedding_dim if num_classes else 0)] + [o.w_dim] * o.mapping_layers
        self.layers = nn.ModuleList(EqualizedLinear(a, b, lr_mul=o.mapping_lr_mul) for a, b in zip(dims, dims[1:]))
        self.norm = PixelNorm()

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        x = self.norm(z)
        if self.embed is not None:
            assert labels is not None, "a conditional G needs one label per z"
            x = torch.cat([x, self.norm(self.embed(F.one_hot(labels, self.num_classes).to(z.dtype)))], dim=1)
        for layer in self.layers:
            x = lrelu(layer(x))
        return x  # (B, w_dim)


class StyleLayer(nn.Module):
    """[up] conv styled by w -> noise -> bias -> leaky ReLU."""

    def __init__(self, c_in: int, c_out: int, res: int, o: StyleGANOptions, up: bool):
        super().__init__()
        self.modulated = o.style == "modulated"
        if self.modulated:
            self.conv = ModulatedConv2d(c_in, c_out, 3, o.w_dim, demodulate=True, up=up)
        else:
            self.conv_plain = EqualizedConv2d(c_in, c_out, 3, bias=False)
            self.adain = AdaIN(c_out, o.w_dim)
            self.up = up
        self.noise = NoiseInjection(c_out, res) if o.noise else None
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.modulated:
            x = self.conv(x, w)
        else:
            if self.up:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = self.conv_plain(x)
        if self.noise is not None:
            x = self.noise(x)
        x = lrelu(x + self.bias.view(1, -1, 1, 1))
        return x if self.modulated else self.adain(x, w)  # AdaIN after noise and activation (StyleGAN)


class ToRGB(nn.Module):
    """A 1x1 conv modulated by w, without demodulation (the output's scale matters)."""

    def __init__(self, c_in: int, channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(c_in, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias.view(1, -1, 1, 1)


class StyleGenerator(nn.Module):
    output_range = (-1.0, 1.0)

    def __init__(self, size: int, channels: int, o: StyleGANOptions, num_classes: int = 0):
        super().__init__()
        self.size, self.channels, self.num_classes = size, channels, num_classes
        self.tanh = o.output == "tanh"
        self.latent_dim, self.w_dim, self.mixing_prob, self.w_avg_beta = o.latent_dim, o.w_dim, o.mixing_prob, o.w_avg_beta
        res_list = resolutions(size)
        self.mapping_net = MappingNetwork(o, num_classes)
        c4 = channels_at(4, o)
        self.const = nn.Parameter(torch.randn(1, c4, 4, 4))
        self.layers = nn.ModuleList([StyleLayer(c4, c4, 4, o, up=False)])
        self.to_rgb = nn.ModuleList([ToRGB(c4, channels, o.w_dim)])
        # w index of each layer: 4x4 conv 0, toRGB 1; block k >= 1: convs 2k-1, 2k, toRGB 2k+1
        self.layer_ws, self.rgb_ws = [0], [1]
        c_prev = c4
        for k, res in enumerate(res_list[1:], start=1):
            c = channels_at(res, o)
            self.layers.append(StyleLayer(c_prev, c, res, o, up=True))
            self.layers.append(StyleLayer(c, c, res, o, up=False))
            self.to_rgb.append(ToRGB(c, channels, o.w_dim))
            self.layer_ws += [2 * k - 1, 2 * k]
            self.rgb_ws.append(2 * k + 1)
            c_prev = c
        self.num_ws = 2 * len(res_list)
        self.register_buffer("w_avg", torch.zeros(o.w_dim))

    def mapping(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        assert z.dim() == 2 and z.shape[1] == self.latent_dim, f"z: expected (B, {self.latent_dim})"
        return self.mapping_net(z, labels if self.num_classes else None)

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        assert ws.dim() == 3 and ws.shape[1:] == (self.num_ws, self.w_dim), f"ws: expected (B, {self.num_ws}, {self.w_dim})"
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        rgb = None
        layer = 0
        for block, to_rgb in enumerate(self.to_rgb):
            for _ in range(1 if block == 0 else 2):
                x = self.layers[layer](x, ws[:, self.layer_ws[layer]])
                layer += 1
            y = to_rgb(x, ws[:, self.rgb_ws[block]])
            # bilinear 2x is the reference's [1,3,3,1] FIR upsample2d everywhere but the outermost
            # row and column (it repeats the edge where the FIR pads with zeros; checked numerically)
            rgb = y if rgb is None else F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False) + y
        return torch.tanh(rgb) if self.tanh else rgb  # (B, C, size, size), about the declared range

    def style_weights(self) -> list[tuple[int, torch.Tensor]]:
        """(index into ws, the effective affine weight (styles, w_dim) that turns that w into the
        style conv's style) for each style conv, coarsest first: what SeFa factorises."""
        out = []
        for layer, index in zip(self.layers, self.layer_ws):
            affines = [layer.conv.affine] if layer.modulated else [layer.adain.scale, layer.adain.shift]
            out += [(index, (affine.weight * affine.scale).detach()) for affine in affines]
        return out

    def truncate(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        """The truncation trick: pull w towards the average w (psi 1: none; 0: the average face)."""
        return self.w_avg.to(w.dtype).lerp(w, psi) if psi != 1.0 else w

    def styles(self, z: torch.Tensor, labels: torch.Tensor | None = None, truncation_psi: float = 1.0) -> torch.Tensor:
        """The per-layer styles ws (B, num_ws, w_dim) that forward draws: mapping, then in training
        the tracking of w's mean and style mixing (a second z's w from a random layer on)."""
        w = self.mapping(z, labels)
        if self.training:  # track the mean w for truncation
            with torch.no_grad():
                self.w_avg.copy_(w.detach().float().mean(0).lerp(self.w_avg, self.w_avg_beta))
        ws = self.truncate(w, truncation_psi).unsqueeze(1).repeat(1, self.num_ws, 1)
        if self.training and self.mixing_prob > 0 and torch.rand(()) < self.mixing_prob:
            cutoff = int(torch.randint(1, self.num_ws, ()))
            w2 = self.mapping(torch.randn_like(z), labels)
            ws[:, cutoff:] = w2.unsqueeze(1)
        return ws

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, truncation_psi: float = 1.0) -> torch.Tensor:
        return self.synthesis(self.styles(z, labels, truncation_psi))


class ResidualBlock(nn.Module):
    """D's block: two 3x3 convs and a 1x1 skip, each halving the resolution. downsample "blur"
    (StyleGAN2's): low-pass [1, 3, 3, 1] filter, then the second conv strided and the skip taken
    at every other pixel, as the reference's conv2d_resample(down=2); "pool": a 2x2 average after
    the conv (gankit's runs saved before the option)."""

    def __init__(self, c_in: int, c_out: int, downsample: str = "blur"):
        super().__init__()
        self.blur = downsample == "blur"
        self.conv0 = EqualizedConv2d(c_in, c_in, 3)
        self.conv1 = EqualizedConv2d(c_in, c_out, 3, padding=0, stride=2) if self.blur else EqualizedConv2d(c_in, c_out, 3)
        self.skip = EqualizedConv2d(c_in, c_out, 1, bias=False)
        if self.blur:  # paddings as the reference's for a 3x3 (and a 1x1) kernel with down=2
            self.blur_conv, self.blur_skip = Blur((2, 2)), Blur((1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W) -> (B, C_out, H/2, W/2)
        if self.blur:
            y = lrelu(self.conv1(self.blur_conv(lrelu(self.conv0(x)))))
            skip = self.skip(self.blur_skip(x)[:, :, ::2, ::2])
        else:
            y = F.avg_pool2d(lrelu(self.conv1(lrelu(self.conv0(x)))), 2)
            skip = self.skip(F.avg_pool2d(x, 2))
        # 1/sqrt(2): the sum of two unit-variance branches keeps unit variance
        return (skip + y) * (1 / math.sqrt(2))


class StyleDiscriminator(nn.Module):
    def __init__(self, size: int, channels: int, o: StyleGANOptions, num_classes: int = 0):
        super().__init__()
        self.size, self.channels, self.num_classes = size, channels, num_classes
        res_list = resolutions(size)
        self.from_rgb = EqualizedConv2d(channels, channels_at(size, o), 1)
        self.blocks = nn.Sequential(*[ResidualBlock(channels_at(r, o), channels_at(r // 2, o), o.d_downsample)
                                      for r in reversed(res_list[1:])])
        c4 = channels_at(4, o)
        self.stddev = MinibatchStdDev(o.mbstd_group)
        self.conv = EqualizedConv2d(c4 + 1, c4, 3)
        self.fc = EqualizedLinear(c4 * 16, c4)
        self.out = EqualizedLinear(c4, 1)
        self.projection = Projection(num_classes, c4) if num_classes else None

    def blocks_from_image(self) -> list[nn.Module]:
        """D's blocks in the order the image meets them, the head excluded (FreezeD freezes the
        first N; the contract FreezableDiscriminator)."""
        # the first block takes from_rgb with it, as the reference's b{size} holds its fromrgb
        return [nn.ModuleList([self.from_rgb, self.blocks[0]]), *self.blocks[1:]] if len(self.blocks) else [self.from_rgb]

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        assert images.shape[1:] == (self.channels, self.size, self.size), (
            f"images: expected (B, {self.channels}, {self.size}, {self.size}), got {tuple(images.shape)}")
        x = self.blocks(lrelu(self.from_rgb(images)))  # (B, C4, 4, 4)
        x = lrelu(self.conv(self.stddev(x)))
        h = lrelu(self.fc(x.flatten(1)))  # (B, C4)
        logit = self.out(h).squeeze(1)
        if self.projection is not None:
            logit = logit + self.projection(h, labels)
        return logit  # (B,)
