"""Neural style transfer (Gatys, Ecker & Bethge 2016): optimise an image's pixels so that its VGG19
features match a content image's and its feature correlations (Gram matrices) match a style
image's.

    from gankit.style_transfer import StyleTransferConfig, load_image, save_image, stylize
    result = stylize(load_image("photo.jpg"), load_image("painting.jpg"), StyleTransferConfig())
    save_image(result.image, "out.png")

Layers. Gatys's "conv4_2" etc. are Caffe blobs whose ReLU runs in place, so what his losses see
is the activation *after* the ReLU. Here the names say it: style on relu1_1, relu2_1, relu3_1,
relu4_1, relu5_1 (one per block, so textures from fine to coarse), content on relu4_2 (deep enough
that only the layout, not the exact pixels, is kept). `convX_Y` (before the ReLU) can be asked
for too.

Weights. The ImageNet VGG19 of torchvision (IMAGENET1K_V1): a local file, else torchvision's hub
cache, else a download when the network answers, else a one-line error saying where to put the
file. `weights="random"` builds a seeded, randomly initialised VGG19 instead: the optimisation and
every loss run exactly as with real weights (which is what the tests and offline demos need), but
random filters know nothing about images, so the picture it makes is not real style transfer.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import GankitError
from . import weights as weight_files
from .metrics.features import first_line

# --------------------------------------------------------------------------------------------
# Losses: pure functions of features. Shapes: features (B, C, H, W), Gram matrices (B, C, C).

CONTENT, STYLE, TV, TOTAL = "content", "style", "tv", "total"  # loss-term keys in the history


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """G[c, d] = sum_hw F[c, hw] F[d, hw] / (C H W): the feature correlations, normalised so that
    layers and image sizes of any shape give Grams of comparable size. (B, C, H, W) -> (B, C, C)."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean((F - P)^2) at the content layer: the image keeps the content image's layout."""
    return F.mse_loss(features, target)


def style_loss(features: Mapping[str, torch.Tensor], target_grams: Mapping[str, torch.Tensor],
               layer_weights: Mapping[str, float] | None = None) -> torch.Tensor:
    """sum_l w_l mean((G_l - A_l)^2) over the style layers in `target_grams` (w_l = 1 unless
    given): the image's feature correlations match the style image's wherever they are."""
    total = 0.0
    for name, target in target_grams.items():
        weight = 1.0 if layer_weights is None else layer_weights[name]
        total = total + weight * F.mse_loss(gram_matrix(features[name]), target)
    return total


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """mean((x[i+1, j] - x[i, j])^2) + mean((x[i, j+1] - x[i, j])^2): penalises the pixel-level
    noise that matching deep features alone leaves behind. (B, C, H, W) -> scalar."""
    down = image[..., 1:, :] - image[..., :-1, :]
    right = image[..., :, 1:] - image[..., :, :-1]
    return down.pow(2).mean() + right.pow(2).mean()


# --------------------------------------------------------------------------------------------
# VGG19 features

VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's VGG19_Weights.IMAGENET1K_V1 file name
VGG19_URL = "https://download.pytorch.org/models/" + VGG19_FILE
VGG19_SHA256_PREFIX = "dcbb9e9d"  # torchvision checks the sha256 against the file name's suffix
VGG19_ENV = "GANKIT_VGG19_WEIGHTS"
RANDOM = "random"  # the `weights` value for a seeded random VGG19

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"
POOLINGS = ("max", "avg")
# torchvision's ImageNet statistics: its VGG19 was trained on images normalised with them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_layer_names() -> list[str]:
    """The name of each module of torchvision's vgg19().features, in order:
    conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ..., relu5_4, pool5."""
    from torchvision.models.vgg import cfgs

    names, block, conv = [], 1, 0
    for entry in cfgs["E"]:  # "E" is VGG19's configuration: channels per conv, "M" for a pool
        if entry == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            conv += 1
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
    return names


def vgg19_hub_path() -> Path:
    """Where torchvision caches the ImageNet VGG19 weights (torch.hub's checkpoints folder)."""
    return weight_files.hub_checkpoints() / VGG19_FILE


def find_vgg19_weights(weights: str | Path | None = None) -> Path:
    """The VGG19 weights file: `weights`, else $GANKIT_VGG19_WEIGHTS, else torchvision's hub
    cache, else downloaded into that cache when the network answers; else a GankitError at once
    naming the path to put the file at."""
    return weight_files.find_or_download(
        "the VGG19 ImageNet weights", VGG19_FILE, [weight_files.hub_checkpoints()], url=VGG19_URL,
        sha256_prefix=VGG19_SHA256_PREFIX,
        given=[(weights, "the weights file"), (os.environ.get(VGG19_ENV), VGG19_ENV)],
        instead=" (or pass --weights PATH; --random-weights runs without them, but not as real style transfer)")


def vgg19_weights_on_disk(weights: str | Path | None = None) -> Path | None:
    """Where `find_vgg19_weights` would find the file without downloading it; None where a real
    run would have to download it (a dry run reports that rather than fetching)."""
    return weight_files.find_on_disk("the VGG19 ImageNet weights", VGG19_FILE, [weight_files.hub_checkpoints()],
                                     url=VGG19_URL, given=[(weights, "the weights file"),
                                                           (os.environ.get(VGG19_ENV), VGG19_ENV)])


class VGG19Features(nn.Module):
    """torchvision's VGG19 convolutional part: images (B, 3, H, W) in [0, 1] -> {layer name:
    activation (B, C, H / 2^k, W / 2^k)}, only up to the deepest layer asked for.

    Built randomly initialised (seeded, with torchvision's own initialisation); `load_vgg19`
    puts the ImageNet weights in. `pooling="avg"` swaps each max-pool for an average pool, which
    Gatys et al. found gives slightly smoother pictures; the weights were trained with max."""

    def __init__(self, layers: Sequence[str] = STYLE_LAYERS + (CONTENT_LAYER,),
                 pooling: str = "max", seed: int = 0):
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        names = vgg19_layer_names()
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise GankitError(f"VGG19 has no layer {unknown[0]!r}: use names such as "
                              f"conv4_2 or relu4_2 (all: {', '.join(names)})")
        if pooling not in POOLINGS:
            raise GankitError(f"pooling {pooling!r} is not known: use max or avg")
        # The same nn.Sequential as torchvision's vgg19().features (so its state dict loads),
        # without building the 120M-parameter classifier.
        body = make_layers(cfgs["E"])
        with torch.random.fork_rng(devices=[]):  # seeded without touching the caller's RNG
            torch.manual_seed(seed)
            for module in body:
                if isinstance(module, nn.Conv2d):  # torchvision's VGG initialisation
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(module.bias)
        for i, module in enumerate(body):
            if isinstance(module, nn.ReLU):
                body[i] = nn.ReLU()  # not in place: a conv output asked for must stay pre-ReLU
            elif isinstance(module, nn.MaxPool2d) and pooling == "avg":
                body[i] = nn.AvgPool2d(kernel_size=2, stride=2)
        self.body = body
        self.layers = tuple(layers)
        self.pooling = pooling
        self.index = {names[i]: i for i in range(len(names))}
        self.description = f"randomly initialised VGG19 (seed {seed}; not real style transfer)"
        self.pretrained = False
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.eval().requires_grad_(False)

    def load_vgg19_state(self, state: Mapping[str, torch.Tensor], origin: str) -> None:
        """Weights from a state dict of torchvision's vgg19 (the classifier is ignored) or of its
        `features`."""
        features = {key.removeprefix("features."): value for key, value in state.items()
                    if not key.startswith("classifier.")}
        try:
            self.body.load_state_dict(features)
        except RuntimeError as err:
            raise GankitError(f"{origin} is not a VGG19 state dict ({first_line(err)}): use "
                              f"torchvision's {VGG19_FILE} from {VGG19_URL}") from None
        self.pretrained = True
        self.description = f"VGG19 ImageNet weights from {origin}"

    def truncate(self) -> VGG19Features:
        """Drop the layers after the deepest one asked for: they would only cost time."""
        self.body = self.body[:max(self.index[name] for name in self.layers) + 1]
        return self

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        assert images.ndim == 4 and images.shape[1] == 3, \
            f"expected RGB images (B, 3, H, W) in [0, 1], got {tuple(images.shape)}"
        wanted = {self.index[name]: name for name in self.layers}
        x = (images - self.mean) / self.std
        out = {}
        for i, module in enumerate(self.body):
            x = module(x)
            if i in wanted:
                out[wanted[i]] = x
        return out


def load_vgg19(weights: str | Path | None = None,
               layers: Sequence[str] = STYLE_LAYERS + (CONTENT_LAYER,), pooling: str = "max",
               seed: int = 0) -> VGG19Features:
    """The VGG19 feature extractor. `weights`: a state-dict file, None for torchvision's cache or
    a download (see `find_vgg19_weights`), or "random" for a seeded random VGG19 (tests, offline
    demos: not real style transfer)."""
    if weights == RANDOM:
        return VGG19Features(layers, pooling=pooling, seed=seed).truncate()
    path = find_vgg19_weights(weights)  # first: a missing file fails before anything is built
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # tensors only
    except Exception as err:
        raise GankitError(f"cannot read {path} as a weights file ({first_line(err)}): "
                          f"use torchvision's {VGG19_FILE} from {VGG19_URL}") from None
    if not isinstance(state, Mapping):
        raise GankitError(f"{path} holds a {type(state).__name__}, not a state dict: use "
                          f"torchvision's {VGG19_FILE} from {VGG19_URL}")
    model = VGG19Features(layers, pooling=pooling, seed=seed)
    model.load_vgg19_state(state, str(path))
    return model.truncate()


# --------------------------------------------------------------------------------------------
# Images

ImageLike = Union[Image.Image, np.ndarray]


def load_image(path: str | Path) -> Image.Image:
    """An image file as an RGB PIL image (any mode, EXIF orientation applied)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise GankitError(f"image {path} does not exist: check the path")
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            return to_rgb_image(img)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise GankitError(f"cannot read {path} as an image ({first_line(err)}): "
                          "give a PNG, JPEG or other picture file") from None


def to_rgb_image(img: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB; transparency composited on white, 16-bit grey scaled down."""
    from .data.image import to_grey_or_rgb

    return to_grey_or_rgb(img, (255, 255, 255)).convert("RGB")


def prepare_image(image: ImageLike, size: int) -> torch.Tensor:
    """A PIL image or an (H, W) / (H, W, 3|4) uint8 array -> (1, 3, h, w) floats in [0, 1] with the
    shorter side `size` (aspect ratio kept)."""
    from .data.image import fit

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    img = fit(to_rgb_image(image), size, "random")  # "random": resize the short side, no crop
    pixels = torch.from_numpy(np.array(img, dtype=np.uint8))  # (h, w, 3)
    return pixels.permute(2, 0, 1).unsqueeze(0).float().div(255).contiguous()


def save_image(image: torch.Tensor, path: str | Path) -> Path:
    """(1, 3, H, W) in [0, 1] -> an image file (PNG unless the suffix says otherwise)."""
    from .visualize import save_image_atomic, to_uint8_hwc

    return save_image_atomic(Image.fromarray(to_uint8_hwc(image)[0]), Path(path))


# --------------------------------------------------------------------------------------------
# The optimisation

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise")


@dataclass
class StyleTransferConfig:
    size: int = 256  # shorter side in pixels of content, style and result; ~1 s a step on 2 CPUs
    steps: int = 300  # loss evaluations (= iterations: L-BFGS runs without line search)
    optimizer: str = "lbfgs"  # Gatys's; Adam needs more steps but each is as cheap
    init: str = "content"  # start from the content image (converges in fewer steps) or "noise"
    # Loss weights for the normalisation above (Gram / CHW, mean squared errors, images in [0, 1]
    # with ImageNet mean/std): the values of PyTorch's neural-style tutorial, which uses the same
    # normalisation. Gatys's alpha/beta of 1e-3..1e-4 is for unnormalised sums on Caffe's 0-255
    # activations, so its numbers do not carry over.
    content_weight: float = 1.0
    style_weight: float = 1e6  # higher: more style, less content
    tv_weight: float = 1e-2  # only smooths pixel noise; 0 is Gatys's original
    lr: float = 0.02  # Adam's step in pixel units (L-BFGS uses 1, its own scale)
    pooling: str = "max"  # "avg": Gatys's choice; the ImageNet weights were trained with max
    weights: str | None = None  # a VGG19 state-dict file, None: torchvision's cache, "random"
    seed: int = 0  # noise init and random weights
    device: str = "cpu"  # cpu, cuda, cuda:N or auto
    progress: bool = False  # a tqdm bar with the loss terms

    def validate(self) -> None:
        if self.size < 16:
            raise GankitError(f"--size {self.size}: use at least 16 pixels (VGG19 halves it four "
                              "times before relu5_1)")
        if self.steps < 1:
            raise GankitError(f"--steps {self.steps}: use at least 1 step")
        if self.optimizer not in OPTIMIZERS:
            raise GankitError(f"--optimizer {self.optimizer}: use one of {', '.join(OPTIMIZERS)}")
        if self.init not in INITS:
            raise GankitError(f"--init {self.init}: use one of {', '.join(INITS)}")
        if self.pooling not in POOLINGS:
            raise GankitError(f"pooling {self.pooling}: use one of {', '.join(POOLINGS)}")
        for name in ("content_weight", "style_weight", "tv_weight", "lr"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise GankitError(f"--{name.replace('_', '-')} {value}: use a finite number >= 0")


@dataclass
class Stylized:
    image: torch.Tensor  # (1, 3, H, W) in [0, 1], on the CPU
    history: list[dict[str, float]]  # per step: the unweighted terms and the weighted total
    final: dict[str, float]  # the same, for the returned (clamped) image
    extractor: str  # which VGG19: says whether this was real style transfer
    seconds: float
    config: StyleTransferConfig = field(repr=False)


def stylize(content: ImageLike, style: ImageLike, config: StyleTransferConfig | None = None,
            extractor: VGG19Features | None = None,
            callback: Callable[[int, dict[str, float]], None] | None = None) -> Stylized:
    """An image with `content`'s layout painted in `style`'s textures, by optimising its pixels:

        loss = content_weight * content + style_weight * style + tv_weight * tv

    `extractor`: a VGG19Features to reuse (else built from config.weights / pooling / seed).
    `callback(step, terms)` sees the loss terms of each step as they are computed."""
    from tqdm.auto import tqdm

    from .training.device import select_device

    config = config or StyleTransferConfig()
    config.validate()
    device = select_device(config.device)
    if extractor is None:
        extractor = load_vgg19(config.weights, pooling=config.pooling, seed=config.seed)
    assert CONTENT_LAYER in extractor.layers and set(STYLE_LAYERS) <= set(extractor.layers)
    extractor = extractor.to(device)
    content_image = prepare_image(content, config.size).to(device)  # (1, 3, h, w)
    style_image = prepare_image(style, config.size).to(device)
    with torch.no_grad():
        target_content = extractor(content_image)[CONTENT_LAYER]
        style_features = extractor(style_image)
        target_grams = {name: gram_matrix(style_features[name]) for name in STYLE_LAYERS}

    if config.init == "content":
        start = content_image.clone()
    else:  # white noise, as in Gatys et al.; from the seed so runs repeat
        noise = torch.Generator().manual_seed(config.seed)
        start = torch.rand(content_image.shape, generator=noise).to(device)
    image = start.requires_grad_(True)

    def terms_of(x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = extractor(x)
        terms = {CONTENT: content_loss(features[CONTENT_LAYER], target_content),
                 STYLE: style_loss(features, target_grams), TV: total_variation(x)}
        terms[TOTAL] = (config.content_weight * terms[CONTENT] + config.style_weight * terms[STYLE]
                        + config.tv_weight * terms[TV])
        return terms

    if config.optimizer == "lbfgs":
        # max_iter=1: one iteration (and one loss evaluation) per step() call, so a step costs
        # the same for both optimizers; L-BFGS keeps its curvature history across calls.
        # No tolerances: stopping early is the caller's choice of `steps`.
        optimizer = torch.optim.LBFGS([image], lr=1.0, max_iter=1, history_size=50,
                                      tolerance_grad=-1.0, tolerance_change=-1.0)
    else:
        optimizer = torch.optim.Adam([image], lr=config.lr)

    history: list[dict[str, float]] = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        terms = terms_of(image)
        terms[TOTAL].backward()
        values = {key: value.item() for key, value in terms.items()}
        history.append(values)
        if callback is not None:
            callback(len(history) - 1, values)
        return terms[TOTAL]

    began = time.perf_counter()
    with tqdm(total=config.steps, desc="stylize", unit="step", disable=not config.progress,
              leave=False) as bar:
        for _ in range(config.steps):
            optimizer.step(closure)
            if not math.isfinite(history[-1][TOTAL]):
                raise GankitError("the loss became infinite or NaN: lower --style-weight or use "
                                  "--optimizer adam")
            bar.update(1)
            bar.set_postfix({key: f"{value:.3g}" for key, value in history[-1].items()},
                            refresh=False)
    # Pixels are optimised unconstrained (clamping inside the loop would corrupt L-BFGS's
    # curvature history); the picture is the clamped result, and `final` scores that.
    result = image.detach().clamp(0, 1)
    with torch.no_grad():
        final = {key: value.item() for key, value in terms_of(result).items()}
    return Stylized(result.cpu(), history, final, extractor.description,
                    time.perf_counter() - began, config)
