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
    metrics: str = typer.Option("kid,fid", help="Comma-separated: kid, fid, pr (precision and recall: fidelity and diversity), dc (density and coverage: the same, robust to outliers), ppl (perceptual path length: how smoothly images change along latent paths; needs no real images)."),
    features: Optional[str] = typer.Option(None, help="Feature extractor: mnist, inception, inception75 or a registered name. [default: mnist for digit data, else inception]"),
    n: int = typer.Option(2000, help="Generated images (and at most this many real ones); KID uses subsets of 1000. For ppl: pairs of latents (the references use 100,000 and 50,000; 2000 gives a rough value)."),
    data: Optional[str] = typer.Option(None, help="Real images to compare with. [default: the run's training data]"),
    inception_weights: Optional[Path] = typer.Option(None, help="Local FID Inception weights file."),
    seed: int = typer.Option(0, help="Seed of the generated latents."),
    pr_k: int = typer.Option(3, help="k of precision and recall: each sample's ball reaches its k-th nearest neighbour (torch-fidelity's and the paper's 3)."),
    dc_k: int = typer.Option(5, help="k of density and coverage's balls (Naeem et al.'s 5)."),
    ppl_space: str = typer.Option("auto", help="ppl's paths: w (lerp of mapped latents; StyleGAN-style generators), z (slerp of latents; any generator) or auto (w where there is one)."),
    ppl_sampling: str = typer.Option("end", help="ppl's step along each path: end (at its start, t = 0) or full (anywhere, t ~ U(0, 1))."),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
):
    """Score a checkpoint's EMA generator with KID, FID, precision/recall and/or density/coverage
    against real images, and/or with its perceptual path length."""
    import json

    from ..api import evaluate_checkpoint
    from ..metrics import (COVERAGE, DC_K, DENSITY, PPL, PPL_PAIRS, PPL_SAMPLING, PPL_SPACE, PR_K,
                           PRECISION, RECALL)

    result = evaluate_checkpoint(checkpoint, metrics.split(","), features=features, n=n, data=data,
                                 inception_weights=inception_weights, seed=seed, device=device,
                                 progress=progress, pr_k=pr_k, dc_k=dc_k, ppl_space=ppl_space,
                                 ppl_sampling=ppl_sampling)
    k_of = {PRECISION: result.get(PR_K), RECALL: result.get(PR_K), DENSITY: result.get(DC_K),
            COVERAGE: result.get(DC_K)}
    scores = {key: value for key, value in result.items()
              if key not in ("checkpoint", "step", "features", "data", PR_K, DC_K, PPL_SPACE,
                             PPL_SAMPLING)}
    with_k = PR_K in result or DC_K in result
    typer.echo(f"{'metric':<10}{'value':>14}" + (f"{'k':>4}" if with_k else ""))
    for key, value in scores.items():
        k = f"{k_of[key]:>4}" if key in k_of else ""
        typer.echo(f"{key:<10}{value:>14.6g}{k}")
    if with_k:  # how to read them
        typer.echo("fidelity  (low: samples off the real data): precision, density (near 1 when "
                   "samples match the data)")
        typer.echo("diversity (low: real data never generated, e.g. dropped modes): recall, "
                   "coverage")
    if PPL in result:
        typer.echo(f"ppl: perceptual path length in {result[PPL_SPACE]} space, "
                   f"{result[PPL_SAMPLING]} sampling, mean of {result[PPL_PAIRS]} of {n} pairs "
                   "(1%/99% outliers dropped); lower: a smoother latent space")
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
