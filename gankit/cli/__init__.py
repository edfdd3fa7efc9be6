"""Command line: `gankit train | sample | eval | nearest | interpolate | mix | progress | project | directions | edit | export | serve |
translate train|apply | stylize | list | doctor`.

A thin layer over the Python API (gankit.api): each command parses its flags, calls the API
function that does the work, and prints what it did. Every user error ends as one line on stderr
(`error: ...` saying what to do) and exit code 2, never a traceback. `gankit train`'s flags are
made from the config's own fields (cli/options.py); `--set a.b=v` reaches any other field.
"""

from __future__ import annotations

from .app import app, main
# the commands, in the order `gankit --help` lists them
from . import train, generate, edit, translate, evaluate, stylize, pretrained, export, serve, listing, doctor  # noqa: F401,E402,I001
from .options import parse_set

_parse_set = parse_set  # the name tests and scripts of earlier versions import

__all__ = ["app", "main", "parse_set"]
