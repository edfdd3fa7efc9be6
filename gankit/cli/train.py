"""gankit train: a GAN on a folder or a built-in dataset.

Its flags are the config's own fields (config.option), made by cli/options.py; only the preset,
--set, --resume and --nproc are this command's.
"""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import GankitError
from .app import app
from .options import command, config_options, parse_set


def train(given: dict, config: Optional[str] = None, set_: list[str] = (), resume: Optional[Path] = None,
          nproc: Optional[int] = None, dry_run: bool = False):
    """Train a GAN (default: the keras-io GAN-ADA DCGAN on the built-in mnist5k digits)."""
    from ..training import distributed

    if dry_run:
        return _dry_run(given, config, set_, resume)
    if nproc is not None and nproc < 1:
        raise GankitError(f"--nproc {nproc}: use 1 or more processes")
    if nproc and nproc > 1 and not distributed.launched_by_torchrun():
        _relaunch_under_torchrun(nproc)
    from ..api import train as run_training
    from ..config import load_preset, merge

    options = merge(merge(load_preset(config) if config else {}, given), parse_set(list(set_)))
    try:
        result = run_training(options, resume=resume)
    finally:
        distributed.teardown()
    if distributed.rank() == 0 and int(os.environ.get("RANK", "0")) == 0:
        typer.echo(f"trained {result.step} steps ({result.images_seen} images); run folder: {result.run_dir}")
        typer.echo(f"latest checkpoint: {result.checkpoint}")


def _dry_run(given: dict, config: Optional[str], set_: list[str], resume: Optional[Path]) -> None:
    """Resolve and check everything, build the nets without memory, print the resolved config and
    the nets' sizes; train nothing, write nothing."""
    from ..config import load_preset, merge

    if resume is not None:
        raise GankitError("--dry-run checks a new run: drop --resume (a resumed run's config is its own)")
    options = merge(merge(load_preset(config) if config else {}, given), parse_set(list(set_)))
    print_plan(options)


def print_plan(options: dict) -> None:
    """A dry run's output: the resolved config as YAML, then one line with the nets' sizes."""
    import yaml

    from ..api import plan

    planned = plan(options)
    typer.echo(yaml.safe_dump(planned["config"], sort_keys=False).rstrip())
    sizes = ", ".join(f"{net} {n / 1e6:.2f} M parameters" for net, n in planned["parameters"].items())
    typer.echo(f"# dry run: {planned['recipe']} ({planned['task']}), {sizes}; nothing trained, nothing written")


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
    command_line = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                    "-m", "gankit", *args]
    os.execv(sys.executable, command_line)


def _keyword(name: str, annotation, option) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=option)


OWN = [
    _keyword("config", Optional[str], typer.Option(None, help="YAML preset applied before the other options: a file, or the name of a bundled preset (`gankit list presets`).")),
    _keyword("set_", list[str], typer.Option([], "--set", help="Any config field: --set optim.lr_g=1e-4 (repeatable).")),
    _keyword("resume", Optional[Path], typer.Option(None, help="Continue the run in this folder (or from this checkpoint).")),
    _keyword("nproc", Optional[int], typer.Option(None, help="Train in this many processes on this machine (one per GPU; CPU processes without): runs the command under torchrun. --batch is per process.")),
    _keyword("dry_run", bool, typer.Option(False, "--dry-run", help="Check everything and print the resolved config and the nets' sizes; train nothing, write nothing.")),
]

app.command("train")(command(train, list(config_options()), OWN))
