"""What the seed-grid benchmarks (ada.py, transfer.py) share: one JSON per arm and seed, and the
table cells that summarise an arm's seeds.

Scripts in benchmarks/ run as `python benchmarks/X.py`, so this folder is on sys.path and they
import this module as `grid`.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path


def result_path(out: Path, arm: str, seed: int) -> Path:
    return Path(out) / f"{arm}-seed{seed}.json"


def load_results(out: Path, order: list[str] | None = None) -> dict[str, list[dict]]:
    """{arm: its runs' results, by seed}, arms in `order` (default: as found) and only those."""
    by_arm: dict[str, list[dict]] = {}
    for path in sorted(Path(out).glob("*-seed*.json")):
        r = json.loads(path.read_text())
        by_arm.setdefault(r["arm"], []).append(r)
    return {arm: by_arm[arm] for arm in (order or list(by_arm)) if arm in by_arm}


def per_seed(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def spread(values: list[float]) -> str:
    """mean ± sample standard deviation (just the value for one seed)."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def ratio(values: list[float], baseline: float | None) -> str:
    """The median of `values` as a multiple of the baseline arm's median ("-" without one)."""
    return f"{statistics.median(values) / baseline:.2f}" if baseline else "-"
