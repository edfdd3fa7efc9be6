"""gankit directions | edit: find editing directions in a style generator's w space, and apply one."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import GankitError
from .app import DEVICE_HELP, IMAGE_SUFFIXES, app

AMOUNT_HELP = "How far to move, in standard deviations of the w the model draws along the direction."


def _picture(out: Path) -> None:
    if out.suffix.lower() not in IMAGE_SUFFIXES:
        raise GankitError(f"--out {out}: use a picture name ending in .png, .jpg or .webp")
    if not out.parent.is_dir():
        raise GankitError(f"--out {out}: the folder {out.parent} does not exist; create it first")


@app.command()
def directions(
    checkpoint: Path = typer.Argument(..., help="A checkpoint, a run folder or a pretrained name; a StyleGAN-style generator."),
    out: Path = typer.Option(Path("directions.png"), help="One strip per direction: the same image moved from -3 to +3."),
    method: str = typer.Option("sefa", help="sefa (closed-form, from the style weights: Shen & Zhou 2021) or ganspace (PCA of sampled w: Härkönen et al. 2020)."),
    k: int = typer.Option(5, help="How many directions, strongest first."),
    layers: str = typer.Option("all", help="The style layers they act on: all, coarse, middle, fine, a range 0-3 or a list 0,1,4 (0 = coarsest)."),
    n: int = typer.Option(10_000, help="Sampled latents: the scale of an amount (and GANSpace's data)."),
    save: Optional[Path] = typer.Option(None, help="Keep the directions in this .npz for `gankit edit`."),
    seed: int = typer.Option(0, help="Seed of the sampled latents and of the strips' image."),
    label: Optional[str] = typer.Option(None, help="Conditional GANs: the class, by index or name."),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
):
    """Editing directions found without labels, each shown as a strip of one image moved along it."""
    from ..api import load_generator
    from ..directions import direction_strips, find_directions
    from ..visualize import save_grid

    _picture(out)
    if save is not None and (save.suffix != ".npz" or not save.parent.is_dir()):
        raise GankitError(f"--save {save}: name an .npz file in an existing folder")
    generator = load_generator(checkpoint, device=device)
    index = generator._label(label)
    found = find_directions(generator.module, method, k=k, layers=layers, n=n, seed=seed, label=index)
    strips = direction_strips(generator.module, found, seed=seed, label=index)
    save_grid(strips, out, nrow=len(strips) // k)
    if save is not None:
        found.save(save)
    for i, (value, sigma) in enumerate(zip(found.values.tolist(), found.sigmas.tolist())):
        typer.echo(f"direction {i}: strength {value:.4g}, standard deviation of w along it {sigma:.4g}")
    typer.echo(f"wrote {k} {method} directions (style layers {found.layers[0]}-{found.layers[-1]}) to {out}"
               + (f" and {save}" if save is not None else ""))


@app.command()
def edit(
    checkpoint: Path = typer.Argument(..., help="A checkpoint, a run folder or a pretrained name; a StyleGAN-style generator."),
    directions_file: Path = typer.Option(..., "--directions", help="The .npz written by `gankit directions --save`."),
    direction: int = typer.Option(0, help="Which direction (0 = the strongest)."),
    amount: float = typer.Option(2.0, help=AMOUNT_HELP),
    out: Path = typer.Option(Path("edited.png"), help="Each latent before (left) and after (right) the edit."),
    n: int = typer.Option(4, help="Random latents to edit (without --latent)."),
    seed: int = typer.Option(0, help="Seed of the random latents."),
    latent: Optional[Path] = typer.Option(None, help="Latents to edit instead: an .npz with ws (B, num_ws, w_dim), w (B, w_dim) or z (B, latent_dim)."),
    save_latent: Optional[Path] = typer.Option(None, help="Keep the edited latents (ws) in this .npz."),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
):
    """Move latents along one editing direction and show them before and after."""
    import numpy as np
    import torch

    from ..api import load_generator
    from ..directions import Directions, edit_ws
    from ..latent import draw_latents, load_ws
    from ..visualize import save_grid, to_unit_range

    _picture(out)
    if save_latent is not None and (save_latent.suffix != ".npz" or not save_latent.parent.is_dir()):
        raise GankitError(f"--save-latent {save_latent}: name an .npz file in an existing folder")
    found = Directions.load(directions_file)
    generator = load_generator(checkpoint, device=device)
    G = generator.module
    if latent is not None:
        ws = load_ws(G, latent)
    else:
        z, labels = draw_latents(G.latent_dim, n, seed, G.num_classes)
        ws = load_ws(G, {"z": z.numpy(), **({"labels": labels.numpy()} if labels is not None else {})})
    edited = edit_ws(ws, found, direction, amount)
    with torch.no_grad():
        pairs = torch.stack([G.synthesis(ws.to(generator.device)), G.synthesis(edited.to(generator.device))], 1)
    save_grid(to_unit_range(pairs.flatten(0, 1), G.output_range).cpu(), out, nrow=2)
    if save_latent is not None:
        np.savez(save_latent, ws=edited.cpu().numpy())
    typer.echo(f"moved {len(ws)} latents {amount:g} standard deviations along {found.method} direction "
               f"{direction}; wrote {out}" + (f" and {save_latent}" if save_latent is not None else ""))
