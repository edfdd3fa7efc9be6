"""StyleGAN2-ADA's augmentation pipeline: every op fires per sample with probability p x its
multiplier, in the reference's order (geometry, colour, image-space filtering, noise, cutout).

All geometric ops of a sample compose into one map and one anti-aliased resampling
(resample.warp), all colour ops into one colour matrix; samples no geometric op chose are passed
through untouched. Everything is differentiable (G learns through what D sees, Karras et al.
2020; Zhao et al. 2020) and nothing is clamped.

`p` is a buffer, so it is saved with a checkpoint; the pipeline also keeps it as a Python float,
set by whoever changes p (the ADA controller, a resume), so that `forward` never reads a tensor
back from the device: no host-device sync in the training step (tested).
"""

from __future__ import annotations

import torch
from torch import nn

from .ops import COLOUR, GEOMETRIC, IMAGE, OP_NAMES
from .resample import warp

ValueRange = tuple[float, float]

# The reference's named pipelines (stylegan2-ada-pytorch train.py, --augpipe). bgc, its default,
# is what the paper recommends for most data: blitting, general geometry, colour.
BLIT = {"xflip": 1, "rotate90": 1, "xint": 1}
GEOM = {"scale": 1, "rotate": 1, "aniso": 1, "xfrac": 1}
COLOR = {"brightness": 1, "contrast": 1, "lumaflip": 1, "hue": 1, "saturation": 1}
FILTER, NOISE, CUTOUT = {"imgfilter": 1}, {"noise": 1}, {"cutout": 1}
PIPES: dict[str, dict[str, float]] = {
    "blit": BLIT, "geom": GEOM, "color": COLOR, "filter": FILTER, "noise": NOISE, "cutout": CUTOUT,
    "bg": {**BLIT, **GEOM}, "bgc": {**BLIT, **GEOM, **COLOR},
    "bgcf": {**BLIT, **GEOM, **COLOR, **FILTER}, "bgcfn": {**BLIT, **GEOM, **COLOR, **FILTER, **NOISE},
    "bgcfnc": {**BLIT, **GEOM, **COLOR, **FILTER, **NOISE, **CUTOUT},
}


class Augmentation(nn.Module):
    """What every augmentation pipeline offers the training loop: a strength `p` saved with the
    model (a buffer) and mirrored as a float, and forward(images) -> images of the same shape."""

    def __init__(self, value_range: ValueRange, p: float = 0.0):
        super().__init__()
        self.value_range = value_range
        self.register_buffer("p", torch.tensor(float(p)))
        self.p_value = float(self.p)
        # a checkpoint's p, loaded into the buffer, reaches the float too (read once, at load time)
        self.register_load_state_dict_post_hook(lambda module, keys: module._read_p())

    def set_p(self, p: float) -> None:
        # the float is kept at the buffer's precision (float32), the p a checkpoint holds: a resumed
        # run then goes on from the very p of an uninterrupted one (rounded on the CPU: no sync)
        self.p_value = float(torch.tensor(float(p), dtype=self.p.dtype))
        self.p.fill_(self.p_value)

    def _read_p(self) -> None:
        self.p_value = float(self.p)

    def to_unit_frame(self, x: torch.Tensor) -> torch.Tensor:
        """The model's value range -> [-1, 1], the range every op's constants are defined in
        (brightness 0.2 of the half-range, contrast about the middle grey, ...)."""
        low, high = self.value_range
        return x if (low, high) == (-1.0, 1.0) else (x - (low + high) / 2) * (2 / (high - low))

    def from_unit_frame(self, x: torch.Tensor) -> torch.Tensor:
        low, high = self.value_range
        return x if (low, high) == (-1.0, 1.0) else x * ((high - low) / 2) + (low + high) / 2

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.active():
            return images
        layout = torch.channels_last if images.is_contiguous(memory_format=torch.channels_last) \
            else torch.contiguous_format
        # in fp32 even under autocast: one precision for reals and fakes, exact flips and shifts
        with torch.autocast(images.device.type, enabled=False):
            out = self.augment(images.float())
        return out.to(images.dtype).contiguous(memory_format=layout)

    def active(self) -> bool:
        return self.p_value > 0

    def augment(self, images: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, H, W)
        raise NotImplementedError


class AugmentPipe(Augmentation):
    """StyleGAN2-ADA's pipeline with per-op probability multipliers (`PIPES`, or your own)."""

    def __init__(self, multipliers: dict[str, float], value_range: ValueRange, p: float = 0.0,
                 antialias: bool = True):
        super().__init__(value_range, p)
        unknown = sorted(set(multipliers) - set(OP_NAMES))
        assert not unknown, f"unknown augmentations {unknown}"  # users' names are checked by check_config
        self.multipliers = {k: float(v) for k, v in multipliers.items() if v > 0}
        self.antialias = antialias

    def active(self) -> bool:
        return self.p_value > 0 and bool(self.multipliers)

    def _prob(self, name: str) -> float:
        return self.multipliers.get(name, 0.0) * self.p_value

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape  # (B, C, H, W)
        assert c in (1, 3), f"augmentation needs 1 or 3 channels, not {c}"
        device = x.device

        inverse = None  # (B, 3, 3): output pixel -> input pixel
        for name, op in GEOMETRIC:
            if self._prob(name) > 0:
                m = op(n, self._prob(name), (h, w), device)
                inverse = m if inverse is None else inverse @ m
        if inverse is not None:
            untouched = (inverse == torch.eye(3, device=device)).flatten(1).all(1)
            x = torch.where(untouched.view(n, 1, 1, 1), x, warp(x, inverse, self.antialias))

        colour = None  # (B, 4, 4): homogeneous RGB in -> out
        for name, op in COLOUR:
            if self._prob(name) > 0:
                m = op(n, self._prob(name), c, device)
                if m is not None:
                    colour = m if colour is None else m @ colour
        image_ops = [(name, op) for name, op in IMAGE if self._prob(name) > 0]
        if colour is None and not image_ops:
            return x
        x = self.to_unit_frame(x)
        if colour is not None:
            flat = x.reshape(n, c, h * w)
            if c == 3:
                flat = colour[:, :3, :3] @ flat + colour[:, :3, 3:]
            else:  # grey: the RGB map's mean row, applied to the grey value on all three channels
                row = colour[:, :3, :].mean(dim=1, keepdim=True)  # (B, 1, 4)
                flat = flat * row[:, :, :3].sum(dim=2, keepdim=True) + row[:, :, 3:]
            x = flat.reshape(n, c, h, w)
        for name, op in image_ops:
            x = op(x, self._prob(name))
        return self.from_unit_frame(x)
