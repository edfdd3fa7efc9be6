"""Two unpaired domains (CycleGAN's trainA/ and trainB/), and built-in pairs for offline tests.

Nothing pairs an image of A with one of B: the loop draws each domain's batches in its own order.
An epoch is a pass over the larger domain, as in the reference implementation.

Built-in pairs, made from shipped digits so that translation can be tested without downloads:
    mnist5k-a / mnist5k-b   the two halves of mnist5k's fixed shuffle, B inverted (dark strokes
    digits-a / digits-b     on white); no image appears in both domains
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ..config import DataConfig
from ..errors import GankitError
from . import builtin
from .builtin import load_digits, load_mnist5k
from .dataset import DATASETS, ImageData
from .image import to_channels


@dataclass
class TwoSets:
    """Two sets of images of one size and channel count: the translation tasks' data (unpaired
    domains A and B; paired inputs and targets)."""

    a: ImageData
    b: ImageData
    labels = None  # unlabelled, as far as the loop is concerned
    class_names = None

    def __post_init__(self):
        assert (self.a.size, self.a.channels) == (self.b.size, self.b.channels), "the loaders align them"

    @property
    def size(self) -> int:
        return self.a.size

    @property
    def channels(self) -> int:
        return self.a.channels


@dataclass
class UnpairedData(TwoSets):
    @property
    def domains(self) -> tuple[ImageData, ImageData]:
        return self.a, self.b

    @property
    def name(self) -> str:
        return f"{self.a.name} | {self.b.name}"

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))


def _with_channels(data: ImageData, channels: int) -> ImageData:
    if data.channels == channels:
        return data
    images = (to_channels(data.images, channels) if isinstance(data.images, torch.Tensor)
              else [to_channels(image, channels) for image in data.images])
    return dataclasses.replace(data, images=images, channels=channels)  # rows kept


def load_unpaired(cfg: DataConfig, progress: bool = True) -> UnpairedData:
    """Domain A from cfg.source, domain B from cfg.source_b, with the same size and channels (RGB
    if either is in colour and cfg.channels does not say)."""
    from . import load_dataset  # the package imports this module

    if not cfg.source_b:
        raise GankitError("unpaired translation needs two domains: give domain B as data.source_b "
                          "(or `gankit translate train --b FOLDER`)")
    a = load_dataset(dataclasses.replace(cfg, source_b=None), progress)
    b = load_dataset(dataclasses.replace(cfg, source=cfg.source_b, source_b=None), progress)
    channels = cfg.channels or max(a.channels, b.channels)
    return UnpairedData(_with_channels(a, channels), _with_channels(b, channels))


def _half(data: ImageData, second: bool, invert: bool, cfg: DataConfig, name: str) -> ImageData:
    n = len(data) // 2
    part = data.subset(torch.arange(n, len(data)) if second else torch.arange(n))
    if cfg.limit is not None:
        part = part.subset(torch.arange(min(cfg.limit, len(part))))
    if invert:  # a tensor, or a list of larger images when random crops jitter
        images = 255 - part.images if isinstance(part.images, torch.Tensor) else [255 - x for x in part.images]
    else:
        images = part.images
    return dataclasses.replace(part, images=images, name=name)  # rows kept


def _register_pair(base: str, loader) -> None:
    for suffix, second in (("a", False), ("b", True)):
        name = f"{base}-{suffix}"

        def load(cfg: DataConfig, progress: bool = True, second=second, name=name) -> ImageData:
            whole = loader(dataclasses.replace(cfg, limit=None), progress)  # split first, then limit
            return _half(whole, second, invert=second, cfg=cfg, name=name)

        load.__doc__ = f"The second half of {base}, inverted." if second else f"The first half of {base}."
        DATASETS.register(name, load)
        builtin.SHIPPED.add(name)


_register_pair("mnist5k", load_mnist5k)
_register_pair("digits", load_digits)
