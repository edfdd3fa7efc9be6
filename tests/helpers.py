"""Helpers shared by the test modules (imported as `helpers`; fixtures live in conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from gankit.training import checkpoint as ckpt
from gankit.variants import get_recipe

TINY_DATA = {"source": "digits", "size": 16}  # scikit-learn's 8x8 digits at 16 px: loads in a blink


def tiny_options(runs_dir: Path, recipe: str = "dcgan", **overrides) -> dict:
    """Options for a seconds-fast run of `recipe`: its tiny nets on the 16 px digits, batches of
    8, no augmentation, quiet. A dict override merges into the section it names."""
    options = {"recipe": recipe, "data": dict(TINY_DATA), "model": dict(get_recipe(recipe).tiny),
               "batch": 8, "log_every": 1, "sample_every": 100, "checkpoint_every": 100,
               "progress": False, "grid_size": 4, "runs_dir": str(runs_dir), "augment": {"mode": "none"}}
    return with_overrides(options, **overrides)


def with_overrides(options: dict, **overrides) -> dict:
    """`options` with each override set; a dict override merges into the section it names."""
    options = dict(options)
    for key, value in overrides.items():
        options[key] = {**options[key], **value} if isinstance(value, dict) and isinstance(options.get(key), dict) else value
    return options


def run_cli(argv: list, capsys) -> tuple[int, str, str]:
    """Run the command line in-process: (exit code, stdout, stderr). Paths and numbers in `argv`
    are passed as text, as a shell would."""
    from gankit.cli import main

    try:
        main([str(arg) for arg in argv])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str) -> str:
    """A failed command's stderr must be exactly one line (no traceback): return it."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code != 0
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def assert_same_tensors(a, b, where: str = "") -> None:
    """Nested dicts / lists of tensors and numbers are equal, bit for bit."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"tensors differ at {where}"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_tensors(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tensors(x, y, f"{where}/{i}")
    else:
        assert a == b, f"{where}: {a} != {b}"


def metrics_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def final_state(result) -> dict:
    return ckpt.load_checkpoint(result.run_dir)
