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


def train_and_score(run, real, samples_path: Path) -> tuple:
    """Train a built run, then score its EMA generator as every grid benchmark does: KID (mean and
    sd) on the digit features from 2000 samples (latent seed 1234) against `real`, and a grid of
    64 samples (latent seed 7) at `samples_path`. -> (TrainResult, seconds of training, scores)."""
    import time

    import torch

    from gankit.metrics import compute_metrics
    from gankit.visualize import save_grid, to_unit_range

    trainer = run.trainer
    start = time.perf_counter()
    result = run.train()
    seconds = time.perf_counter() - start
    G = trainer.ema.model
    latents = torch.Generator().manual_seed(1234)
    scores = compute_metrics(lambda k: to_unit_range(G(torch.randn(k, G.latent_dim, generator=latents)), G.output_range),
                             real, "mnist", n=2000, metrics=("kid",), progress=False)
    grid = to_unit_range(G(torch.randn(64, G.latent_dim, generator=torch.Generator().manual_seed(7))), G.output_range)
    save_grid(grid, samples_path)
    return result, seconds, scores
