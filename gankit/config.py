"""Typed run configuration: the dataclasses, their YAML / dict form, and the bundled presets.

Every field carries a default and a one-line reason. Unknown keys are an error (a typo must not
silently train the wrong thing). The resolved config is written into each run folder and stored
in every checkpoint; it alone rebuilds the run.

This module is a leaf: it imports no other part of gankit but its error type, so every component
can import it. Resolving a config (defaults < recipe < preset < flags) and validating it, which
needs the components, is resolve.py's job.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import GankitError


@dataclass
class DataConfig:
    source: str = "mnist5k"  # a built-in dataset name (`gankit list`) or a folder of images
    source_b: str | None = None  # unpaired translation (cyclegan): domain B; `source` is domain A
    size: int = 32  # images are cropped and resized to size x size
    channels: int | None = None  # 1 or 3; None: the dataset's own (folders: 1 only if all grey)
    crop: str = "center"  # center | random | none (none squashes the whole image to a square)
    # crop random: decode the short side at size x (1 + jitter), so each draw also shifts the
    # content (CycleGAN's 286 -> 256 random crops are jitter 0.117)
    jitter: float = 0.0
    mirror: bool = False  # flip each training image left-right with probability 1/2 (StyleGAN2-ADA's --mirror)
    labels: bool = False  # folder datasets: class labels from sub-folder names
    labels_csv: str | None = None  # folders: labels from a CSV of attributes (first column: file)
    label_column: str | None = None  # the column of labels_csv (or celeba) whose values are classes
    background: str = "white"  # colour that transparent pixels are composited onto
    bbox: str | None = None  # CSV of (file, x, y, w, h) or a CUB-200-2011 root: crop around boxes
    bbox_padding: float = 0.25  # the square crop is the box's longer side times (1 + padding)
    root: str | None = None  # where torchvision datasets live / are downloaded to
    download: bool = True  # torchvision datasets: download when not on disk and a network exists
    cache: bool = True  # folders: keep decoded images in an on-disk cache keyed by their content
    limit: int | None = None  # use only `limit` images (built-ins: after their fixed shuffle;
    #                           folders: the first in sorted path order)


@dataclass
class AugmentConfig:
    mode: str = "ada"  # ada | fixed | diffaug | none: what D sees of every image (real and fake)
    # ada / fixed: a StyleGAN2-ADA pipeline (bgc: blitting, geometry, colour, the paper's default;
    # also blit, geom, color, filter, noise, cutout, bg, bgcf, bgcfn, bgcfnc) or keras (the
    # keras-io example's flip, translation, rotation and zoom, with its own controller)
    pipe: str = "bgc"
    p: float = 0.0  # ada: starting probability; fixed: the constant probability
    # ada: the controller's target; None: the pipeline's own (bgc family: E[sign(D(real))] = 0.6,
    # as StyleGAN2-ADA; keras: D's accuracy on reals = 0.85, as the example)
    target: float | None = None
    ada_kimg: float = 500.0  # ada: thousands of images for p to move by 1 (StyleGAN2-ADA's 500)
    interval: int = 4  # ada: steps between updates of p (StyleGAN2-ADA's 4)
    p_max: float | None = None  # ada: an optional cap on p; the reference has none (p only >= 0)
    integration_steps: int = 1000  # keras pipeline's controller: p moves by (acc - target) / this per step
    antialias: bool = True  # resample geometry at 2x through a low-pass filter, as the reference
    policy: str = "color,translation,cutout"  # diffaug: its parts, in order (DiffAugment's default)
    ops: dict = field(default_factory=dict)  # per-op multipliers over the pipeline's, e.g. {cutout: 1}


@dataclass
class EvalConfig:
    every: int | None = None  # steps between KID evaluations of the EMA G (None: never); keeps best.pt
    n: int = 1000  # generated images per evaluation (and at most this many held-out reals)
    features: str | None = None  # extractor (`gankit list`); None: mnist for digit data, else inception
    holdout: float = 0.1  # share of the data kept out of training to evaluate on, when `every` is set
    inception_weights: str | None = None  # a local copy of the FID Inception weights


@dataclass
class TargetConfig:
    # D's targets for reals / fakes; see losses/targets.py for what each does and why
    smoothing: float = 0.0  # one-sided label smoothing: real target 1 - smoothing (0.1 is usual)
    noise: float = 0.0  # per-sample target noise of this width, pulled towards 0.5 (GDL: 0.1)
    flip: float = 0.0  # probability of swapping a sample's target (0.05 is usual)

    @property
    def active(self) -> bool:
        return bool(self.smoothing or self.noise or self.flip)


@dataclass
class ReplayConfig:
    # Experience replay (Shrivastava et al. 2017; CycleGAN's image pool of 50 is the same idea):
    # D also sees fakes from earlier steps, so G cannot win by hopping to a mode D has forgotten.
    size: int = 0  # past fakes kept (0: off)
    fraction: float = 0.5  # share of D's fake batch drawn from the buffer once it has filled


@dataclass
class OptimConfig:
    name: str = "adam"  # adam | rmsprop (rmsprop with Keras' defaults: rho 0.9, eps 1e-7; Hands-On ML)
    lr_g: float = 2e-4  # Adam learning rate of G (DCGAN paper / keras-io GAN-ADA)
    lr_d: float = 2e-4  # Adam learning rate of D
    beta1: float = 0.5  # a low beta1 damps the oscillation of adversarial training (DCGAN paper)
    beta2: float = 0.999  # Adam default
    # Constant, then linearly falling to zero (CycleGAN: 100 epochs constant, 100 decaying). The
    # positions are absolute and saved with the run, so a resumed run keeps its schedule.
    # share of the run, at its end, over which both rates fall linearly to zero (None: the
    # recipe's, 0.5 for CycleGAN; 0: constant); turned into decay_start / decay_length when a
    # run starts, from --steps or --epochs
    decay: float | None = None
    decay_start: float | None = None  # where both learning rates start to fall (None: constant)
    decay_length: float | None = None  # how long they take to reach zero from there
    decay_unit: str = "steps"  # steps | epochs (passes over the data): the unit of the two above


@dataclass
class TrainConfig:
    recipe: str = "dcgan"  # which GAN recipe (models + loss + defaults); `gankit list recipes`
    data: DataConfig = field(default_factory=DataConfig)
    model: dict = field(default_factory=dict)  # the recipe's model options (its own dataclass)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    loss: str = "nonsaturating"  # adversarial loss on D's logits; `gankit list losses`
    targets: TargetConfig = field(default_factory=TargetConfig)  # label smoothing / noise / flips
    penalty: str = "none"  # none | gp (WGAN-GP) | r1: a gradient penalty on D
    penalty_weight: float | None = None  # None: the penalty's usual weight (gp 10, r1 5 = gamma/2)
    penalty_every: int = 1  # lazy regularisation: the penalty every N steps, weighted N (StyleGAN2: 16)
    update: str = "joint"  # joint (keras GAN-ADA) | alternating | two_phase (Hands-On ML); `gankit list`
    d_steps: int = 1  # alternating / two_phase: D steps per G step (WGAN-GP: 5)
    g_steps: int = 1  # alternating / two_phase: G steps after the D steps
    d_skip_below: float | None = None  # skip D's update while its loss is below this (D too strong)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    spectral_norm: bool = False  # spectral normalisation of every D layer (Miyato et al. 2018)
    conditional: bool = False  # class labels into G and D; the data must have labels
    batch: int = 128  # images per step
    steps: int | None = None  # total G steps; with epochs and time_budget, the first reached wins
    epochs: float | None = None  # total passes over the data, converted to steps
    time_budget: float | None = None  # seconds of training in this invocation
    seed: int = 0  # seeds data order, initial weights, latents and dropout
    ema_decay: float = 0.99  # EMA of G's weights, used for all samples (keras GAN-ADA: 0.99)
    sample_every: int = 500  # steps between sample grids of the fixed latents
    checkpoint_every: int = 1000  # steps between checkpoints (one is always written at the end)
    keep_checkpoints: int = 3  # older checkpoints are deleted beyond this many
    log_every: int = 10  # steps between scalar logs (TensorBoard, metrics.jsonl)
    grid_size: int = 64  # images in each sample grid (a square number looks best)
    name: str | None = None  # run folder name; None: a new dated unique name
    runs_dir: str = "runs"  # parent folder of run folders
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "fp32"  # fp32 | bf16 (autocast; native CPU bf16 or CUDA) | fp16 (CUDA, loss scaling)
    channels_last: bool = True  # NHWC memory layout: faster convolutions on CPU and CUDA
    compile: bool = False  # torch.compile G and D (minutes of compiling; ~5% faster on this CPU)
    progress: bool = True  # show a progress bar
    guard_patience: int = 20  # non-finite updates in a row before rolling back to the last checkpoint
    sync_batchnorm: bool = False  # multi-GPU: batch-norm statistics over all ranks' batches (CUDA only)
    max_rollbacks: int = 3  # rollbacks before giving up with an error


DEFAULT_STEPS = 3000  # when no bound is given: ~8 minutes at 32 px on a 2-core CPU


# --------------------------------------------------------------------------------------------
# dict <-> dataclass, with validation


def _type_ok(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is not None:
        return isinstance(value, origin)
    return isinstance(value, annotation)


def from_dict(cls: type, values: dict, where: str = "config") -> Any:
    """Build dataclass `cls` from `values`; unknown keys and wrong types are user errors."""
    if not isinstance(values, dict):
        raise GankitError(f"{where} must be a mapping of options, not {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise GankitError(
            f"unknown option {where}.{unknown[0]}: valid options are {', '.join(sorted(names))}"
        )
    kwargs = {}
    for key, value in values.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = from_dict(hint, value, f"{where}.{key}")
            continue
        if hint is float or (typing.get_origin(hint) in (typing.Union, types.UnionType)
                             and float in typing.get_args(hint)):
            value = _as_float(value)
        if not _type_ok(value, hint):
            raise GankitError(f"option {where}.{key}={value!r} should be of type {_hint_name(hint)}")
        kwargs[key] = value
    return cls(**kwargs)


def _as_float(value: Any) -> Any:
    """Ints count as floats; so do strings like '1e-4', which YAML 1.1 reads as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def to_dict(obj: Any) -> dict:
    return dataclasses.asdict(obj)


def merge(base: dict, override: dict) -> dict:
    """Recursively merge `override` into a copy of `base` (nested dicts merge, others replace)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise GankitError(f"config file {path} not found: give the path of a YAML preset")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise GankitError(f"config file {path} is not valid YAML ({err}); fix the file") from None
    if not isinstance(values, dict):
        raise GankitError(f"config file {path} must hold a mapping of options")
    return values


PRESETS_DIR = Path(__file__).parent / "configs"  # bundled presets; configs/ at the repo root links here


def preset_names() -> list[str]:
    return sorted(path.stem for path in PRESETS_DIR.glob("*.yaml"))


def load_preset(name_or_path: str | Path) -> dict:
    """A YAML file, or the name of a bundled preset (`dcgan-lego` = configs/dcgan-lego.yaml)."""
    path = Path(name_or_path)
    if not path.is_file() and path.suffix == "" and (PRESETS_DIR / f"{path.name}.yaml").is_file():
        path = PRESETS_DIR / f"{path.name}.yaml"
    if not path.is_file() and path.suffix == "":
        raise GankitError(f"no config file or preset named {name_or_path}: give a YAML path or one of "
                          f"{', '.join(preset_names())}")
    return load_yaml(path)


# Options renamed since runs were saved with them: old run folders still load, sample and resume.
RENAMED = {"augment": {"speed_kimg": "ada_kimg"}}
RENAMED_AUGMENT_OPS = {"translate": "xint", "zoom": "scale", "zoom_aniso": "aniso"}


def upgrade_saved_config(values: dict) -> dict:
    """A config stored by an earlier gankit, with renamed options under their new names."""
    values = dict(values)
    for section, renames in RENAMED.items():
        if isinstance(values.get(section), dict):
            part = values[section] = dict(values[section])
            for old, new in renames.items():
                if old in part:
                    part.setdefault(new, part.pop(old))
    augment = values.get("augment")
    if isinstance(augment, dict) and isinstance(augment.get("ops"), dict):
        augment["ops"] = {RENAMED_AUGMENT_OPS.get(k, k): v for k, v in augment["ops"].items()}
    return values
