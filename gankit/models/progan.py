"""Progressive growing of GANs (Karras et al. 2018, Hands-On ML 17.9).

Both nets start at 4x4 and grow a resolution at a time. A new block fades in: its output is
mixed with the upsampled (G) / downsampled (D) output of the previous resolution by alpha, which
rises from 0 to 1 over `fade_kimg` thousand images, followed by `stable_kimg` at full strength.
The schedule is a function of the images seen alone (`set_progress`, called by the training loop
before every step), so a resumed run continues in the middle of a phase exactly.

G works at the current resolution and upsamples its image (nearest) to the full size; D
average-pools its input to the current resolution. Pooling a nearest-upsampled image gives the
original back, so the data pipeline, augmentation and metrics always see full-size images.

G: z -> pixel norm -> equalized linear to (C, 4, 4) -> lrelu, pixel norm -> 3x3 conv -> lrelu,
   pixel norm; per resolution: 2x nearest up -> two (3x3 conv -> lrelu -> pixel norm); a 1x1 toRGB
   per resolution; a linear output (model.output=tanh: the old tanh).
D: a 1x1 fromRGB per resolution; per resolution: two 3x3 convs (lrelu) -> 2x average pool;
   4x4: minibatch stddev -> 3x3 conv -> 4x4 conv -> linear -> logit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GankitError
from ..nn import MinibatchStdDev
from ..nn.equalized import OUTPUTS, EqualizedConv2d, EqualizedLinear, PixelNorm, lrelu
from .conditional import LabelToLatent, Projection
from .stylegan import resolutions


@dataclass
class ProGANOptions:
    latent_dim: int = 128  # 512 in the paper
    channel_base: int = 4096  # channels at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 256
    fade_kimg: float = 30.0  # thousands of images over which a new resolution fades in (paper: 600)
    stable_kimg: float = 30.0  # thousands of images at full strength before the next (paper: 600)
    start_size: int = 4  # the first resolution trained
    mbstd_group: int = 4  # minibatch stddev group size
    # linear, as the reference (a tanh saturates on the many pure-black and pure-white pixels and
    # takes their gradient away); tanh: runs saved before this option
    output: str = "linear"
    # during a fade-in D sees the reals blended between the new resolution and the one below, as
    # G's output is (the reference); otherwise the sharp reals against blocky fakes are a shortcut
    fade_reals: bool = True
    # Adam's moments start over when a new resolution starts fading in and when it is fully in
    # (the reference's reset_opt_for_new_lod): moments of the old phase mislead the new layers
    reset_optimizer: bool = True


def validate_options(o: ProGANOptions) -> None:
    if o.output not in OUTPUTS:
        raise GankitError(f"model.output={o.output!r} is not valid: use linear (the reference) or tanh")
    if o.fade_kimg <= 0 or o.stable_kimg < 0:
        raise GankitError("model.fade_kimg must be positive and model.stable_kimg 0 or more")
    if o.start_size < 4 or o.start_size & (o.start_size - 1):
        raise GankitError(f"model.start_size={o.start_size} must be a power of two from 4")
    for key in ("latent_dim", "channel_base", "channel_max", "mbstd_group"):
        if getattr(o, key) < 1:
            raise GankitError(f"model.{key}={getattr(o, key)} must be at least 1")


def channels_at(res: int, o: ProGANOptions) -> int:
    return max(1, min(o.channel_base // res, o.channel_max))


def schedule(images_seen: int, o: ProGANOptions, levels: int) -> tuple[int, float]:
    """(level, alpha): level 0 is the start resolution; alpha in (0, 1] is the newest block's weight."""
    kimg = images_seen / 1000.0
    if kimg < o.stable_kimg:
        return 0, 1.0
    phase = o.fade_kimg + o.stable_kimg
    level = 1 + int((kimg - o.stable_kimg) // phase)
    if level >= levels:
        return levels - 1, 1.0
    into = (kimg - o.stable_kimg) - (level - 1) * phase
    return level, min(1.0, into / o.fade_kimg)


class _Growing(nn.Module):
    """The schedule state both nets share, kept in buffers: saved, restored and copied to the EMA G."""

    def _init_growth(self, size: int, o: ProGANOptions):
        all_res = resolutions(size)
        if o.start_size > size:
            raise GankitError(f"model.start_size={o.start_size} is larger than --size {size}")
        self.res_list = [r for r in all_res if r >= o.start_size]
        self.options = o
        # Built fully grown (what a loaded generator and the contract tests see); the training
        # loop sets the schedule's level before the first step.
        self.register_buffer("level", torch.tensor(len(self.res_list) - 1))
        self.register_buffer("alpha", torch.tensor(1.0))

    def set_progress(self, images_seen: int) -> bool:
        """Move to the schedule's phase at `images_seen`; True when this begins a new phase (a
        resolution starts to fade in, or has faded in) and the optimisers should start over."""
        level, alpha = schedule(images_seen, self.options, len(self.res_list))
        new_phase = (level, alpha < 1.0) != (int(self.level), float(self.alpha) < 1.0)
        self.level.fill_(level)
        self.alpha.fill_(alpha)
        return new_phase and self.options.reset_optimizer

    def reals_as_drawn(self, images: torch.Tensor) -> torch.Tensor:
        """Full-size real images (B, C, S, S) as G draws at this point of the schedule: during a
        fade-in, lerp(down(x), up(down2(down(x))), 1 - alpha) at the new resolution, as the
        reference's FadeLOD, then nearest-upsampled back to full size (D's average pooling gives
        the blend back exactly). Outside a fade, and with fade_reals off, the images as they are."""
        level, alpha = self.current
        if alpha >= 1.0 or not self.options.fade_reals or level == 0:
            return images
        factor = images.shape[-1] // self.res_list[level]
        x = F.avg_pool2d(images, factor) if factor > 1 else images  # at the new resolution
        coarse = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")  # the one below
        x = coarse.lerp(x, alpha)
        return F.interpolate(x, scale_factor=factor, mode="nearest") if factor > 1 else x

    @property
    def current(self) -> tuple[int, float]:
        return int(self.level), float(self.alpha)

    @property
    def phase(self) -> tuple[int, float]:
        level, alpha = self.current
        return self.res_list[level], alpha

    def unused_parameters(self) -> set[str]:
        """Names of the toRGB / fromRGB weights the current phase does not use: a resolution's
        image layer only matters while it is the top one or fading out."""
        level, alpha = self.current
        top = self.first + level
        used = {top, top - 1} if alpha < 1.0 else {top}
        layers = self.to_rgb if hasattr(self, "to_rgb") else self.from_rgb
        return {f"{'to_rgb' if hasattr(self, 'to_rgb') else 'from_rgb'}.{i}.{name}"
                for i, layer in enumerate(layers) if i not in used for name, _ in layer.named_parameters()}


class ProGenerator(_Growing):
    output_range = (-1.0, 1.0)

    def __init__(self, size: int, channels: int, o: ProGANOptions, num_classes: int = 0):
        super().__init__()
        self._init_growth(size, o)
        self.size, self.channels, self.latent_dim, self.num_classes = size, channels, o.latent_dim, num_classes
        self.tanh = o.output == "tanh"
        self.label_code = LabelToLatent(num_classes, "embedding", o.latent_dim) if num_classes else None
        z_dim = o.latent_dim + (self.label_code.out_features if self.label_code else 0)
        c4 = channels_at(4, o)
        self.norm = PixelNorm()
        self.project = EqualizedLinear(z_dim, c4 * 16)
        self.conv4 = EqualizedConv2d(c4, c4, 3)
        self.blocks = nn.ModuleList()  # block i makes resolution 4 * 2^(i+1)
        self.to_rgb = nn.ModuleList([EqualizedConv2d(c4, channels, 1)])
        c_prev = c4
        for res in resolutions(size)[1:]:
            c = channels_at(res, o)
            self.blocks.append(nn.ModuleList([EqualizedConv2d(c_prev, c, 3), EqualizedConv2d(c, c, 3)]))
            self.to_rgb.append(EqualizedConv2d(c, channels, 1))
            c_prev = c
        self.first = len(resolutions(size)) - len(self.res_list)  # index of the start resolution

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        assert z.dim() == 2 and z.shape[1] == self.latent_dim, f"z: expected (B, {self.latent_dim})"
        level, alpha = self.current
        top = self.first + level  # index of the highest active resolution (0 = 4x4)
        if self.label_code is not None:
            z = self.label_code(z, labels)
        x = self.norm(lrelu(self.project(self.norm(z)).view(z.shape[0], -1, 4, 4)))
        x = self.norm(lrelu(self.conv4(x)))
        previous = x
        for i in range(top):
            previous = x
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            for conv in self.blocks[i]:
                x = self.norm(lrelu(conv(x)))
        rgb = self.to_rgb[top](x)
        if alpha < 1.0 and top > self.first:  # fade in: blend with the upsampled previous image
            old = F.interpolate(self.to_rgb[top - 1](previous), scale_factor=2, mode="nearest")
            rgb = old.lerp(rgb, alpha)
        if self.tanh:
            rgb = torch.tanh(rgb)
        scale = self.size // rgb.shape[-1]
        return F.interpolate(rgb, scale_factor=scale, mode="nearest") if scale > 1 else rgb


class ProDiscriminator(_Growing):
    def __init__(self, size: int, channels: int, o: ProGANOptions, num_classes: int = 0):
        super().__init__()
        self._init_growth(size, o)
        self.size, self.channels, self.num_classes = size, channels, num_classes
        all_res = resolutions(size)
        self.first = len(all_res) - len(self.res_list)
        self.from_rgb = nn.ModuleList([EqualizedConv2d(channels, channels_at(r, o), 1) for r in all_res])
        # blocks[i] takes resolution all_res[i] (i >= 1) down to all_res[i - 1]
        self.blocks = nn.ModuleList([nn.Identity()] + [
            nn.ModuleList([EqualizedConv2d(channels_at(r, o), channels_at(r, o), 3),
                           EqualizedConv2d(channels_at(r, o), channels_at(r // 2, o), 3)])
            for r in all_res[1:]])
        c4 = channels_at(4, o)
        self.stddev = MinibatchStdDev(o.mbstd_group)
        self.conv3 = EqualizedConv2d(c4 + 1, c4, 3)
        self.conv4 = EqualizedConv2d(c4, c4, 4, padding=0)
        self.out = EqualizedLinear(c4, 1)
        self.projection = Projection(num_classes, c4) if num_classes else None

    def _block(self, i: int, x: torch.Tensor) -> torch.Tensor:
        for conv in self.blocks[i]:
            x = lrelu(conv(x))
        return F.avg_pool2d(x, 2)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        assert images.shape[1:] == (self.channels, self.size, self.size), (
            f"images: expected (B, {self.channels}, {self.size}, {self.size}), got {tuple(images.shape)}")
        level, alpha = self.current
        top = self.first + level
        res = 4 * 2 ** top
        img = F.avg_pool2d(images, self.size // res) if res < self.size else images
        x = lrelu(self.from_rgb[top](img))
        if top > 0:
            x = self._block(top, x)
            if alpha < 1.0 and top > self.first:  # fade in: blend with the downsampled image's path
                x = lrelu(self.from_rgb[top - 1](F.avg_pool2d(img, 2))).lerp(x, alpha)
            for i in range(top - 1, 0, -1):
                x = self._block(i, x)
        x = lrelu(self.conv3(self.stddev(x)))
        h = lrelu(self.conv4(x)).flatten(1)  # (B, C4)
        logit = self.out(h).squeeze(1)
        if self.projection is not None:
            logit = logit + self.projection(h, labels)
        return logit  # (B,)
