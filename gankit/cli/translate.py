"""gankit translate train | apply: image-to-image translation (CycleGAN; pix2pix with --paired)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Optional

import typer

from ..errors import GankitError
from .app import DEVICE_HELP, app
from .options import command, parse_set, select

translate_app = typer.Typer(
    no_args_is_help=True,
    help="Image-to-image translation: train on two folders (CycleGAN, unpaired; pix2pix, --paired), apply to images.",
)
app.add_typer(translate_app, name="translate")


def domains(a: Optional[str], b: Optional[str], root: Optional[Path]) -> tuple[str, str]:
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


def pairs(a: Optional[str], b: Optional[str], root: Optional[Path]) -> tuple[str, Optional[str]]:
    """(inputs, targets or None) for pix2pix: a folder of side-by-side A|B files (or a dataset
    root holding train/, as the reference's facades), two folders of files with matching names,
    or a built-in pair."""
    if root is not None:
        if a or b:
            raise GankitError("give the pairs either as --a (and --b) or as --data ROOT, not both")
        return str(root / "train" if (root / "train").is_dir() else root), None
    if not a:
        raise GankitError("give the pairs: --a FOLDER of side-by-side A|B images, --a INPUTS --b "
                          "TARGETS (files with the same names), or a built-in such as --a mnist5k-edges")
    return a, b


def translate_train(given: dict, a: Optional[str] = None, b: Optional[str] = None, data: Optional[Path] = None,
                    paired: bool = False, tiny: bool = False, set_: list[str] = (), resume: Optional[Path] = None,
                    dry_run: bool = False):
    """Train a CycleGAN on two unpaired folders of images (trainA/, trainB/), or with --paired a
    pix2pix on aligned pairs."""
    from ..api import train as run_training
    from ..config import merge
    from ..variants import get_recipe

    if dry_run and resume is not None:
        raise GankitError("--dry-run checks a new run: drop --resume (a resumed run's config is its own)")
    options = given
    if resume is None:
        recipe = "pix2pix" if paired else "cyclegan"
        source_a, source_b = pairs(a, b, data) if paired else domains(a, b, data)
        options = merge({"recipe": recipe, "data": {"source": source_a, "source_b": source_b}}, options)
        if tiny:
            options["model"] = dict(get_recipe(recipe).tiny)
    elif any(v is not None for v in (a, b, data)) or tiny or paired or any(key in given for key in ("data", "optim")):
        raise GankitError("--resume continues a run with its own data, size and schedule: give only "
                          "--steps, --epochs or --time-budget (and logging options)")
    if dry_run:
        from .train import print_plan

        return print_plan(merge(options, parse_set(list(set_))))
    result = run_training(merge(options, parse_set(list(set_))), resume=resume)
    typer.echo(f"trained {result.step} steps ({result.images_seen} {'pairs' if paired else 'images of each domain'}); "
               f"run folder: {result.run_dir}")
    typer.echo(f"latest checkpoint: {result.checkpoint}")


def _keyword(name: str, annotation, option) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=option)


TRAIN_FIELDS = ["data.size", "data.channels", "data.mirror", "steps", "epochs", "time_budget", "optim.decay",
                "batch", "seed", "name", "runs_dir", "sample_every", "checkpoint_every", "device", "progress"]
OWN = [
    _keyword("a", Optional[str], typer.Option(None, "--a", help="Domain A: a folder of images, or a built-in (mnist5k-a, digits-a). With --paired: the inputs, or a folder of side-by-side A|B images, or a built-in pair (mnist5k-edges, mnist5k-masked, digits-edges, digits-masked).")),
    _keyword("b", Optional[str], typer.Option(None, "--b", help="Domain B: a folder of images, or a built-in (mnist5k-b, digits-b: A's other half, inverted). With --paired: the targets, files named as the inputs.")),
    _keyword("data", Optional[Path], typer.Option(None, help="A dataset root holding trainA/ and trainB/ (with --paired: train/ of side-by-side A|B images), instead of --a and --b.")),
    _keyword("paired", bool, typer.Option(False, "--paired", help="Train pix2pix on aligned pairs (input, target) instead of CycleGAN on unpaired domains.")),
    _keyword("tiny", bool, typer.Option(False, "--tiny", help="Tiny networks that train in seconds: a smoke test of the whole path.")),
    _keyword("set_", list[str], typer.Option([], "--set", help="Any config field: --set model.cycle_weight=5, --set data.jitter=0 (no 286 -> 256 style crops) (repeatable).")),
    _keyword("resume", Optional[Path], typer.Option(None, help="Continue the run in this folder (or from this checkpoint); it keeps its epoch count and learning-rate schedule.")),
    _keyword("dry_run", bool, typer.Option(False, "--dry-run", help="Check everything and print the resolved config and the nets' sizes; train nothing, write nothing.")),
]
translate_app.command("train")(command(translate_train, select(TRAIN_FIELDS, recipes=("cyclegan", "pix2pix")), OWN))


@translate_app.command("apply")
def translate_apply(
    checkpoint: Path = typer.Argument(..., help="A checkpoint of `gankit translate train`, or its run folder."),
    input: Path = typer.Argument(..., help="An image file, or a folder of images (searched recursively)."),
    output: Path = typer.Argument(..., help="The translated image for a file; for a folder, a folder of PNGs with the same relative names."),
    direction: str = typer.Option("a2b", help="a2b: domain A to B (pix2pix: input to target); b2a: B to A (CycleGAN only)."),
    batch: int = typer.Option(16, help="Images per forward pass."),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
):
    """Translate an image, or a folder of images, with a trained translator.

    Images are cropped and resized to the training size, as in training."""
    from ..api import translate_folder

    result = translate_folder(checkpoint, input, output, direction, batch=batch, device=device)
    typer.echo(f"translated {len(result.translated)} image(s) {direction} with the model of step "
               f"{result.step} to {output}")
