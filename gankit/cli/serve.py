"""gankit serve: a local web page to play with a trained model."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app


@app.command()
def serve(
    source: Path = typer.Argument(..., help="A run folder, a checkpoint or a pretrained name (`gankit pretrained list`)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on: 127.0.0.1 keeps the page on this machine; 0.0.0.0 opens it to the network."),
    port: int = typer.Option(7860, help="Port of the page."),
):
    """A web page to draw samples, interpolate, mix styles or translate uploads with a trained model."""
    from ..serve import serve as run_page

    typer.echo(f"serving {source} on http://{host}:{port} (Ctrl-C stops it)")
    run_page(str(source), host=host, port=port)
