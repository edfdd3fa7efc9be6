"""gankit sample | interpolate | mix | progress: use a trained generator."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import GankitError
from .app import DEVICE_HELP, IMAGE_SUFFIXES, app


TRUNCATION_HELP = ("Truncation psi, StyleGAN-style generators only: w is pulled towards its average, "
                   "w_avg + psi (w - w_avg); 1: off, 0.5-0.8: less variety, cleaner images; -1 to 2.")


@app.command()
def sample(
    checkpoint: Path = typer.Argument(..., help="A checkpoint file, a run folder (its latest checkpoint), or a pretrained name (`gankit pretrained list`)."),
    n: int = typer.Option(64, help="Number of images."),
    out: Path = typer.Option(..., help="x.png: one grid; x.npz: uint8 array `images` (N, H, W, C); a folder: one PNG each."),
    seed: int = typer.Option(0, help="Seed of the latents: the same seed gives the same images."),
    label: Optional[str] = typer.Option(None, help="Conditional GANs: the class to generate, by index or name. [default: random classes]"),
    by_class: bool = typer.Option(False, "--by-class", help="Conditional GANs: one row per class from shared latents (n per row)."),
    truncation: float = typer.Option(1.0, help=TRUNCATION_HELP),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
):
    """Generate images with the EMA generator of a checkpoint."""
    from ..api import load_generator
    from ..visualize import save_folder, save_grid, save_npz

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
    checkpoint: Path = typer.Argument(..., help="A checkpoint file, a run folder (its latest checkpoint), or a pretrained name (`gankit pretrained list`)."),
    out: Path = typer.Option(..., help="x.gif: a looping animation; x.png: a grid, one row per keyframe; a folder: one PNG per frame."),
    keyframes: int = typer.Option(4, help="Random latents the walk passes through (at least 2); it ends where it started."),
    frames: int = typer.Option(16, help="Frames from one keyframe to the next."),
    seed: int = typer.Option(0, help="Seed of the keyframe latents."),
    space: str = typer.Option("auto", help="z: slerp between Gaussian latents (any model); w: lerp between mapped styles (StyleGAN-style); auto: w where there is one."),
    truncation: float = typer.Option(1.0, help=TRUNCATION_HELP),
    label: Optional[str] = typer.Option(None, help="Conditional GANs: the class the walk stays in, by index or name (default: class 0)."),
    duration: int = typer.Option(80, help="GIF: milliseconds per frame."),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
):
    """A looping walk through latent space, as a GIF, a grid or frames."""
    from ..api import load_generator
    from ..visualize import save_folder, save_gif, save_grid

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
    checkpoint: Path = typer.Argument(..., help="A checkpoint file, a run folder (its latest checkpoint) or a pretrained name; a StyleGAN-style generator."),
    out: Path = typer.Option(..., help="The grid picture: .png, .jpg or .webp."),
    rows: int = typer.Option(4, help="Row sources: their coarse styles (pose, shape) go across their row."),
    cols: int = typer.Option(4, help="Column sources: their fine styles (colour, texture) go down their column."),
    crossover: Optional[int] = typer.Option(None, help="Style layers taken from the row source (0 = coarsest); the rest come from the column (default: half of them)."),
    seed: int = typer.Option(0, help="Seed of the source latents."),
    truncation: float = typer.Option(1.0, help=TRUNCATION_HELP),
    label: Optional[str] = typer.Option(None, help="Conditional GANs: the class of every source, by index or name (default: class 0)."),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
):
    """A style-mixing grid: each cell has its row's coarse styles and its column's fine styles."""
    from ..api import load_generator
    from ..visualize import save_grid

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
    from ..visualize import progress_gif

    if out.suffix.lower() != ".gif":
        raise GankitError(f"--out {out}: use a file name ending in .gif")
    if duration < 1:
        raise GankitError(f"--duration {duration}: use at least 1 millisecond per frame")
    steps = progress_gif(run, out, every=every, duration=duration, label_steps=label_steps)
    typer.echo(f"wrote {len(steps)} frames (steps {steps[0]} to {steps[-1]}) to {out}")
