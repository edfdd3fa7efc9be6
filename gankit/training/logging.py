"""One `report(name, value)` call that any part of gankit can use; sinks are chosen at the edge.

Values reported between two `flush(step)` calls are averaged; the trainer flushes every
`log_every` steps to every sink (TensorBoard, a JSON-lines file, the progress bar). Reporting
with no active reporter is a no-op, so library code can report unconditionally.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Protocol

import torch

_active: "Reporter | None" = None


def report(name: str, value: float | torch.Tensor) -> None:
    if _active is not None:
        _active.add(name, value)


class Sink(Protocol):
    def write(self, step: int, scalars: dict[str, float]) -> None: ...

    def close(self) -> None: ...


class Reporter:
    def __init__(self, sinks: list[Sink]):
        self.sinks = sinks
        self._sums: dict[str, torch.Tensor | float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)
        self.last: dict[str, float] = {}

    def add(self, name: str, value: float | torch.Tensor) -> None:
        # Tensors stay tensors until flush: converting each step would force a device sync.
        if isinstance(value, torch.Tensor):
            value = value.detach().float()
        self._sums[name] = self._sums[name] + value
        self._counts[name] += 1

    def state_dict(self) -> dict:
        """What was reported since the last flush. A checkpoint carries it, so that a resumed run's
        next row averages the same steps (and holds the same KID) as an uninterrupted run's."""
        return {"sums": {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in self._sums.items()},
                "counts": dict(self._counts)}

    def load_state_dict(self, state: dict) -> None:
        self._sums.clear()
        self._counts.clear()
        self._sums.update(state.get("sums", {}))
        self._counts.update(state.get("counts", {}))

    def flush(self, step: int) -> dict[str, float]:
        scalars = {k: float(v) / self._counts[k] for k, v in self._sums.items()}
        self._sums.clear()
        self._counts.clear()
        if scalars:
            self.last.update(scalars)
            for sink in self.sinks:
                sink.write(step, scalars)
        return scalars

    def __enter__(self) -> "Reporter":
        global _active
        self._previous, _active = _active, self
        return self

    def __exit__(self, *exc) -> None:
        global _active
        _active = self._previous
        for sink in self.sinks:
            sink.close()


class JsonLinesSink:
    """metrics.jsonl: one JSON object per flush; easy to read back with pandas or jq.

    A resumed run drops the rows logged after `after_step`, the last row its checkpoint had
    flushed (later rows belong to steps about to be trained again, or are the part-interval row
    a run ends with), so the file never holds a step twice.
    """

    def __init__(self, path: Path, after_step: int | None = None):
        if after_step is not None and path.exists():
            kept = [line for line in path.read_text().splitlines() if _step_of(line, after_step + 1) <= after_step]
            # replaced in one step: a kill while the kept rows are written leaves the old file whole
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            tmp.write_text("".join(line + "\n" for line in kept))
            os.replace(tmp, path)
        self.file = open(path, "a", buffering=1)

    def write(self, step: int, scalars: dict[str, float]) -> None:
        row = {"step": step, "time": round(time.time(), 3)}
        row.update({k: (v if math.isfinite(v) else None) for k, v in scalars.items()})
        self.file.write(json.dumps(row) + "\n")

    def close(self) -> None:
        self.file.close()


def _step_of(line: str, unreadable: int) -> int:
    """A row's step; `unreadable` for a blank line or one cut short by a kill mid-write (only the
    last row can be: it belongs to steps the resumed run trains again, so it is dropped)."""
    try:
        return int(json.loads(line).get("step", 0)) if line.strip() else unreadable
    except (ValueError, AttributeError, TypeError):
        return unreadable


class TensorBoardSink:
    def __init__(self, log_dir: Path, after_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter  # slow import; only when logging

        # purge_step hides the events after the last row a resumed run's checkpoint had flushed
        self.writer = SummaryWriter(str(log_dir), purge_step=after_step + 1 if after_step is not None else None)

    def write(self, step: int, scalars: dict[str, float]) -> None:
        for name, value in scalars.items():
            self.writer.add_scalar(name, value, step)

    def close(self) -> None:
        self.writer.close()


class ProgressSink:
    """A tqdm bar over steps (or seconds, for a pure time budget) showing the latest scalars."""

    SHOWN = {"loss/d": "D", "loss/g": "G", "d/acc_real": "acc_r", "d/acc_fake": "acc_f",
             "speed/images_per_s": "img/s", "augment/p": "p", "metrics/kid": "kid"}

    def __init__(self, total: int, initial: int, unit: str, enabled: bool = True):
        from tqdm.auto import tqdm

        # Without a terminal (CI, nohup) redraw rarely so the log stays readable.
        interval = 0.5 if sys.stderr.isatty() else 30.0
        self.bar = tqdm(total=total, initial=initial, unit=unit, disable=not enabled,
                        dynamic_ncols=True, mininterval=interval, file=sys.stderr)
        self.unit = unit

    def advance_to(self, position: int) -> None:
        if position > self.bar.n:
            self.bar.update(position - self.bar.n)

    def write(self, step: int, scalars: dict[str, float]) -> None:
        shown = {label: scalars[key] for key, label in self.SHOWN.items() if key in scalars}
        shown.update({k.split("/")[-1]: v for k, v in scalars.items() if k.startswith("progress/")})
        self.bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items()}, refresh=False)

    def close(self) -> None:
        self.bar.close()
