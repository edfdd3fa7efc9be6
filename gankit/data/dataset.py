"""`ImageData`: a whole dataset decoded once into uint8 pixels (in memory, or a mapped store that
stays on disk until a batch reads it); the registry of named datasets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..config import DataConfig
from ..registry import Registry
from .image import jittered, resize_square, to_channels


@dataclass
class ImageData:
    """A dataset's images as uint8 pixels. `images` is what holds the pixels (perhaps more rows
    than this dataset has, see `rows`): read this dataset's own images with `batch()` or
    `pixels()`, never `images` directly."""

    images: torch.Tensor | list[torch.Tensor]  # uint8 (M, C, size, size); crop random: [(C, h, w)]
    labels: torch.Tensor | None  # int64 (N,) class indices, or None
    class_names: list[str] | None  # label index -> name
    name: str  # the dataset name or the folder path
    size: int
    channels: int  # 1 or 3
    # int64 (N,): the rows of `images` this dataset is, in order (a subset such as the held-out
    # split, without copying pixels, which may be a mapped store's); None: all of them (N = M)
    rows: torch.Tensor | None = None

    def __post_init__(self):
        assert self.channels in (1, 3), self.channels
        assert len(self.images) > 0, "loaders raise GankitError before returning no images"
        if isinstance(self.images, torch.Tensor):
            assert self.images.dtype == torch.uint8, self.images.dtype
            assert self.images.shape[1:] == (self.channels, self.size, self.size), self.images.shape
        else:
            for image in self.images:
                assert image.dtype == torch.uint8 and image.ndim == 3, (image.dtype, image.shape)
                assert image.shape[0] == self.channels and min(image.shape[1:]) >= self.size
        if self.rows is not None:
            assert isinstance(self.images, torch.Tensor) and self.rows.dtype == torch.int64
        if self.labels is not None:
            assert self.labels.dtype == torch.int64 and self.labels.shape == (len(self),)

    def __len__(self) -> int:
        return len(self.rows) if self.rows is not None else len(self.images)

    def batch(self, indices: torch.Tensor, generator: torch.Generator | None = None
              ) -> torch.Tensor:
        """float32 (B, C, size, size) in [0, 1] for the images at `indices`.

        Random crops (crop="random") take their offsets from the CPU `generator` only, never from
        the global RNG, so a run is reproducible and resumable; without a generator they are
        centre crops (deterministic, e.g. for metrics).
        """
        if isinstance(self.images, torch.Tensor):
            rows = self.rows[indices] if self.rows is not None else indices
            return self.images[rows].float().div_(255)  # reads only these images' pages
        indices = indices.tolist()
        if generator is None:
            where = torch.full((len(indices), 2), 0.5)
        else:
            where = torch.rand(len(indices), 2, generator=generator)  # one draw per batch
        crops = []
        for i, (u, v) in zip(indices, where.tolist()):
            image = self.images[i]  # (C, h, w)
            slack_h, slack_w = image.shape[1] - self.size, image.shape[2] - self.size
            top, left = int(u * (slack_h + 1)), int(v * (slack_w + 1))  # u, v < 1: top <= slack_h
            crops.append(image[:, top:top + self.size, left:left + self.size])
        return torch.stack(crops).float().div_(255)  # (B, C, size, size)

    def pixels(self) -> torch.Tensor:
        """uint8 (N, C, size, size): this dataset's images (a view when it is all of `images`)."""
        assert isinstance(self.images, torch.Tensor), "random crops: use batch()"
        return self.images if self.rows is None else self.images[self.rows]

    def subset(self, indices: torch.Tensor) -> "ImageData":
        """The images at `indices`, sharing this dataset's pixels (no copy)."""
        labels = self.labels[indices] if self.labels is not None else None
        images, rows = self.images, None
        if not isinstance(images, torch.Tensor):  # a list of views: a new list of the same views
            images = [images[i] for i in indices.tolist()]
        elif self.rows is None and _is_range(indices):
            images = images[int(indices[0]):int(indices[-1]) + 1]
        else:
            rows = self.rows[indices] if self.rows is not None else indices.to(torch.int64)
        return ImageData(images, labels, self.class_names, self.name, self.size, self.channels, rows)

    def split(self, holdout: float, seed: int = 0) -> tuple["ImageData", "ImageData"]:
        """(train, held out): a fixed random `holdout` share kept apart, e.g. for KID."""
        n_held = max(2, round(len(self) * holdout))  # KID needs at least two of each
        if n_held >= len(self) - 1:
            from ..errors import GankitError

            raise GankitError(f"holding out {holdout:.0%} of {len(self)} images leaves none to train "
                              "on: lower --set eval.holdout or use more images")
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        return self.subset(order[n_held:].sort().values), self.subset(order[:n_held].sort().values)


def _is_range(indices: torch.Tensor) -> bool:
    """Whether `indices` is a run a, a+1, ..., b (then a subset is a slice, a view)."""
    return len(indices) > 0 and bool((indices.diff() == 1).all())


# name -> loader(cfg, progress) -> ImageData
DATASETS: Registry[Callable[[DataConfig, bool], ImageData]] = Registry("dataset", check=callable)


def limited(cfg: DataConfig, n: int) -> int:
    """How many of a dataset's n images to use."""
    return n if cfg.limit is None else min(cfg.limit, n)


def from_square_arrays(name: str, images: torch.Tensor, labels: torch.Tensor | None,
                       class_names: list[str] | None, cfg: DataConfig) -> ImageData:
    """An in-memory dataset of square uint8 images (N, C, h, h), already limited, -> ImageData.

    The images are square already, so every crop mode keeps them whole (random crops with jitter
    cut size x size out of the image enlarged by 1 + jitter).
    """
    images = to_channels(images, cfg.channels or images.shape[1])  # before resizing: less work
    if cfg.crop == "random" and cfg.jitter > 0:  # stored larger; each batch crops size x size
        images = list(resize_square(images, jittered(cfg.size, cfg.jitter)))
        return ImageData(images, labels, class_names, name, cfg.size, images[0].shape[0])
    images = resize_square(images, cfg.size)
    return ImageData(images, labels, class_names, name, cfg.size, images.shape[1])


def from_decoded(name: str, images: list[torch.Tensor], labels: torch.Tensor | None,
                 class_names: list[str] | None, cfg: DataConfig) -> ImageData:
    """Images decoded one by one (each (C, h, w) with C its own 1 or 3) -> ImageData.

    Without cfg.channels the dataset is greyscale only if every image is.
    """
    channels = cfg.channels or max(image.shape[0] for image in images)
    images = [to_channels(image, channels) for image in images]
    if cfg.crop != "random":
        images = torch.stack(images)  # (N, C, size, size)
    return ImageData(images, labels, class_names, name, cfg.size, channels)
