"""gankit stylize: neural style transfer (Gatys et al.)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import GankitError
from .app import DEVICE_HELP, IMAGE_SUFFIXES, app


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
    dry_run: bool = typer.Option(False, "--dry-run", help="Check the options, both pictures and where the VGG19 weights are; print the plan; optimise nothing, download nothing, write nothing."),
):
    """Neural style transfer (Gatys et al.): CONTENT painted in the style of STYLE with VGG19."""
    from ..style_transfer import (CONTENT, RANDOM, STYLE, TOTAL, TV, StyleTransferConfig,
                                 load_image, save_image)
    from ..style_transfer import stylize as run_stylize

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
    if dry_run:
        _print_plan(config, content_image, style_image, out)
        return
    result = run_stylize(content_image, style_image, config)
    save_image(result.image, out)
    final = result.final
    typer.echo(f"features: {result.extractor}")
    typer.echo(f"final losses: content {final[CONTENT]:.4g}, style {final[STYLE]:.4g}, "
               f"tv {final[TV]:.4g}, weighted total {final[TOTAL]:.4g} "
               f"({config.steps} {config.optimizer} steps, {result.seconds:.1f} s)")
    height, width = result.image.shape[-2:]
    typer.echo(f"wrote a {width}x{height} image to {out}")


def _print_plan(config, content_image, style_image, out: Path) -> None:
    """What a real run would do: the resolved options, the pictures' sizes, where the weights
    come from (or that they would be downloaded), where the result goes."""
    import dataclasses

    import yaml

    from ..style_transfer import RANDOM, VGG19_URL, find_vgg19_weights, vgg19_weights_on_disk
    from ..weights import network_reachable

    width, height = content_image.size
    scale = config.size / min(width, height)  # the shorter side becomes --size; the aspect ratio is kept
    typer.echo(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False).rstrip())
    typer.echo(f"content: {width}x{height} -> {round(width * scale)}x{round(height * scale)}; "
               f"style: {style_image.size[0]}x{style_image.size[1]}")
    if config.weights == RANDOM:
        typer.echo("features: a seeded random VGG19 (not real style transfer)")
    else:
        found = vgg19_weights_on_disk(config.weights)
        if found is None and not network_reachable(VGG19_URL):
            find_vgg19_weights(config.weights)  # offline without them: the real run's one-line error
        typer.echo(f"features: VGG19 ImageNet weights from {found}" if found else
                   f"features: the VGG19 ImageNet weights are not on this machine; a real run downloads "
                   f"them from {VGG19_URL} (or pass --weights PATH)")
    typer.echo(f"# dry run: would write {out}; nothing optimised, nothing written")
