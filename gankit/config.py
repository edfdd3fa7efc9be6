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


def option(default: Any = dataclasses.MISSING, help: str = "", *, flag: str | None = None,
           default_factory: Any = dataclasses.MISSING) -> Any:
    """A field `gankit train` offers as a flag: its help text (one line: what it does and why),
    and the flag if not --field-name (booleans get --name/--no-name). The command line is made
    from these, so a field and its flag cannot drift apart; choices come from the components
    that own them, not from here."""
    metadata = {"help": help, "flag": flag}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class DataConfig:
    source: str = option("mnist5k", "Built-in dataset (`gankit list datasets`) or a folder of images.", flag="--data")
    source_b: str | None = None  # unpaired translation (cyclegan): domain B; `source` is domain A
    size: int = option(32, "Image size in pixels: images are cropped and resized to size x size.")
    channels: int | None = option(None, "1 or 3; unset: the data's own (a folder: 1 only if every image is grey).")
    crop: str = option("center", "How non-square images become square (none squashes the whole image).")
    # crop random: decode the short side at size x (1 + jitter), so each draw also shifts the
    # content (CycleGAN's 286 -> 256 random crops are jitter 0.117)
    jitter: float = 0.0
    mirror: bool = option(False, "Flip training images left-right at random, as StyleGAN2-ADA's --mirror (doubles small sets of photos; not for digits or text).")
    labels: bool = option(False, "Class labels from sub-folder names.")
    labels_csv: str | None = option(None, "Class labels from a CSV of attributes whose first column names the files (e.g. list_attr_celeba.csv).")
    label_column: str | None = option(None, "The --labels-csv (or celeba) column whose values become the classes, e.g. Blond_Hair.")
    background: str = "white"  # colour that transparent pixels are composited onto
    bbox: str | None = option(None, "Bounding boxes to crop around: a CSV (file,x,y,w,h) or a CUB-200-2011 root.")
    bbox_padding: float = 0.25  # the square crop is the box's longer side times (1 + padding)
    root: str | None = option(None, "Where torchvision datasets are kept / downloaded.", flag="--data-root")
    download: bool = True  # torchvision datasets: download when not on disk and a network exists
    cache: bool = True  # folders: keep decoded images in an on-disk, memory-mapped store keyed by their content
    workers: int | None = None  # folders: processes that decode the images (None: one per CPU, at most 8); pixels do not depend on it
    limit: int | None = option(None, "Use only this many images (built-ins: after their fixed shuffle; folders: the first in path order).")


@dataclass
class AugmentConfig:
    mode: str = option("ada", "Augmentation of what D sees (real and fake): adaptive p, a fixed p, DiffAugment, or none.", flag="--aug")
    pipe: str = option("bgc", "The pipeline of ada and fixed: StyleGAN2-ADA's (bgc: blitting, geometry, colour, its default; or another named set) or keras (the keras-io example's, with its own controller).", flag="--augpipe")
    p: float = option(0.0, "Augmentation probability: the start for ada, the constant for fixed.", flag="--p")
    target: float | None = option(None, "ADA's target: E[sign(D(real))] for the bgc family (0.6, as StyleGAN2-ADA), D's accuracy on reals for keras (0.85, as the example).", flag="--ada-target")
    ada_kimg: float = option(500.0, "Thousands of images for ADA's p to move by 1 (StyleGAN2-ADA's 500; smaller for short runs).", flag="--ada-kimg")
    interval: int = option(4, "Steps between updates of ADA's p (StyleGAN2-ADA's 4).", flag="--ada-interval")
    p_max: float | None = None  # ada: an optional cap on p; the reference has none (p only >= 0)
    integration_steps: int = 1000  # keras pipeline's controller: p moves by (acc - target) / this per step
    antialias: bool = True  # resample geometry at 2x through a low-pass filter, as the reference
    policy: str = option("color,translation,cutout", "DiffAugment's parts, in the order given: any of color, translation, cutout.", flag="--diffaug-policy")
    ops: dict = field(default_factory=dict)  # per-op multipliers over the pipeline's, e.g. {cutout: 1}


@dataclass
class EvalConfig:
    every: int | None = option(None, "Steps between KID evaluations of the EMA G on held-out images; keeps checkpoints/best.pt (unset: never).", flag="--eval-every")
    n: int = 1000  # generated images per evaluation (and at most this many held-out reals)
    features: str | None = None  # extractor (`gankit list`); None: mnist for digit data, else inception
    holdout: float = 0.1  # share of the data kept out of training to evaluate on, when `every` is set
    inception_weights: str | None = option(None, "A local copy of the FID Inception weights (for evaluation with inception features).")


@dataclass
class TargetConfig:
    # D's targets for reals / fakes; see losses/targets.py for what each does and why
    smoothing: float = option(0.0, "One-sided label smoothing: D's real target is 1 - this (0.1 is usual).", flag="--label-smoothing")
    noise: float = option(0.0, "Per-sample noise of this width on D's targets, pulled towards 0.5 (GDL: 0.1).", flag="--label-noise")
    flip: float = option(0.0, "Probability of swapping each of D's targets (0.05 is usual).", flag="--label-flip")

    @property
    def active(self) -> bool:
        return bool(self.smoothing or self.noise or self.flip)


@dataclass
class ReplayConfig:
    # Experience replay (Shrivastava et al. 2017; CycleGAN's image pool of 50 is the same idea):
    # D also sees fakes from earlier steps, so G cannot win by hopping to a mode D has forgotten.
    size: int = option(0, "Experience replay: past fakes kept for D (0: off).", flag="--replay")
    fraction: float = option(0.5, "Share of D's fake batch drawn from the replay buffer once it has filled.", flag="--replay-fraction")


@dataclass
class PathLengthConfig:
    """StyleGAN2's path-length regularisation of a style-based G (losses/path_length.py)."""
    weight: float = option(0.0, "Path-length regularisation weight for a style-based G (StyleGAN2: 2; 0: off).", flag="--pl-weight")
    every: int = 4  # lazy: on every N-th G step, the term weighted N (StyleGAN2's G_reg_interval)
    batch_shrink: int = 2  # on batch / N latents (StyleGAN2's pl_batch_shrink)
    decay: float = 0.01  # of pl_mean, the running mean of the path lengths (StyleGAN2's pl_decay)


@dataclass
class OptimConfig:
    name: str = "adam"  # adam | rmsprop (rmsprop with Keras' defaults: rho 0.9, eps 1e-7; Hands-On ML)
    lr_g: float = option(2e-4, "G's learning rate (Adam 2e-4: DCGAN paper, keras-io GAN-ADA).")
    lr_d: float = option(2e-4, "D's learning rate.")
    beta1: float = 0.5  # a low beta1 damps the oscillation of adversarial training (DCGAN paper)
    beta2: float = 0.999  # Adam default
    # Constant, then linearly falling to zero (CycleGAN: 100 epochs constant, 100 decaying). The
    # positions are absolute and saved with the run, so a resumed run keeps its schedule.
    # turned into decay_start / decay_length when a run starts, from --steps or --epochs
    decay: float | None = option(None, "Share of the run, at its end, over which the learning rates fall linearly to zero (0: constant; unset: the recipe's, CycleGAN and pix2pix 0.5 as their references' 100 + 100 epochs). Kept on resume.", flag="--decay")
    decay_start: float | None = None  # where both learning rates start to fall (None: constant)
    decay_length: float | None = None  # how long they take to reach zero from there
    decay_unit: str = "steps"  # steps | epochs (passes over the data): the unit of the two above


@dataclass
class TrainConfig:
    recipe: str = option("dcgan", "GAN recipe: its nets, loss and hyper-parameters (`gankit list recipes`).")
    data: DataConfig = field(default_factory=DataConfig)
    model: dict = field(default_factory=dict)  # the recipe's model options (its own dataclass)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    loss: str = option("nonsaturating", "Adversarial loss on D's logits.")
    targets: TargetConfig = field(default_factory=TargetConfig)  # label smoothing / noise / flips
    path_length: PathLengthConfig = field(default_factory=PathLengthConfig)  # style Gs (StyleGAN2)
    penalty: str = option("none", "Gradient penalty on D: WGAN-GP's on interpolates, or R1 on reals.")
    penalty_weight: float | None = option(None, "Weight of the penalty (unset: the penalty's usual, gp 10, r1 5 = gamma/2).")
    penalty_every: int = 1  # lazy regularisation: the penalty every N steps, weighted N (StyleGAN2: 16)
    classifier_weight: float = option(1.0, "AC-GAN: weight of the class loss, for a D with a classifier head (model.d_classifier).")
    classifier_fakes: bool = option(True, "AC-GAN: D's class head also learns to name G's fakes as their labels (Odena et al.); off: it learns from reals only, so G must draw what a classifier of real images names.")
    drift: float = option(0.0, "ProGAN's drift term: D's loss += drift x E[D(real)^2], which keeps a critic's scores near 0 (progan: 0.001).")
    update: str = option("joint", "Update strategy: the order of D's and G's passes in a step.")
    d_steps: int = option(1, "D (critic) steps per step (alternating, two_phase; WGAN-GP: 5).")
    g_steps: int = option(1, "G steps per step (alternating, two_phase).")
    d_skip_below: float | None = option(None, "Skip D's update while its loss is below this (D too strong).")
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    spectral_norm: bool = option(False, "Spectral normalisation of every D layer (Miyato et al. 2018).")
    conditional: bool = option(False, "Class labels into G and D (the data needs labels).", flag="--conditional/--unconditional")
    batch: int = option(128, "Images per step.")
    steps: int | None = option(None, "Total training steps; with --epochs and --time-budget the first reached wins (none given: 3000).")
    epochs: float | None = option(None, "Total passes over the data.")
    time_budget: float | None = option(None, "Seconds to train in this invocation.")
    seed: int = option(0, "Random seed of data order, initial weights, latents and dropout.")
    init_from: str | None = option(None, "Start G, D and G_ema from a trained model (a run folder, a checkpoint, a pretrained name or a URL) and fine-tune on this data; the architecture comes from it.", flag="--init-from")
    init_from_sha256: str | None = None  # the source file's sha256, recorded (and checked if given)
    freeze_d: int = option(0, "FreezeD: keep D's first N blocks, counted from the image, fixed (for fine-tuning with --init-from; `gankit list recipes` gives each D's blocks).", flag="--freeze-d")
    ema_decay: float = option(0.99, "EMA decay of G's weights per step; every sample comes from the EMA G (keras GAN-ADA: 0.99). Unused when --ema-kimg is set.")
    ema_kimg: float | None = option(None, "Half-life of G's EMA in thousands of images (StyleGAN2-ADA's ema_kimg); -1: its auto value, 10 x batch / 32; unset: the per-step --ema-decay.", flag="--ema-kimg")
    ema_rampup: float | None = option(None, "EMA ramp-up: the half-life is at most this share of the images seen so far (StyleGAN2-ADA's auto config: 0.05).", flag="--ema-rampup")
    sample_every: int = option(500, "Steps between sample pictures (grids of fixed latents; translators: sheets of fixed inputs).")
    checkpoint_every: int = option(1000, "Steps between checkpoints (one is always written at the end).")
    keep_checkpoints: int = option(3, "Checkpoints to keep (older ones are deleted).", flag="--keep")
    log_every: int = 10  # steps between scalar logs (TensorBoard, metrics.jsonl)
    grid_size: int = 64  # images in each sample grid (a square number looks best)
    name: str | None = option(None, "Run folder name under --runs-dir (unset: a new dated, unique one).")
    runs_dir: str = option("runs", "Parent folder of run folders.")
    device: str = option("auto", "auto, cpu, cuda or cuda:N.")
    precision: str = option("fp32", "fp32; bf16 autocast (CUDA, or CPUs with native bf16); fp16 autocast with loss scaling (CUDA).")
    channels_last: bool = option(True, "NHWC memory layout: faster convolutions on CPU and CUDA.")
    compile: bool = False  # torch.compile G and D (minutes of compiling; ~5% faster on this CPU)
    # CUDA: deterministic algorithms, so one seed gives one run and resume is exact, as on the CPU
    # (training/device.py); false allows torch's and cuDNN's non-deterministic kernels (faster,
    # above all grid_sample's backward under ADA). No effect on a CPU.
    deterministic: bool = True
    progress: bool = option(True, "Show a progress bar.")
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
    except UnicodeDecodeError:
        raise GankitError(f"config file {path} is not text: give a YAML file of `option: value` lines") from None
    except yaml.YAMLError as err:
        # PyYAML's own message spans several lines (the context, the offending line, a caret):
        # keep its one-line problem and where it is
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise GankitError(f"config file {path} is not valid YAML{where} ({problem}): fix it there (options are "
                          "`name: value` lines, a section's options indented under `section:`)") from None
    if not isinstance(values, dict):
        kind = "a list" if isinstance(values, list) else "a single value"
        raise GankitError(f"config file {path} holds {kind}, not options: write one `name: value` line per "
                          "option (e.g. `batch: 64`)")
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
# Model options added since, whose new default behaves differently from what saved runs did: a
# config saved without one keeps the old behaviour. recipe -> {option: its value before}.
ADDED_MODEL_OPTIONS = {"stylegan": {"output": "tanh", "d_downsample": "pool"},
                       "progan": {"output": "tanh", "fade_reals": False, "reset_optimizer": False}}


def upgrade_saved_config(values: dict) -> dict:
    """A config stored by an earlier gankit, with renamed options under their new names and
    options added since set to what the run was trained with."""
    values = dict(values)
    added = ADDED_MODEL_OPTIONS.get(values.get("recipe"), {})
    if added and isinstance(values.get("model"), dict):
        values["model"] = {**added, **values["model"]}
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
