"""ProGAN / StyleGAN building blocks: equalized learning rate, pixel norm, noise, style convs.

Equalized learning rate (Karras et al. 2018): weights are drawn from N(0, 1) and multiplied at run
time by the He constant sqrt(2 / fan_in) / sqrt(2) = 1 / sqrt(fan_in) (the sqrt(2) gain lives in
the activation, `lrelu_gain`). Adam's per-parameter step is then the same relative change for every
layer, whatever its fan-in. `lr_mul` scales the effective learning rate of one layer (StyleGAN's
mapping network uses 0.01): weights are drawn from N(0, 1/lr_mul^2) and scaled by lr_mul at run time.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

LRELU_GAIN = math.sqrt(2.0)  # keeps activations' variance after leaky ReLU 0.2 (He et al.)
# What ProGAN's and StyleGAN's G put on their RGB output: nothing, as both references (images
# are clipped to the range for display and metrics only), or tanh (gankit's runs saved before).
OUTPUTS = ("linear", "tanh")


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * LRELU_GAIN


class EqualizedLinear(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, lr_mul: float = 1.0,
                 bias_init: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul)) if bias else None
        self.scale, self.lr_mul = lr_mul / math.sqrt(in_features), lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        return F.linear(x, self.weight * self.scale, bias)


class EqualizedConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel: int, bias: bool = True,
                 padding: int | None = None, stride: int = 1):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = 1.0 / math.sqrt(in_channels * kernel * kernel)
        self.padding = kernel // 2 if padding is None else padding
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class Blur(nn.Module):
    """StyleGAN2's low-pass filter before a stride-2 step (its resample_filter [1, 3, 3, 1], as an
    outer product normalised to sum 1), on each channel alone after zero padding `pad` (before,
    after) on both axes. Downsampling through it does not alias as a bare stride would, and it
    is smoother than a 2x2 average. A fixed buffer, not saved: checkpoints are unchanged.
    (B, C, H, W) -> (B, C, H + pad[0] + pad[1] - 3, W + ...)."""

    def __init__(self, pad: tuple[int, int]):
        super().__init__()
        taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
        kernel = taps[:, None] * taps[None, :]
        self.register_buffer("kernel", (kernel / kernel.sum())[None, None], persistent=False)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        x = F.pad(x, (self.pad[0], self.pad[1], self.pad[0], self.pad[1]))
        return F.conv2d(x, self.kernel.to(x.dtype).expand(c, 1, 4, 4), groups=c)


class PixelNorm(nn.Module):
    """Each pixel's feature vector scaled to unit mean square (ProGAN): keeps G's signal magnitudes
    from escalating in the adversarial game, in place of batch norm. Works on (B, C) and (B, C, H, W)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class NoiseInjection(nn.Module):
    """Adds per-pixel Gaussian noise times a learned per-channel strength (starting at 0), so G can
    put stochastic detail (hair, grain) there instead of spending capacity on pseudo-randomness.

    Training draws fresh noise per sample. In eval mode a fixed noise image is used, so sample
    grids and `gankit sample` with a seed are reproducible (the reference's noise_mode='const');
    inside `per_sample_noise` eval mode draws fresh noise per sample from a given generator, as
    the reference scores its metrics (noise_mode='random')."""

    def __init__(self, channels: int, size: int):
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(channels))
        self.register_buffer("fixed_noise", torch.randn(1, 1, size, size))
        self.noise_source: torch.Generator | None = None  # set by per_sample_noise only

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        if self.training or self.noise_source is not None:
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device,
                                generator=None if self.training else self.noise_source).to(x.dtype)
        else:
            noise = self.fixed_noise.to(x.dtype)
        return x + self.strength.view(1, -1, 1, 1).to(x.dtype) * noise


@contextmanager
def per_sample_noise(module: nn.Module, generator: torch.Generator):
    """Within: every NoiseInjection of `module` in eval mode draws fresh noise for each sample
    from `generator` (on the module's device), as StyleGAN2-ADA computes KID and FID — a model
    scored with one fixed noise image would be scored on a narrower distribution than it draws.
    The global RNG is not touched, so evaluation during training leaves the run's stream alone."""
    layers = [m for m in module.modules() if isinstance(m, NoiseInjection)]
    for layer in layers:
        layer.noise_source = generator
    try:
        yield module
    finally:
        for layer in layers:
            layer.noise_source = None


class ModulatedConv2d(nn.Module):
    """StyleGAN2's style conv: the style scales the conv's input channels (modulation), then each
    output channel is rescaled to unit expected variance (demodulation), which removes AdaIN's
    "droplet" artefacts while keeping per-sample styles. Computed as one grouped conv over the batch.
    (B, C_in, H, W), w (B, w_dim) -> (B, C_out, H', W'), H' = 2H with `up`."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, w_dim: int,
                 demodulate: bool = True, up: bool = False):
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)  # styles start at 1
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.scale = 1.0 / math.sqrt(in_channels * kernel * kernel)
        self.demodulate, self.up, self.padding = demodulate, up, kernel // 2
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        # Modulate the activations instead of the weights (StyleGAN2's non-fused path): the same
        # maths as a per-sample weight, but one ordinary batched conv, which is several times
        # faster than a grouped conv over the batch on CPUs.
        style = self.affine(w)  # (B, C_in)
        weight = self.weight * self.scale  # (C_out, C_in, k, k)
        x = x * style[:, :, None, None].to(x.dtype)
        if self.up:  # bilinear upsampling then a 3x3 conv: simpler than a transposed conv + blur
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        out = F.conv2d(x, weight.to(x.dtype), padding=self.padding)
        if self.demodulate:  # 1 / ||w'_o|| per sample and output channel, w' = weight * style
            norms = style.pow(2) @ weight.pow(2).sum(dim=(2, 3)).t()  # (B, C_out)
            out = out * torch.rsqrt(norms + 1e-8)[:, :, None, None].to(out.dtype)
        return out  # (B, C_out, H', W')


class AdaIN(nn.Module):
    """StyleGAN's adaptive instance norm: normalise each channel of each sample, then scale and
    shift it by the style: y_s * (x - mu) / sigma + y_b, with y_s starting at 1."""

    def __init__(self, channels: int, w_dim: int):
        super().__init__()
        self.scale = EqualizedLinear(w_dim, channels, bias_init=1.0)
        self.shift = EqualizedLinear(w_dim, channels, bias_init=0.0)
        self.norm = nn.InstanceNorm2d(channels, affine=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.scale(w)[:, :, None, None] * self.norm(x) + self.shift(w)[:, :, None, None]
