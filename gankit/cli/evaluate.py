"""gankit eval | nearest: score a trained generator, check it for copies."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import GankitError
from .app import DEVICE_HELP, IMAGE_SUFFIXES, app


@app.command("eval")
def evaluate(
    checkpoint: Path = typer.Argument(..., help="A checkpoint file, or a run folder (its latest checkpoint)."),
    metrics: str = typer.Option("kid,fid", help="Comma-separated: kid, fid."),
    features: Optional[str] = typer.Option(None, help="Feature extractor: mnist, inception, inception75 or a registered name. [default: mnist for digit data, else inception]"),
    n: int = typer.Option(2000, help="Generated images (and at most this many real ones); KID uses subsets of 1000."),
    data: Optional[str] = typer.Option(None, help="Real images to compare with. [default: the run's training data]"),
    inception_weights: Optional[Path] = typer.Option(None, help="Local FID Inception weights file."),
    seed: int = typer.Option(0, help="Seed of the generated latents."),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
):
    """Score a checkpoint's EMA generator with KID and/or FID against real images."""
    import json

    from ..api import evaluate_checkpoint

    result = evaluate_checkpoint(checkpoint, metrics.split(","), features=features, n=n, data=data,
                                 inception_weights=inception_weights, seed=seed, device=device,
                                 progress=progress)
    scores = {k: v for k, v in result.items() if k not in ("checkpoint", "step", "features", "data")}
    typer.echo(f"{'metric':<10}{'value':>14}")
    for key, value in scores.items():
        typer.echo(f"{key:<10}{value:>14.6g}")
    typer.echo(json.dumps(result))


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
    device: str = typer.Option("cpu", help=DEVICE_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
):
    """Memorisation check: the nearest training images of generated samples, by pixel L1 and by features."""
    import json

    from ..metrics.memorisation import (FLAGGED, MEDIAN_GENERATED, MEDIAN_TRAIN, RATIO, THRESHOLD,
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
