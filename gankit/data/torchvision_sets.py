"""Standard torchvision datasets (training split), read from disk or downloaded once.

The root is cfg.root, else $GANKIT_DATA, else ~/.cache/gankit/torchvision. torchvision is
imported inside the loaders: it takes seconds, and most runs use a folder or a built-in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import DataConfig
from ..errors import GankitError
from .attributes import find_column, plus_minus_names
from .dataset import DATASETS, ImageData, from_square_arrays, limited
from .image import Preprocess


@dataclass(frozen=True)
class _Source:
    dataset: str  # the torchvision.datasets class
    options: dict  # its arguments that select the training split
    folder: str  # where torchvision expects the files, relative to the root
    files: str  # what a user should put there, for the error message
    channels: int  # what a dry run shapes the nets with, without the files
    classes: int  # the labels' class count (celeba: a +1/-1 attribute column's two)


_SOURCES = {
    "mnist": _Source("MNIST", {"train": True}, "MNIST/raw",
                     "MNIST files (train-images-idx3-ubyte, ...)", 1, 10),
    "fashion-mnist": _Source("FashionMNIST", {"train": True}, "FashionMNIST/raw",
                             "Fashion-MNIST files (train-images-idx3-ubyte, ...)", 1, 10),
    "cifar10": _Source("CIFAR10", {"train": True}, "cifar-10-batches-py",
                       "CIFAR-10 python batches (data_batch_1, ...)", 3, 10),
    # target_type=[]: no per-image targets; attributes for label_column are read from
    # dataset.attr, which torchvision loads whatever the target type
    "celeba": _Source("CelebA", {"split": "train", "target_type": []}, "celeba",
                      "CelebA files (img_align_celeba/ and the list_*.txt files)", 3, 2),
}


def known_facts(name: str) -> tuple[int, int] | None:
    """(channels, classes) of a torchvision dataset, known without its files; None for others."""
    source = _SOURCES.get(name)
    return (source.channels, source.classes) if source else None


def data_root(cfg: DataConfig) -> Path:
    root = cfg.root or os.environ.get("GANKIT_DATA") or "~/.cache/gankit/torchvision"
    return Path(root).expanduser()


def _open(name: str, cfg: DataConfig) -> Any:
    import torchvision.datasets

    source = _SOURCES[name]
    make = getattr(torchvision.datasets, source.dataset)
    root = data_root(cfg)
    where = root / source.folder
    fix = f"put the torchvision {source.files} there or pass --data-root"
    try:
        return make(root, download=False, **source.options)
    except Exception:  # torchvision raises RuntimeError when absent, others when files are damaged
        if not cfg.download:
            raise GankitError(f"{name} is not on disk under {where} and downloading is off: {fix}, "
                              "or allow downloading with --set data.download=true") from None
    try:
        return make(root, download=True, **source.options)
    except Exception as err:  # no network, a server refusing, gdown missing, a full disk, ...
        lines = str(err).strip().splitlines()
        reason = lines[-1] if lines else type(err).__name__  # MNIST's last line holds the cause
        raise GankitError(f"{name} is not on disk under {where} and could not be downloaded "
                          f"({reason}): {fix}") from None


def _mnist_like(name: str):
    def load(cfg: DataConfig, progress: bool = True) -> ImageData:
        dataset = _open(name, cfg)
        n = limited(cfg, len(dataset.data))
        images = dataset.data[:n].unsqueeze(1)  # (n, 1, 28, 28) uint8, no per-image PIL round trip
        labels = dataset.targets[:n].long()
        return from_square_arrays(name, images, labels, list(dataset.classes), cfg)

    return load


DATASETS.register("mnist", _mnist_like("mnist"))
DATASETS.register("fashion-mnist", _mnist_like("fashion-mnist"))


@DATASETS.register("cifar10")
def load_cifar10(cfg: DataConfig, progress: bool = True) -> ImageData:
    dataset = _open("cifar10", cfg)
    n = limited(cfg, len(dataset.data))
    images = torch.from_numpy(dataset.data[:n]).permute(0, 3, 1, 2)  # HWC -> (n, 3, 32, 32)
    labels = torch.from_numpy(np.asarray(dataset.targets[:n], dtype=np.int64))
    return from_square_arrays("cifar10", images.contiguous(), labels, list(dataset.classes), cfg)


@DATASETS.register("celeba")
def load_celeba(cfg: DataConfig, progress: bool = True) -> ImageData:
    """Aligned 178x218 CelebA faces, cropped like folder images and, like a folder's, decoded by
    parallel workers into the dataset store (162,770 files: one copy on disk, mapped, instead of
    gigabytes in every process); with cfg.label_column, that attribute is the class ("not
    Blond_Hair" = 0, "Blond_Hair" = 1)."""
    from .folder import load_files

    preprocess = Preprocess.from_config(cfg)  # first: a bad option must not wait for the files
    dataset = _open("celeba", cfg)
    folder = Path(dataset.root) / dataset.base_folder / "img_align_celeba"
    paths = [folder / name for name in dataset.filename]  # the split's files, in the list's order
    labels, class_names = None, None
    if cfg.label_column:  # before decoding: a mistyped column must not wait for the images
        names = list(dataset.attr_names)  # may end in "" (a trailing space in the header line)
        column = find_column(names, cfg.label_column, f"CelebA's attributes ({data_root(cfg)})")
        labels = dataset.attr[:, column].long()  # torchvision maps -1 / 1 to 0 / 1
        class_names = plus_minus_names(cfg.label_column)
    return load_files("celeba", folder, folder, paths, cfg, preprocess, labels, class_names,
                      labels_in_key=labels is not None, progress=progress)
