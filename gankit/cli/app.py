"""The typer application every command module adds to, and the entry point."""

from __future__ import annotations

import sys
import warnings

import typer

from ..errors import GankitError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # plain help text: rich markup would swallow the "[default: ...]" our help strings carry
    rich_markup_mode=None,
    help="Train, evaluate and use GANs on your own images.",
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
DEVICE_HELP = "cpu, cuda or auto."


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> None:
    # Click handles its own usage errors (one "Error: ..." line after the usage); ours are
    # GankitError, which carries the fix and must never show a traceback.
    warnings.formatwarning = _one_line_warning
    try:
        app(args=argv, prog_name="gankit")
    except GankitError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(getattr(err, "exit_code", 2))
    except OSError as err:  # a full disk, a read-only or missing folder: the OS says which
        where = f" {err.filename}" if err.filename else ""
        typer.echo(f"error: cannot access{where} ({err.strerror or err}): check the path and "
                   "its permissions, and the free disk space", err=True)
        sys.exit(2)
