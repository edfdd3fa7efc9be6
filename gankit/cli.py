"""Command line: `gankit train | sample | eval | nearest | interpolate | mix | progress |
translate train|apply | stylize | list`.

Every user error ends as one line on stderr (`error: ...` saying what to do) and exit code 2;
never a traceback. Training options map one-to-one onto TrainConfig fields; `--set a.b=v` reaches
any other field, and `--config preset.yaml` loads a preset first.
"""

from __future__ import annotations

import os
import sys
import warnings
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
import yaml

from .config import DEFAULT_STEPS, DataConfig, TrainConfig
from .errors import GankitError

_T, _D = TrainConfig, DataConfig  # help texts quote the dataclass defaults: one source of truth

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # plain help text: rich markup would swallow the "[default: ...]" our help strings carry
    rich_markup_mode=None,
    help="Train, evaluate and use GANs on your own images.",
)


class Crop(str, Enum):
    center = "center"
    random = "random"
    none = "none"


class Aug(str, Enum):
    ada = "ada"
    fixed = "fixed"
    diffaug = "diffaug"
    none = "none"


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


def _parse_set(items: list[str]) -> dict:
    """`--set optim.lr_g=1e-4` -> {"optim": {"lr_g": 0.0001}} (values parsed as YAML scalars)."""
    out: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise GankitError(f"--set {item!r} must look like key=value, e.g. --set optim.lr_g=1e-4")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


@app.command()
def train(
    data: Optional[str] = typer.Option(None, help=f"Built-in dataset (see `gankit list`) or a folder of images. [default: {_D.source}]"),
    size: Optional[int] = typer.Option(None, help=f"Image size in pixels (a power of two for DCGAN). [default: {_D.size}]"),
    channels: Optional[int] = typer.Option(None, help="1 or 3. [default: the data's own]"),
    crop: Optional[Crop] = typer.Option(None, help=f"How non-square images become square. [default: {_D.crop}]"),
    mirror: Optional[bool] = typer.Option(None, "--mirror/--no-mirror", help="Flip training images left-right at random (doubles small sets of photos; not for digits or text). [default: off]"),
    labels: Optional[bool] = typer.Option(None, "--labels/--no-labels", help="Class labels from sub-folder names."),
    labels_csv: Optional[str] = typer.Option(None, help="Class labels from a CSV of attributes whose first column names the files (e.g. list_attr_celeba.csv)."),
    label_column: Optional[str] = typer.Option(None, help="The --labels-csv (or celeba) column that becomes the class, e.g. Blond_Hair."),
    bbox: Optional[str] = typer.Option(None, help="Bounding boxes: a CSV (file,x,y,w,h) or a CUB-200-2011 root."),
    data_root: Optional[str] = typer.Option(None, help="Where torchvision datasets are kept / downloaded."),
    limit: Optional[int] = typer.Option(None, help="Use only this many images."),
    aug: Optional[Aug] = typer.Option(None, help="Augmentation of what D sees: adaptive, fixed p, DiffAugment or none. [default: ada]"),
    augpipe: Optional[str] = typer.Option(None, help="The pipeline for ada and fixed: bgc (StyleGAN2-ADA), blit, geom, color, filter, noise, cutout, bg, bgcf, bgcfn, bgcfnc, or keras (the keras-io example's, with its own controller). [default: bgc]"),
    p: Optional[float] = typer.Option(None, "--p", help="Augmentation probability: the start for ada, the constant for fixed. [default: 0]"),
    ada_target: Optional[float] = typer.Option(None, help="ADA's target: E[sign(D(real))] for the bgc family, D's accuracy on reals for keras. [default: 0.6; keras 0.85]"),
    ada_kimg: Optional[float] = typer.Option(None, help="Thousands of images for ADA's p to move by 1. [default: 500]"),
    ada_interval: Optional[int] = typer.Option(None, help="Steps between updates of ADA's p. [default: 4]"),
    diffaug_policy: Optional[str] = typer.Option(None, help="DiffAugment's parts, in order: any of color, translation, cutout. [default: color,translation,cutout]"),
    eval_every: Optional[int] = typer.Option(None, help="Steps between KID evaluations on held-out images; keeps checkpoints/best.pt. [default: never]"),
    inception_weights: Optional[str] = typer.Option(None, help="Local FID Inception weights file (for evaluation with inception features)."),
    recipe: Optional[str] = typer.Option(None, help=f"GAN recipe (see `gankit list`). [default: {_T.recipe}]"),
    loss: Optional[str] = typer.Option(None, help="Adversarial loss: nonsaturating, saturating, wasserstein, hinge, lsgan. [default: the recipe's]"),
    penalty: Optional[str] = typer.Option(None, help="Gradient penalty on D: none, gp (WGAN-GP), r1. [default: the recipe's]"),
    penalty_weight: Optional[float] = typer.Option(None, help="Weight of the penalty. [default: gp 10, r1 5]"),
    update: Optional[str] = typer.Option(None, help="Update strategy: joint, alternating, two_phase. [default: the recipe's]"),
    d_steps: Optional[int] = typer.Option(None, help="D (critic) steps per step (alternating, two_phase). [default: the recipe's]"),
    g_steps: Optional[int] = typer.Option(None, help="G steps per step (alternating, two_phase). [default: 1]"),
    conditional: Optional[bool] = typer.Option(None, "--conditional/--unconditional", help="Class labels into G and D (the data needs labels)."),
    spectral_norm: Optional[bool] = typer.Option(None, "--spectral-norm/--no-spectral-norm", help="Spectral normalisation of every D layer."),
    label_smoothing: Optional[float] = typer.Option(None, help="One-sided label smoothing: D's real target is 1 - this. [default: 0]"),
    label_noise: Optional[float] = typer.Option(None, help="Per-sample noise of this width on D's targets. [default: 0]"),
    label_flip: Optional[float] = typer.Option(None, help="Probability of flipping each of D's targets. [default: 0]"),
    replay: Optional[int] = typer.Option(None, help="Experience replay: past fakes kept for D (0: off). [default: 0]"),
    replay_fraction: Optional[float] = typer.Option(None, help="Share of D's fake batch drawn from the replay buffer. [default: 0.5]"),
    d_skip_below: Optional[float] = typer.Option(None, help="Skip D's update while its loss is below this."),
    lr_g: Optional[float] = typer.Option(None, help="G's learning rate. [default: the recipe's]"),
    lr_d: Optional[float] = typer.Option(None, help="D's learning rate. [default: the recipe's]"),
    steps: Optional[int] = typer.Option(None, help=f"Total training steps. [default: {DEFAULT_STEPS} if no other bound]"),
    epochs: Optional[float] = typer.Option(None, help="Total passes over the data."),
    time_budget: Optional[float] = typer.Option(None, help="Seconds to train in this invocation."),
    batch: Optional[int] = typer.Option(None, help=f"Images per step. [default: {_T.batch}]"),
    seed: Optional[int] = typer.Option(None, help=f"Random seed. [default: {_T.seed}]"),
    name: Optional[str] = typer.Option(None, help="Run folder name under --runs-dir. [default: dated, unique]"),
    runs_dir: Optional[str] = typer.Option(None, help=f"Parent folder of runs. [default: {_T.runs_dir}]"),
    ema_decay: Optional[float] = typer.Option(None, help=f"EMA decay of G's weights. [default: {_T.ema_decay}]"),
    sample_every: Optional[int] = typer.Option(None, help=f"Steps between sample grids. [default: {_T.sample_every}]"),
    checkpoint_every: Optional[int] = typer.Option(None, help=f"Steps between checkpoints. [default: {_T.checkpoint_every}]"),
    keep: Optional[int] = typer.Option(None, help=f"Checkpoints to keep. [default: {_T.keep_checkpoints}]"),
    device: Optional[str] = typer.Option(None, help=f"auto, cpu, cuda or cuda:N. [default: {_T.device}]"),
    precision: Optional[Precision] = typer.Option(None, help=f"fp32; bf16 autocast (CUDA, or CPUs with native bf16); fp16 autocast with loss scaling (CUDA). [default: {_T.precision}]"),
    channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last", help="NHWC layout (faster convolutions). [default: on]"),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Progress bar. [default: on]"),
    config: Optional[str] = typer.Option(None, help="YAML preset applied before the other options: a file, or the name of a bundled preset (`gankit list`)."),
    set_: list[str] = typer.Option([], "--set", help="Any config field: --set optim.lr_g=1e-4 (repeatable)."),
    resume: Optional[Path] = typer.Option(None, help="Continue the run in this folder (or from this checkpoint)."),
    nproc: Optional[int] = typer.Option(None, help="Train in this many processes on this machine (one per GPU; CPU processes without): runs the command under torchrun. --batch is per process."),
):
    """Train a GAN (default: the keras-io GAN-ADA DCGAN on the built-in mnist5k digits)."""
    from .training import distributed

    if nproc is not None and nproc < 1:
        raise GankitError(f"--nproc {nproc}: use 1 or more processes")
    if nproc and nproc > 1 and not distributed.launched_by_torchrun():
        _relaunch_under_torchrun(nproc)
    from .api import train as run_training
    from .config import load_preset, merge

    flat = {
        "recipe": recipe, "steps": steps, "epochs": epochs, "time_budget": time_budget,
        "batch": batch, "seed": seed, "name": name, "runs_dir": runs_dir, "ema_decay": ema_decay,
        "sample_every": sample_every, "checkpoint_every": checkpoint_every,
        "keep_checkpoints": keep, "device": device, "channels_last": channels_last,
        "progress": progress, "precision": precision.value if precision else None,
        "loss": loss, "penalty": penalty, "penalty_weight": penalty_weight, "update": update,
        "d_steps": d_steps, "g_steps": g_steps, "conditional": conditional,
        "spectral_norm": spectral_norm, "d_skip_below": d_skip_below,
    }
    data_options = {
        "source": data, "size": size, "channels": channels, "crop": crop.value if crop else None,
        "mirror": mirror, "labels": labels, "labels_csv": labels_csv, "label_column": label_column, "bbox": bbox,
        "root": data_root, "limit": limit,
    }
    options = load_preset(config) if config else {}
    options = merge(options, {k: v for k, v in flat.items() if v is not None})
    augment_options = {"mode": aug.value if aug else None, "pipe": augpipe, "p": p, "target": ada_target,
                       "ada_kimg": ada_kimg, "interval": ada_interval, "policy": diffaug_policy}
    eval_options = {"every": eval_every, "inception_weights": inception_weights}
    target_options = {"smoothing": label_smoothing, "noise": label_noise, "flip": label_flip}
    replay_options = {"size": replay, "fraction": replay_fraction}
    optim_options = {"lr_g": lr_g, "lr_d": lr_d}
    for section, values in (("data", data_options), ("augment", augment_options), ("eval", eval_options),
                            ("targets", target_options), ("replay", replay_options),
                            ("optim", optim_options)):
        given = {k: v for k, v in values.items() if v is not None}
        if given:
            options = merge(options, {section: given})
    options = merge(options, _parse_set(set_))
    try:
        result = run_training(options, resume=resume)
    finally:
        distributed.teardown()
    if distributed.rank() == 0 and int(os.environ.get("RANK", "0")) == 0:
        typer.echo(f"trained {result.step} steps ({result.images_seen} images); run folder: {result.run_dir}")
        typer.echo(f"latest checkpoint: {result.checkpoint}")


def _relaunch_under_torchrun(nproc: int) -> None:
    """Replace this process by `torchrun --standalone --nproc-per-node N -m gankit <same args>`."""
    args, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
            continue
        if arg == "--nproc":
            skip = True
            continue
        if arg.startswith("--nproc="):
            continue
        args.append(arg)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "gankit", *args]
    os.execv(sys.executable, command)


TRUNCATION_HELP = ("Truncation psi, StyleGAN-style generators only: w is pulled towards its average, "
                   "w_avg + psi (w - w_avg); 1: off, 0.5-0.8: less variety, cleaner images; -1 to 2.")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@app.command()
def sample(
    checkpoint: Path = typer.Argument(..., help="A checkpoint file, or a run folder (its latest checkpoint)."),
    n: int = typer.Option(64, help="Number of images."),
    out: Path = typer.Option(..., help="x.png: one grid; x.npz: uint8 array `images` (N, H, W, C); a folder: one PNG each."),
    seed: int = typer.Option(0, help="Seed of the latents: the same seed gives the same images."),
    label: Optional[str] = typer.Option(None, help="Conditional GANs: the class to generate, by index or name. [default: random classes]"),
    by_class: bool = typer.Option(False, "--by-class", help="Conditional GANs: one row per class from shared latents (n per row)."),
    truncation: float = typer.Option(1.0, help=TRUNCATION_HELP),
    device: str = typer.Option("cpu", help="cpu, cuda or auto."),
):
    """Generate images with the EMA generator of a checkpoint."""
    from .api import load_generator
    from .visualize import save_folder, save_grid, save_npz

    if n < 1:
        raise GankitError(f"--n {n}: ask for at least one image")
    generator = load_generator(checkpoint, device=device)
    nrow = None
    if by_class:
        images = generator.sample_by_class(n, seed=seed, truncation=truncation)
        nrow, n = n, len(images)
    else:
        images = generator.sample(n, seed=seed, label=label, truncation=truncation)
    suffix = out.suffix.lower()
    if suffix == ".npz":
        save_npz(images, out)
    elif suffix in (".png", ".jpg", ".jpeg", ".webp"):
        save_grid(images, out, nrow=nrow)
    elif suffix:
        raise GankitError(f"--out {out}: use a .png (grid), a .npz (array) or a folder name")
    else:
        save_folder(images, out)
    typer.echo(f"wrote {n} samples from step {generator.step} to {out}")


@app.command()
def interpolate(
    checkpoint: Path = typer.Argument(..., help="A checkpoint file, or a run folder (its latest checkpoint)."),
    out: Path = typer.Option(..., help="x.gif: a looping animation; x.png: a grid, one row per keyframe; a folder: one PNG per frame."),
    keyframes: int = typer.Option(4, help="Random latents the walk passes through (at least 2); it ends where it started."),
    frames: int = typer.Option(16, help="Frames from one keyframe to the next."),
    seed: int = typer.Option(0, help="Seed of the keyframe latents."),
    space: str = typer.Option("auto", help="z: slerp between Gaussian latents (any model); w: lerp between mapped styles (StyleGAN-style); auto: w where there is one."),
    truncation: float = typer.Option(1.0, help=TRUNCATION_HELP),
    label: Optional[str] = typer.Option(None, help="Conditional GANs: the class the walk stays in, by index or name (default: class 0)."),
    duration: int = typer.Option(80, help="GIF: milliseconds per frame."),
    device: str = typer.Option("cpu", help="cpu, cuda or auto."),
):
    """A looping walk through latent space, as a GIF, a grid or frames."""
    from .api import load_generator
    from .visualize import save_folder, save_gif, save_grid

    suffix = out.suffix.lower()
    if suffix and suffix != ".gif" and suffix not in IMAGE_SUFFIXES:
        raise GankitError(f"--out {out}: use a .gif (animation), a .png (grid) or a folder name (frames)")
    if duration < 1:
        raise GankitError(f"--duration {duration}: use at least 1 millisecond per frame")
    generator = load_generator(checkpoint, device=device)
    images = generator.interpolate(keyframes, frames, seed=seed, space=space, truncation=truncation,
                                   label=label)
    if suffix == ".gif":
        save_gif(images, out, duration=duration)
    elif suffix:
        save_grid(images, out, nrow=frames)
    else:
        save_folder(images, out, prefix="frame")
    typer.echo(f"wrote {len(images)} frames ({keyframes} keyframes) from step {generator.step} to {out}")


@app.command()
def mix(
    checkpoint: Path = typer.Argument(..., help="A checkpoint file, or a run folder (its latest checkpoint); a StyleGAN-style generator."),
    out: Path = typer.Option(..., help="The grid picture: .png, .jpg or .webp."),
    rows: int = typer.Option(4, help="Row sources: their coarse styles (pose, shape) go across their row."),
    cols: int = typer.Option(4, help="Column sources: their fine styles (colour, texture) go down their column."),
    crossover: Optional[int] = typer.Option(None, help="Style layers taken from the row source (0 = coarsest); the rest come from the column (default: half of them)."),
    seed: int = typer.Option(0, help="Seed of the source latents."),
    truncation: float = typer.Option(1.0, help=TRUNCATION_HELP),
    label: Optional[str] = typer.Option(None, help="Conditional GANs: the class of every source, by index or name (default: class 0)."),
    device: str = typer.Option("cpu", help="cpu, cuda or auto."),
):
    """A style-mixing grid: each cell has its row's coarse styles and its column's fine styles."""
    from .api import load_generator
    from .visualize import save_grid

    if out.suffix.lower() not in IMAGE_SUFFIXES:
        raise GankitError(f"--out {out}: use a picture name ending in .png, .jpg or .webp")
    generator = load_generator(checkpoint, device=device)
    images = generator.style_mix(rows, cols, seed=seed, crossover=crossover, truncation=truncation,
                                 label=label)
    save_grid(images, out, nrow=cols + 1)
    typer.echo(f"wrote a {rows} x {cols} style-mixing grid from step {generator.step} to {out}")


@app.command()
def progress(
    run: Path = typer.Argument(..., help="A training run folder (its samples/ grids)."),
    out: Path = typer.Option(Path("progress.gif"), help="The animation, a .gif."),
    every: int = typer.Option(1, help="Use every Nth grid (the last one always)."),
    duration: int = typer.Option(200, help="Milliseconds per frame."),
    label_steps: bool = typer.Option(True, "--label-steps/--no-label-steps", help="Write the step under each frame."),
):
    """A GIF of the fixed-latent sample grids saved during training: G learning, frame by frame."""
    from .visualize import progress_gif

    if out.suffix.lower() != ".gif":
        raise GankitError(f"--out {out}: use a file name ending in .gif")
    if duration < 1:
        raise GankitError(f"--duration {duration}: use at least 1 millisecond per frame")
    steps = progress_gif(run, out, every=every, duration=duration, label_steps=label_steps)
    typer.echo(f"wrote {len(steps)} frames (steps {steps[0]} to {steps[-1]}) to {out}")


translate_app = typer.Typer(
    no_args_is_help=True,
    help="Unpaired image-to-image translation (CycleGAN): train on two folders, apply to images.",
)
app.add_typer(translate_app, name="translate")


def _domains(a: Optional[str], b: Optional[str], root: Optional[Path]) -> tuple[str, str]:
    """(domain A, domain B) from --a/--b, or from a dataset root's trainA/ and trainB/."""
    if root is not None:
        if a or b:
            raise GankitError("give the domains either as --a and --b or as --data ROOT, not both")
        found = [root / "trainA", root / "trainB"]
        missing = [str(path) for path in found if not path.is_dir()]
        if missing:
            raise GankitError(f"--data {root} has no {' or '.join(missing)}: a CycleGAN dataset root "
                              "holds trainA/ and trainB/; or give the folders with --a and --b")
        return str(found[0]), str(found[1])
    if not a or not b:
        raise GankitError("give both domains: --a FOLDER --b FOLDER (or --data ROOT holding trainA/ "
                          "and trainB/)")
    return a, b


@translate_app.command("train")
def translate_train(
    a: Optional[str] = typer.Option(None, "--a", help="Domain A: a folder of images, or a built-in (mnist5k-a, digits-a)."),
    b: Optional[str] = typer.Option(None, "--b", help="Domain B: a folder of images, or a built-in (mnist5k-b, digits-b: A's other half, inverted)."),
    data: Optional[Path] = typer.Option(None, help="A dataset root holding trainA/ and trainB/, instead of --a and --b."),
    size: Optional[int] = typer.Option(None, help=f"Image size, a multiple of 4 (the paper: 256; 6 residual blocks up to 128, 9 above). [default: {_D.size}]"),
    channels: Optional[int] = typer.Option(None, help="1 or 3. [default: RGB if either domain is in colour]"),
    steps: Optional[int] = typer.Option(None, help=f"Total training steps (one image of each domain per step at --batch 1). [default: {DEFAULT_STEPS} if no other bound]"),
    epochs: Optional[float] = typer.Option(None, help="Total passes over the larger domain (the reference: 200)."),
    time_budget: Optional[float] = typer.Option(None, help="Seconds to train in this invocation (the learning rate then stays constant)."),
    decay: Optional[float] = typer.Option(None, help="Share of the run, at its end, over which the learning rates fall linearly to zero (the reference: 100 of 200 epochs); 0: constant. Set from --steps, else --epochs, and kept on resume. [default: 0.5]"),
    batch: Optional[int] = typer.Option(None, help="Images of each domain per step. [default: 1, as the reference]"),
    seed: Optional[int] = typer.Option(None, help=f"Random seed. [default: {_T.seed}]"),
    name: Optional[str] = typer.Option(None, help="Run folder name under --runs-dir. [default: dated, unique]"),
    runs_dir: Optional[str] = typer.Option(None, help=f"Parent folder of runs. [default: {_T.runs_dir}]"),
    sample_every: Optional[int] = typer.Option(None, help=f"Steps between sample sheets (rows A, A->B, A->B->A, B, B->A, B->A->B). [default: {_T.sample_every}]"),
    checkpoint_every: Optional[int] = typer.Option(None, help=f"Steps between checkpoints. [default: {_T.checkpoint_every}]"),
    device: Optional[str] = typer.Option(None, help=f"auto, cpu, cuda or cuda:N. [default: {_T.device}]"),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Progress bar. [default: on]"),
    tiny: bool = typer.Option(False, "--tiny", help="Tiny networks that train in seconds: a smoke test of the whole path."),
    mirror: Optional[bool] = typer.Option(None, "--mirror/--no-mirror", help="Flip training images left-right at random, as the CycleGAN reference does (turn off for text or digits). [default: on]"),
    set_: list[str] = typer.Option([], "--set", help="Any config field: --set model.cycle_weight=5, --set data.jitter=0 (no 286 -> 256 style crops) (repeatable)."),
    resume: Optional[Path] = typer.Option(None, help="Continue the run in this folder (or from this checkpoint); it keeps its epoch count and learning-rate schedule."),
):
    """Train a CycleGAN on two unpaired folders of images (trainA/, trainB/)."""
    from .api import train as run_training
    from .config import merge
    from .variants import get_recipe

    bounds = {"steps": steps, "epochs": epochs, "time_budget": time_budget}
    flat = {**bounds, "batch": batch, "seed": seed, "name": name, "runs_dir": runs_dir,
            "sample_every": sample_every, "checkpoint_every": checkpoint_every, "device": device,
            "progress": progress}
    options = {k: v for k, v in flat.items() if v is not None}
    if resume is None:
        source_a, source_b = _domains(a, b, data)
        options["recipe"] = "cyclegan"
        options["data"] = {k: v for k, v in {"source": source_a, "source_b": source_b, "size": size,
                                             "channels": channels, "mirror": mirror}.items() if v is not None}
        if tiny:
            options["model"] = dict(get_recipe("cyclegan").tiny)
        if not any(v is not None for v in bounds.values()):
            options["steps"] = DEFAULT_STEPS
        share = 0.5 if decay is None else decay
        if not 0.0 <= share <= 1.0:
            raise GankitError(f"--decay {decay}: give a share of the run from 0 (constant rate) to 1")
        total, unit = ((options["steps"], "steps") if options.get("steps") is not None
                       else (options.get("epochs"), "epochs"))
        if share and total is None and decay is not None:
            raise GankitError("--decay needs a run length to take a share of: give --steps or --epochs")
        if share and total is not None:
            options["optim"] = {"decay_start": total * (1 - share), "decay_length": total * share,
                                "decay_unit": unit}
    elif any(v is not None for v in (a, b, data, size, channels, decay, mirror)) or tiny:
        raise GankitError("--resume continues a run with its own data, size and schedule: give only "
                          "--steps, --epochs or --time-budget (and logging options)")
    options = merge(options, _parse_set(set_))
    result = run_training(options, resume=resume)
    typer.echo(f"trained {result.step} steps ({result.images_seen} images of each domain); run "
               f"folder: {result.run_dir}")
    typer.echo(f"latest checkpoint: {result.checkpoint}")


@translate_app.command("apply")
def translate_apply(
    checkpoint: Path = typer.Argument(..., help="A checkpoint of `gankit translate train`, or its run folder."),
    input: Path = typer.Argument(..., help="An image file, or a folder of images (searched recursively)."),
    output: Path = typer.Argument(..., help="The translated image for a file; for a folder, a folder of PNGs with the same relative names."),
    direction: str = typer.Option(..., help="a2b: domain A to B; b2a: B to A."),
    batch: int = typer.Option(16, help="Images per forward pass."),
    device: str = typer.Option("cpu", help="cpu, cuda or auto."),
):
    """Translate an image, or a folder of images, with a trained CycleGAN.

    Images are cropped and resized to the training size, as in training."""
    import dataclasses

    import torch

    from .api import load_translator
    from .data.folder import decode_file, image_files
    from .data.image import Preprocess, to_channels
    from .models.cyclegan import DIRECTIONS
    from .visualize import grid_image, save_image_atomic

    if direction not in DIRECTIONS:
        raise GankitError(f"--direction {direction!r}: use a2b (domain A to B) or b2a (B to A)")
    if batch < 1:
        raise GankitError(f"--batch {batch}: use at least 1")
    if not input.exists():
        raise GankitError(f"input {input} does not exist: give an image file or a folder of images")
    if input.is_dir():
        if output.is_file():
            raise GankitError(f"output {output} is a file, but the input is a folder: give a folder name")
        files = image_files(input)
        if not files:
            raise GankitError(f"no image files in {input}: give a folder with .png, .jpg or .webp images")
        targets = [output / path.relative_to(input).with_suffix(".png") for path in files]
    else:
        if input.suffix.lower() not in IMAGE_SUFFIXES + (".bmp", ".gif"):
            raise GankitError(f"input {input} is not an image file: give a .png, .jpg or .webp file, or a folder")
        if output.suffix.lower() not in IMAGE_SUFFIXES:
            raise GankitError(f"output {output}: for one input image give a file name ending in .png, "
                              ".jpg or .webp")
        files, targets = [input], [output]
    translator = load_translator(checkpoint, device=device)
    data = translator.config.data
    # a random training crop has no single answer at test time: take the centre
    preprocess = Preprocess.from_config(dataclasses.replace(data, crop="center" if data.crop == "random" else data.crop))
    failed = []
    for start in range(0, len(files), batch):
        chunk, decoded = [], []
        for path, target in zip(files[start:start + batch], targets[start:start + batch]):
            try:
                decoded.append(to_channels(decode_file(path, preprocess, None), translator.channels))
                chunk.append(target)
            except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError, ...
                if len(files) == 1:
                    raise GankitError(f"cannot decode {path} ({str(err)[:120]}): give a readable image") from None
                failed.append(path)
        if not decoded:
            continue
        images = translator.translate(torch.stack(decoded).float().div_(255), direction, batch)
        for image, target in zip(images, chunk):
            save_image_atomic(grid_image(image[None], nrow=1, padding=0), target)
    if failed:
        warnings.warn(f"skipped {len(failed)} files that could not be decoded (first: {failed[0]})")
    typer.echo(f"translated {len(files) - len(failed)} image(s) {direction} with the model of step "
               f"{translator.step} to {output}")


@app.command("eval")
def evaluate(
    checkpoint: Path = typer.Argument(..., help="A checkpoint file, or a run folder (its latest checkpoint)."),
    metrics: str = typer.Option("kid,fid", help="Comma-separated: kid, fid."),
    features: Optional[str] = typer.Option(None, help="Feature extractor: mnist, inception, inception75 or a registered name. [default: mnist for digit data, else inception]"),
    n: int = typer.Option(2000, help="Generated images (and at most this many real ones); KID uses subsets of 1000."),
    data: Optional[str] = typer.Option(None, help="Real images to compare with. [default: the run's training data]"),
    inception_weights: Optional[Path] = typer.Option(None, help="Local FID Inception weights file."),
    seed: int = typer.Option(0, help="Seed of the generated latents."),
    device: str = typer.Option("cpu", help="cpu, cuda or auto."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
):
    """Score a checkpoint's EMA generator with KID and/or FID against real images."""
    import json

    import torch

    from .api import load_generator
    from .metrics import default_features
    from .data import load_dataset
    from .metrics import compute_metrics

    generator = load_generator(checkpoint, device=device)
    data_config = generator.config.data
    if data:  # other images at the run's size: the run's labels, boxes and limit belong to its own data
        from .config import DataConfig

        data_config = DataConfig(source=data, size=data_config.size, channels=data_config.channels,
                                 crop=data_config.crop, background=data_config.background)
    real = load_dataset(data_config, progress=progress)
    features = features or default_features(data_config.source)
    latents = torch.Generator().manual_seed(seed)
    # A conditional generator draws its labels as training's KID does: at the real images' class
    # frequencies when they carry the same classes, else uniformly.
    frequencies = None
    if generator.num_classes:
        same_classes = getattr(real, "labels", None) is not None and int(real.labels.max()) < generator.num_classes
        frequencies = (torch.bincount(real.labels, minlength=generator.num_classes).float() if same_classes
                       else torch.ones(generator.num_classes))

    def fakes(k: int) -> torch.Tensor:
        z = torch.randn(k, generator.latent_dim, generator=latents)
        labels = None if frequencies is None else torch.multinomial(frequencies, k, replacement=True, generator=latents)
        return generator.generate(z, labels=labels)

    scores = compute_metrics(
        fakes,
        real, features, n=n, metrics=[m.strip() for m in metrics.split(",") if m.strip()],
        device=device if device != "auto" else generator.device,
        weights=inception_weights if features.startswith("inception") else None,
        progress=progress,
    )
    typer.echo(f"{'metric':<10}{'value':>14}")
    for key, value in scores.items():
        typer.echo(f"{key:<10}{value:>14.6g}")
    typer.echo(json.dumps({"checkpoint": str(checkpoint), "step": generator.step, "features": features,
                           "data": data_config.source, **scores}))


@app.command()
def nearest(
    checkpoint: Path = typer.Argument(..., help="A checkpoint file, or a run folder (its latest checkpoint)."),
    k: int = typer.Option(3, help="Nearest training images shown beside each sample."),
    n: int = typer.Option(16, help="Generated samples to check (the rows of the picture); the same images as `gankit sample --seed`."),
    features: Optional[str] = typer.Option(None, help="Feature extractor: mnist, inception, inception75, a registered name, or none (pixel L1 only). [default: mnist for digit data, else inception]"),
    out: Path = typer.Option(Path("nearest.png"), help="Picture of the pixel-L1 neighbours; the feature neighbours go to <stem>-features.png."),
    seed: int = typer.Option(0, help="Seed of the generated latents."),
    quantile: float = typer.Option(0.01, help="Flag a sample closer to the training set than this share of training images are to their nearest other one."),
    reference: int = typer.Option(2000, help="Training images whose nearest other training image gives the baseline distances."),
    inception_weights: Optional[Path] = typer.Option(None, help="Local FID Inception weights file."),
    device: str = typer.Option("cpu", help="cpu, cuda or auto."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
):
    """Memorisation check: the nearest training images of generated samples, by pixel L1 and by features."""
    import json

    from .metrics.memorisation import (FLAGGED, MEDIAN_GENERATED, MEDIAN_TRAIN, RATIO, THRESHOLD,
                                       check_memorisation)

    result = check_memorisation(checkpoint, n=n, k=k, features=features or "auto", out=out,
                                seed=seed, quantile=quantile, n_reference=reference, device=device,
                                inception_weights=inception_weights, progress=progress)
    summaries = {metric: report.summary() for metric, report in result.reports.items()}

    def number(x):
        return f"{x:>14.4g}" if x is not None else f"{'-':>14}"

    typer.echo(f"{'distance':<10}{'gen->train':>14}{'train->train':>14}{'threshold':>14}"
               f"{'ratio':>14}{'flagged':>10}")
    for metric, summary in summaries.items():
        typer.echo(f"{metric:<10}{number(summary[MEDIAN_GENERATED])}{number(summary[MEDIAN_TRAIN])}"
                   f"{number(summary[THRESHOLD])}{number(summary[RATIO])}"
                   f"{f'{len(summary[FLAGGED])}/{n}':>10}")
    typer.echo(f"(medians of nearest distances; flagged: at or below the {quantile:g} quantile "
               "of train->train)")
    copies = [f"{metric} {', '.join(map(str, summary[FLAGGED]))}"
              for metric, summary in summaries.items() if summary[FLAGGED]]
    if copies:
        typer.echo(f"likely copies, by picture row from 0 (framed in red): {'; '.join(copies)}")
    typer.echo(f"wrote {', '.join(str(path) for path in result.pictures.values())}")
    typer.echo(json.dumps(result.to_json()))


@app.command()
def stylize(
    content: Path = typer.Argument(..., help="The picture whose layout is kept."),
    style: Path = typer.Argument(..., help="The picture whose textures and colours are painted on."),
    out: Path = typer.Option(..., help="The result: .png, .jpg or .webp."),
    size: Optional[int] = typer.Option(None, help="Shorter side of the result in pixels. (default: 256)"),
    steps: Optional[int] = typer.Option(None, help="Optimisation steps (loss evaluations). (default: 300)"),
    style_weight: Optional[float] = typer.Option(None, help="Weight of the Gram-matrix style loss: higher, more style. (default: 1e6)"),
    content_weight: Optional[float] = typer.Option(None, help="Weight of the relu4_2 content loss. (default: 1)"),
    tv_weight: Optional[float] = typer.Option(None, help="Weight of the total-variation smoothing. (default: 0.01)"),
    optimizer: Optional[str] = typer.Option(None, help="lbfgs (Gatys's) or adam. (default: lbfgs)"),
    lr: Optional[float] = typer.Option(None, help="Adam's learning rate in pixel units. (default: 0.02)"),
    init: Optional[str] = typer.Option(None, help="Start from the content image or from noise. (default: content)"),
    pooling: Optional[str] = typer.Option(None, help="VGG19 pooling: max (as trained) or avg (Gatys's). (default: max)"),
    weights: Optional[Path] = typer.Option(None, help="VGG19 ImageNet state-dict file. (default: torchvision's cache, or a download)"),
    random_weights: bool = typer.Option(False, "--random-weights", help="A seeded random VGG19 instead: runs offline, but is not real style transfer."),
    seed: Optional[int] = typer.Option(None, help="Seed of the noise start and the random weights. (default: 0)"),
    device: Optional[str] = typer.Option(None, help="cpu, cuda or auto. (default: cpu)"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
):
    """Neural style transfer (Gatys et al.): CONTENT painted in the style of STYLE with VGG19."""
    from .style_transfer import (CONTENT, RANDOM, STYLE, TOTAL, TV, StyleTransferConfig,
                                 load_image, save_image)
    from .style_transfer import stylize as run_stylize

    if out.suffix.lower() not in IMAGE_SUFFIXES:
        raise GankitError(f"--out {out}: use a picture name ending in .png, .jpg or .webp")
    if random_weights and weights is not None:
        raise GankitError("--weights and --random-weights exclude each other: give one")
    given = {"size": size, "steps": steps, "style_weight": style_weight,
             "content_weight": content_weight, "tv_weight": tv_weight, "optimizer": optimizer,
             "lr": lr, "init": init, "pooling": pooling, "seed": seed, "device": device,
             "weights": RANDOM if random_weights else (str(weights) if weights else None)}
    # Options left out keep StyleTransferConfig's defaults: one source of truth.
    config = StyleTransferConfig(progress=progress,
                                 **{k: v for k, v in given.items() if v is not None})
    config.validate()  # before the images and the network are loaded
    content_image, style_image = load_image(content), load_image(style)
    result = run_stylize(content_image, style_image, config)
    save_image(result.image, out)
    final = result.final
    typer.echo(f"features: {result.extractor}")
    typer.echo(f"final losses: content {final[CONTENT]:.4g}, style {final[STYLE]:.4g}, "
               f"tv {final[TV]:.4g}, weighted total {final[TOTAL]:.4g} "
               f"({config.steps} {config.optimizer} steps, {result.seconds:.1f} s)")
    height, width = result.image.shape[-2:]
    typer.echo(f"wrote a {width}x{height} image to {out}")


@app.command("list")
def list_registered(
    section: Optional[str] = typer.Argument(None, help="Only this: recipes, losses, penalties, updates, augpipes, augment-ops, datasets, features or presets."),
):
    """List the registered recipes, losses, penalties, update strategies, augmentation pipelines
    and ops, datasets, feature extractors and the bundled presets."""
    from .augment import OP_NAMES, PIPE_NAMES
    from .config import preset_names
    from .data import DATASETS
    from .losses import LOSSES, PENALTIES
    from .metrics import FEATURE_EXTRACTORS
    from .training.updates import UPDATES
    from .variants import RECIPES

    sections = {"recipes": RECIPES.names(), "losses": LOSSES.names(), "penalties": PENALTIES.names(),
                "updates": UPDATES.names(), "augpipes": list(PIPE_NAMES), "augment-ops": list(OP_NAMES),
                "datasets": DATASETS.names(),
                "features": FEATURE_EXTRACTORS.names(), "presets": preset_names()}
    if section is not None and section not in sections:
        raise GankitError(f"nothing to list as {section!r}: use one of {', '.join(sections)}")
    for title, names in sections.items():
        if section in (None, title):
            label = {"presets": "presets (--config NAME)", "augpipes": "augpipes (--augpipe)",
                     "augment-ops": "augment-ops (--set augment.ops.NAME=multiplier)"}.get(title, title)
            typer.echo(f"{label}: {', '.join(names)}")


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> None:
    # Click handles its own usage errors (one "Error: ..." line after the usage); ours are
    # GankitError, which carries the fix and must never show a traceback.
    warnings.formatwarning = _one_line_warning
    try:
        app(args=argv, prog_name="gankit")
    except GankitError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(getattr(err, "exit_code", 2))
    except OSError as err:  # a full disk, a read-only or missing folder: the OS says which
        where = f" {err.filename}" if err.filename else ""
        typer.echo(f"error: cannot access{where} ({err.strerror or err}): check the path and "
                   "its permissions, and the free disk space", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
