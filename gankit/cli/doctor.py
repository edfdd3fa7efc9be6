"""gankit doctor: versions, GPUs, CPU, where weights and caches are, and what is missing (gankit/doctor.py)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..config import TrainConfig
from .app import app


@app.command("doctor")
def doctor(
    runs_dir: Path = typer.Option(Path(TrainConfig.runs_dir), help="The runs folder to check for write access (gankit train's --runs-dir)."),
    json_: bool = typer.Option(False, "--json", help="Print the facts and checks as one JSON object."),
):
    """Check this machine for gankit: torch, CUDA devices (bf16/fp16), MPS, the CPU's vector
    extensions, torch.distributed backends, weights and cache folders (write access, known files)
    and the optional extras. Exit code 1 only when no run can work (torch does not import, the runs
    folder is not writable)."""
    from ..doctor import format_lines, report

    result = report(runs_dir)
    typer.echo(json.dumps(result, indent=2) if json_ else "\n".join(format_lines(result)))
    if not result["ok"]:
        raise typer.Exit(1)
