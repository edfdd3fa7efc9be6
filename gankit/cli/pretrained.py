"""gankit pretrained list | get: the registered pretrained generators (gankit/pretrained.py)."""

from __future__ import annotations

import typer

from .app import app

pretrained_app = typer.Typer(no_args_is_help=True, help="Pretrained generators: list them, or get one's file.")
app.add_typer(pretrained_app, name="pretrained")


@pretrained_app.command("list")
def pretrained_list():
    """The registered models: recipe, data, size, budget, and where the file is on this machine."""
    from ..pretrained import PRETRAINED, where

    if not len(PRETRAINED):
        typer.echo("no pretrained models are registered yet: fine-tune from a run with --init-from RUN_FOLDER")
    for name in PRETRAINED.names():
        entry = PRETRAINED.get(name)
        path = where(entry)
        found = str(path) if path else ("not here: `gankit pretrained get` downloads it" if entry.url
                                         else f"not here: made by {entry.script}")
        typer.echo(f"{name}: {entry.recipe} on {entry.data}, {entry.size} px, {entry.budget}; {found}")


@pretrained_app.command("get")
def pretrained_get(name: str = typer.Argument(..., help="A name from `gankit pretrained list`.")):
    """Find the model's file (download it where a network answers), check its sha256, print its path."""
    from ..pretrained import find

    typer.echo(str(find(name)))
