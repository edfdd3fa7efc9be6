"""gankit export: a trained generator or translator as an ONNX or TorchScript file (gankit/export.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app


def _shape(spec: dict) -> str:
    return "(" + ", ".join("B" if d == "batch" else str(d) for d in spec["shape"]) + ")"


@app.command()
def export(
    run: Path = typer.Argument(..., help="A run folder (its latest checkpoint), a checkpoint file, or a pretrained name (`gankit pretrained list`)."),
    format_: str = typer.Option(..., "--format", help="onnx (needs `pip install \"gankit[export]\"`) or torchscript."),
    out: Path = typer.Option(..., help="The file to write: x.onnx for onnx; x.pt or x.ts for torchscript. Its folder must exist."),
    direction: Optional[str] = typer.Option(None, help="Translators only: a2b, or b2a for CycleGAN. [default: a2b]"),
):
    """Write the EMA generator as a file that runs without gankit: noise (or an image) in, an image in [0, 1] out."""
    from ..api import export as export_run

    done = export_run(run, format=format_, out=out, direction=direction)
    meta = done.metadata
    inputs = ", ".join(f"{spec['name']} {_shape(spec)}" for spec in meta["inputs"])
    output = meta["outputs"][0]
    opset = f", opset {meta['opset']}" if "opset" in meta else ""
    typer.echo(f"wrote {done.path} ({done.format}{opset}): {inputs} -> {output['name']} {_shape(output)} "
               f"in [0, 1]; {meta['recipe']}, step {meta['step']}")
