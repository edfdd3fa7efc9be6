"""gankit project | directions | edit: put real images into a generator's latent space, find
editing directions in a style generator's w space, and move latents along one."""

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
def project(
    checkpoint: Path = typer.Argument(..., help="A checkpoint, a run folder or a pretrained name."),
    images: list[Path] = typer.Argument(..., help="Image files, prepared as the run's data (crop, size, channels)."),
    out: Path = typer.Option(..., help="A folder for each image's latent (.npz), its reconstruction beside it (.png) and the search (--video)."),
    steps: int = typer.Option(1000, help="Optimisation steps per image (StyleGAN2-ADA's projector: 1000)."),
    distance: str = typer.Option("auto", help="vgg (LPIPS-style VGG19 features; needs the VGG19 weights), features (pixels plus --features), or auto (vgg where its weights are found)."),
    features: Optional[str] = typer.Option(None, help="With the pixel distance: also a registered feature extractor's (e.g. mnist). [default: mnist for digit data]"),
    label: Optional[str] = typer.Option(None, help="Conditional GANs: the class of the images, by index or name."),
    video: str = typer.Option(".gif", help="The search as .gif, .mp4, or none."),
    seed: int = typer.Option(0, help="Seed of the search's noise."),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
):
    """Find the latent whose image matches each photo (w for StyleGAN-style generators, z otherwise)."""
    import numpy as np
    import torch

    from ..api import load_generator
    from ..latent import is_style_generator
    from ..metrics import default_features
    from ..projection import load_targets, project as run_projection
    from ..visualize import save_animation, save_grid

    if out.exists() and not out.is_dir():
        raise GankitError(f"--out {out} is a file: name a folder")
    if not out.parent.is_dir():
        raise GankitError(f"--out {out}: the folder {out.parent} does not exist; create it first")
    if video not in (".gif", ".mp4", "none"):
        raise GankitError(f"--video {video}: use .gif, .mp4 or none")
    generator = load_generator(checkpoint, device=device)
    data = generator.config.data
    targets = load_targets(images, data)  # every image read before the slow work starts
    if distance != "vgg" and features is None and data.source in ("mnist5k", "digits", "mnist", "fashion-mnist"):
        features = default_features(data.source)
    index = generator._label(label)
    labels = None if index is None else torch.full((len(targets),), index, dtype=torch.long)
    bar = None
    if progress:
        from tqdm import tqdm

        one_by_one = is_style_generator(generator.module)  # w: each image alone; z: all together
        bar = tqdm(total=steps * (len(targets) if one_by_one else 1), desc="projecting", unit="step", leave=False)
    result = run_projection(generator.module, targets, steps=steps, distance=distance, features=features,
                            labels=labels, seed=seed,
                            progress=(lambda step, total, d: bar.update(1)) if bar is not None else None)
    if bar is not None:
        bar.close()
    out.mkdir(exist_ok=True)
    for i, path in enumerate(images):
        stem = out / path.stem
        arrays = {("ws" if result.space == "w" else "z"): result.latents[i:i + 1].numpy()}
        if labels is not None:
            arrays["labels"] = labels[i:i + 1].numpy()
        if result.noise:
            arrays.update({k: v.numpy() for k, v in result.noise[i].items()})
        np.savez(f"{stem}.npz", **arrays)
        save_grid(torch.stack([targets[i], result.images[i]]), f"{stem}-compare.png", nrow=2)
        if video != "none":
            frames = torch.cat([targets[i].expand(len(result.trajectory), -1, -1, -1).unsqueeze(1),
                                result.trajectory[:, i:i + 1]], 1)  # (frames, 2, C, H, W)
            side_by_side = torch.cat([frames[:, 0], frames[:, 1]], dim=3)  # target | search
            save_animation(side_by_side, Path(f"{stem}-projection{video}"), fps=10)
        final = result.losses[i][-1]
        typer.echo(f"{path.name}: {result.space} latent in {stem}.npz, distance {final:.4g} ({result.distance})")
    typer.echo(f"projected {len(images)} image{'s' if len(images) > 1 else ''} into step {generator.step}'s "
               f"generator; reconstructions beside the targets in {out}")


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
