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
    latents: list[Path] = typer.Option([], "--latents", help="Draw these latents instead of random ones: .npz files that `gankit project` or `gankit edit --save-latent` wrote (repeatable; a projected photo is drawn with its own noise maps)."),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
):
    """Generate images with the EMA generator of a checkpoint."""
    from ..api import load_generator
    from ..visualize import save_folder, save_grid, save_npz

    if n < 1:
        raise GankitError(f"--n {n}: ask for at least one image")
    generator = load_generator(checkpoint, device=device)
    nrow = None
    if latents:
        from ..latent import render_files

        if by_class or label is not None:
            raise GankitError("--latents draws the files' own latents (and classes): drop --by-class and --label")
        images = render_files(generator.module, latents, truncation)
        n = len(images)
    elif by_class:
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


FRAME_SIZE_HELP = ("Pixels of each frame's longer side, at least 16: small images are scaled up nearest-neighbour "
                   "so their pixels stay crisp. [default: the images' own size; .mp4: a whole multiple of it, "
                   "at least 256]")


def _frame_rate(fps: Optional[float], duration: Optional[int], default: float) -> float:
    """--fps, or the older --duration (milliseconds per frame) where that is what was given."""
    if duration is None:
        return default if fps is None else fps
    if fps is not None:
        raise GankitError(f"--fps {fps} and --duration {duration} both set the speed: give only --fps")
    if duration < 1:
        raise GankitError(f"--duration {duration}: use at least 1 millisecond per frame")
    return 1000 / duration


@app.command()
def interpolate(
    checkpoint: Path = typer.Argument(..., help="A checkpoint file, a run folder (its latest checkpoint), or a pretrained name (`gankit pretrained list`)."),
    out: Path = typer.Option(..., help="x.gif: a looping animation; x.mp4: an H.264 video; x.png: a grid, one row per keyframe; a folder: one PNG per frame."),
    keyframes: int = typer.Option(4, help="Random latents the walk passes through (at least 2); it ends where it started."),
    frames: int = typer.Option(16, help="Frames from one keyframe to the next."),
    seed: int = typer.Option(0, help="Seed of the keyframe latents."),
    space: str = typer.Option("auto", help="z: slerp between Gaussian latents (any model); w: lerp between mapped styles (StyleGAN-style); auto: w where there is one."),
    truncation: float = typer.Option(1.0, help=TRUNCATION_HELP),
    label: Optional[str] = typer.Option(None, help="Conditional GANs: the class the walk stays in, by index or name (default: class 0)."),
    fps: Optional[float] = typer.Option(None, help="Frames per second of the .gif or .mp4. [default: 12]"),
    frame_size: Optional[int] = typer.Option(None, help=FRAME_SIZE_HELP),
    duration: Optional[int] = typer.Option(None, hidden=True, help="Milliseconds per frame: the older way to say --fps."),
    through: list[Path] = typer.Option([], "--through", help="Walk through these latents instead of random ones, in order: .npz files that `gankit project` wrote, e.g. of two photos (repeatable; G's own noise maps are used)."),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
):
    """A looping walk through latent space, as a GIF, an MP4 video, a grid or frames."""
    from ..api import load_generator
    from ..visualize import check_animation_output, save_animation

    fps = _frame_rate(fps, duration, default=12.0)
    check_animation_output(out, fps, frame_size)
    generator = load_generator(checkpoint, device=device)
    if through:
        from ..latent import walk_through_files

        images = walk_through_files(generator.module, through, frames)
        keyframes = len(images) // frames
    else:
        images = generator.interpolate(keyframes, frames, seed=seed, space=space, truncation=truncation,
                                       label=label)
    save_animation(images, out, fps, frame_size=frame_size, nrow=frames)
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
    row_latents: list[Path] = typer.Option([], "--row-latents", help="Row sources from files instead of random ones: .npz latents that `gankit project` or `gankit edit --save-latent` wrote (repeatable; replaces --rows)."),
    col_latents: list[Path] = typer.Option([], "--col-latents", help="Column sources from files, as --row-latents (replaces --cols): e.g. one photo's coarse styles with another's fine ones."),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
):
    """A style-mixing grid: each cell has its row's coarse styles and its column's fine styles."""
    from ..api import load_generator
    from ..visualize import save_grid

    if out.suffix.lower() not in IMAGE_SUFFIXES:
        raise GankitError(f"--out {out}: use a picture name ending in .png, .jpg or .webp")
    generator = load_generator(checkpoint, device=device)
    row_ws, col_ws = generator.style_ws(row_latents), generator.style_ws(col_latents)
    rows = len(row_ws) if row_ws is not None else rows  # the files set the grid's size
    cols = len(col_ws) if col_ws is not None else cols
    images = generator.style_mix(rows, cols, seed=seed, crossover=crossover, truncation=truncation,
                                 label=label, row_latents=row_ws, col_latents=col_ws)
    save_grid(images, out, nrow=cols + 1)
    typer.echo(f"wrote a {rows} x {cols} style-mixing grid from step {generator.step} to {out}")


@app.command()
def progress(
    run: Path = typer.Argument(..., help="A training run folder (its samples/ grids)."),
    out: Path = typer.Option(Path("progress.gif"), help="The animation: x.gif, or x.mp4 (H.264 video)."),
    every: int = typer.Option(1, help="Use every Nth grid (the last one always)."),
    fps: Optional[float] = typer.Option(None, help="Frames (grids) per second. [default: 5]"),
    frame_size: Optional[int] = typer.Option(None, help=FRAME_SIZE_HELP.replace("each frame's", "each grid's")),
    duration: Optional[int] = typer.Option(None, hidden=True, help="Milliseconds per frame: the older way to say --fps."),
    label_steps: bool = typer.Option(True, "--label-steps/--no-label-steps", help="Write the step under each frame."),
):
    """A GIF or MP4 of the fixed-latent sample grids saved during training: G learning, frame by frame."""
    from ..visualize import check_animation_output, progress_animation

    fps = _frame_rate(fps, duration, default=5.0)
    check_animation_output(out, fps, frame_size, kinds=("gif", "mp4"))
    steps = progress_animation(run, out, every=every, fps=fps, frame_size=frame_size, label_steps=label_steps)
    typer.echo(f"wrote {len(steps)} frames (steps {steps[0]} to {steps[-1]}) to {out}")
