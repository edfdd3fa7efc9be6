"""Feature extractors for KID/FID: a registry of named networks, images -> feature vectors.

An extractor is a torch module mapping float images (B, C, H, W) in [0, 1], C = 1 or 3, of any
size, to features (B, D); it converts channels and resizes by itself. Built in:

- `inception`, `inception75`: the standard FID Inception-v3 (the TensorFlow 2015-12-05 weights
  that torch-fidelity and pytorch-fid use), 2048-d pool features, with its input resized to
  299 px (the standard, comparable with published FIDs) or to 75 px (the resolution at which the
  keras-io GAN-ADA example measures KID: much faster on a CPU, and closer to the detail a 32-64 px
  GAN can show). Two names rather than a size option, so `--features inception75` says it all
  and the real-data cache keys on the name. The keras example runs Keras' own ImageNet weights,
  so `inception75` numbers are in the spirit of its KID, not identical to them.
- `mnist`: the 128-d penultimate features of a small digit classifier trained on `mnist5k` by
  scripts/train_mnist_classifier.py and shipped with the package; also its predictions
  (`MnistFeatures.predict_digits`).

Anyone can add a module (or a factory that builds one) with `register_feature_extractor`.
"""

from __future__ import annotations

import importlib
import io
import os
from pathlib import Path
from typing import Callable, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import weights as weight_files
from ..errors import GankitError
from ..registry import Registry

# name -> an extractor module, or a factory returning one. Built-in factories take an optional
# `weights` file; user factories are called without arguments.
ExtractorEntry = Union[nn.Module, Callable[..., nn.Module]]
FEATURE_EXTRACTORS: Registry[ExtractorEntry] = Registry("feature extractor", check=callable)


def register_feature_extractor(name: str, module_or_factory: ExtractorEntry) -> ExtractorEntry:
    """Make a module (images (B, C, H, W) in [0, 1] -> (B, D)) or a zero-argument factory of
    one usable by name. Duplicate names raise ValueError, non-callables TypeError."""
    return FEATURE_EXTRACTORS.register(name, module_or_factory)


def load_feature_extractor(name: str, weights: str | Path | None = None) -> nn.Module:
    """The extractor registered as `name`. `weights`: a weights file for the built-in extractors
    that take one (inception, inception75, mnist); None finds their default.

    From the command line, `package.module:NAME` imports that module first, so an extractor it
    registers (or a module/factory it defines as NAME) can be used with `--features`."""
    if ":" in name and name not in FEATURE_EXTRACTORS:
        module_name, _, attribute = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise GankitError(f"cannot import {module_name} for --features {name} ({err}): "
                              "make it importable (e.g. set PYTHONPATH)") from None
        if attribute not in FEATURE_EXTRACTORS:
            if not callable(getattr(module, attribute, None)):
                raise GankitError(f"{module_name} registers no feature extractor '{attribute}' and "
                                  f"defines no callable {attribute}: register one or fix the name")
            register_feature_extractor(name, getattr(module, attribute))
        else:
            name = attribute
    entry = FEATURE_EXTRACTORS.get(name)
    if isinstance(entry, nn.Module):
        if weights is not None:
            raise GankitError(f"feature extractor '{name}' is a registered module and takes no "
                              "weights file: leave the weights option out")
        return entry
    return entry() if weights is None else entry(weights=weights)


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """(B, 1 or 3, H, W) -> (B, 3, H, W)."""
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def to_grey(images: torch.Tensor) -> torch.Tensor:
    """(B, 1 or 3, H, W) -> (B, 1, H, W) by ITU-R 601-2 luma, as PIL and gankit.data convert."""
    if images.shape[1] == 1:
        return images
    weights = images.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def first_line(err: Exception) -> str:
    """An exception as one line, for the one-line GankitError messages."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def check_images(images: torch.Tensor) -> None:
    assert images.ndim == 4 and images.shape[1] in (1, 3), \
        f"expected images (B, 1 or 3, H, W), got {tuple(images.shape)}"
    assert images.is_floating_point(), f"expected float images in [0, 1], got {images.dtype}"


# --------------------------------------------------------------------------------------------
# Inception-v3 (FID)

# torch-fidelity's copy of the 2015-12-05 TensorFlow weights; its file name is what torch.hub
# caches it under, and its suffix is the start of the file's sha256.
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                 + INCEPTION_FILE)
INCEPTION_SHA256_PREFIX = "6726825d"
INCEPTION_ENV = "GANKIT_INCEPTION_WEIGHTS"


def hub_weights_path() -> Path:
    """Where torch.hub (and so torch-fidelity) caches the Inception weights."""
    return weight_files.hub_checkpoints() / INCEPTION_FILE


def find_inception_weights(path: str | Path | None = None) -> Path:
    """The Inception weights file: `path`, else $GANKIT_INCEPTION_WEIGHTS, else the torch hub
    cache, else downloaded into the hub cache when the network is reachable."""
    return weight_files.find_or_download(
        "the Inception weights", INCEPTION_FILE, [weight_files.hub_checkpoints()], url=INCEPTION_URL,
        sha256_prefix=INCEPTION_SHA256_PREFIX,
        given=[(path, "the weights file"), (os.environ.get(INCEPTION_ENV), INCEPTION_ENV)],
        instead=f" (or pass --inception-weights PATH, or set {INCEPTION_ENV}=PATH)")


class InceptionFeatures(nn.Module):
    """torch-fidelity's FID Inception-v3: images (B, 1|3, H, W) in [0, 1] -> (B, 2048)."""

    def __init__(self, weights_file: Path, size: int = 299):
        super().__init__()
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ImportError:
            raise GankitError("the inception feature extractor needs torch-fidelity: "
                              "pip install torch-fidelity") from None
        # Load with weights_only (tensors only, no code from the file), then hand torch-fidelity
        # an in-memory copy: it would unpickle a path with weights_only=False.
        try:
            state = torch.load(weights_file, map_location="cpu", weights_only=True)
            buffer = io.BytesIO()
            torch.save(state, buffer)
            buffer.seek(0)
            self.net = FeatureExtractorInceptionV3(
                "inception-v3-compat", ["2048"], feature_extractor_weights_path=buffer)
        except Exception as err:
            raise GankitError(f"{weights_file} is not the FID Inception weights file "
                              f"({first_line(err)}): "
                              f"use {INCEPTION_FILE} from {INCEPTION_URL}") from None
        # torch-fidelity resizes every input to this size (TF1-exact bilinear) before the network.
        self.net.INPUT_IMAGE_SIZE = size
        self.eval().requires_grad_(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images)  # (B, C, H, W) in [0, 1]
        # torch-fidelity takes uint8 as read from image files; round as torchvision's save_image
        # does, so in-memory samples score exactly like the same samples saved as PNGs.
        pixels = to_rgb(images).mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
        (features,) = self.net(pixels)
        return features  # (B, 2048)


@FEATURE_EXTRACTORS.register("inception")
def inception(weights: str | Path | None = None) -> InceptionFeatures:
    return InceptionFeatures(find_inception_weights(weights), size=299)


@FEATURE_EXTRACTORS.register("inception75")
def inception75(weights: str | Path | None = None) -> InceptionFeatures:
    return InceptionFeatures(find_inception_weights(weights), size=75)


# --------------------------------------------------------------------------------------------
# MNIST digit classifier

MNIST_SIZE = 32  # the classifier's input size: gankit's default image size, so 32 px runs
#                  need no resampling
MNIST_FEATURES = 128
MNIST_WEIGHTS = Path(__file__).parent / "weights" / "mnist_classifier.pt"
MNIST_RECORD = MNIST_WEIGHTS.with_suffix(".json")  # accuracy, split, seed, ... of the shipped file


class MnistClassifier(nn.Module):
    """A small CNN: (B, 1, 32, 32) in [0, 1] -> 10 digit logits; `features` is its last hidden
    layer. About 90k parameters (a few hundred KB)."""

    def __init__(self, dropout: float = 0.3):
        super().__init__()

        def block(c_in: int, c_out: int) -> nn.Sequential:
            # no conv bias: BatchNorm's shift replaces it
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2))

        self.body = nn.Sequential(
            block(1, 32),  # (B, 32, 16, 16)
            block(32, 64),  # (B, 64, 8, 8)
            block(64, 64),  # (B, 64, 4, 4)
            nn.AvgPool2d(2),  # (B, 64, 2, 2): keeps coarse layout, which tells digits apart
            nn.Flatten(),
            nn.Linear(256, MNIST_FEATURES),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(MNIST_FEATURES, 10))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1:] == (1, MNIST_SIZE, MNIST_SIZE), x.shape
        return self.body(x)  # (B, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, 10)


class MnistFeatures(nn.Module):
    """The shipped digit classifier as an extractor: images (B, 1|3, H, W) in [0, 1] -> (B, 128)."""

    def __init__(self, weights: str | Path | None = None):
        super().__init__()
        path = Path(weights).expanduser() if weights is not None else MNIST_WEIGHTS
        self.classifier = MnistClassifier()
        try:
            self.classifier.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as err:
            raise GankitError(f"cannot load the MNIST classifier weights {path} "
                              f"({type(err).__name__}): reinstall gankit, or run "
                              "scripts/train_mnist_classifier.py") from None
        self.eval().requires_grad_(False)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Any (B, 1|3, H, W) in [0, 1] -> the classifier's (B, 1, 32, 32)."""
        check_images(images)
        x = to_grey(images)
        if x.shape[-2:] != (MNIST_SIZE, MNIST_SIZE):
            # the filter gankit.data resizes with, so resized reals and resized fakes match
            x = F.interpolate(x, size=(MNIST_SIZE, MNIST_SIZE), mode="bicubic", antialias=True,
                              align_corners=False).clamp_(0, 1)
        return x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(self.prepare(images))  # (B, 128)

    @torch.no_grad()
    def predict_digits(self, images: torch.Tensor) -> torch.Tensor:
        """The most likely digit of each image: (B,) int64."""
        return self.classifier(self.prepare(images)).argmax(dim=1)


@FEATURE_EXTRACTORS.register("mnist")
def mnist(weights: str | Path | None = None) -> MnistFeatures:
    return MnistFeatures(weights)
