"""Checkpoints: everything needed to continue a run, as tensors that load without running code.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts written by `torch.save` and
read back with `torch.load(weights_only=True)`, which refuses to unpickle code. Writes go to a
temporary file in the same folder and are moved into place with `os.replace` (atomic on POSIX),
so a kill during a save never leaves the latest checkpoint unreadable.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path

import torch

from ..errors import GankitError

FORMAT = "gankit-checkpoint"
VERSION = 1
CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^step-(\d+)\.pt$")


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"step-{step:08d}.pt"


def best_path(run_dir: Path) -> Path:
    """The checkpoint with the lowest evaluation KID so far (never pruned)."""
    return Path(run_dir) / CHECKPOINT_DIR / "best.pt"


def save_checkpoint(state: dict, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, "version": VERSION, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        if _disk_full(err, path.parent):
            need = _state_bytes(state)
            free = shutil.disk_usage(path.parent).free
            raise GankitError(f"no space left on the disk of {path.parent} to write {path.name} (it needs about "
                              f"{need / 2**20:.0f} MB, {free / 2**20:.0f} MB are free): free some space and "
                              "continue with --resume; the earlier checkpoints are intact") from None
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _disk_full(err: Exception, folder: Path) -> bool:
    """ENOSPC, also when torch hides it in a RuntimeError ("file write failed")."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    cause = err.__cause__ or err.__context__
    if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(err, RuntimeError) and "write" in str(err).lower() and shutil.disk_usage(folder).free < 2**20


def _state_bytes(state) -> int:
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(_state_bytes(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(_state_bytes(v) for v in state)
    return 0


_TEMPORARY = re.compile(r"^\..+\.tmp-(\d+)$")


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Delete the half-written temporaries (`.step-*.pt.tmp-PID`) of writers that are gone
    (killed during a save); those of a live process are left alone. The removed paths."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    removed = []
    for path in folder.iterdir() if folder.is_dir() else []:
        match = _TEMPORARY.match(path.name)
        if match and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def set_aside(paths: list[Path], why: str) -> list[Path]:
    """Move checkpoints out of a run's line (into checkpoints/<why>/), keeping them: a damaged one
    skipped on resume, or newer ones when an earlier checkpoint is continued. The new paths."""
    moved = []
    for path in paths:
        target = path.parent / why / path.name
        target.parent.mkdir(exist_ok=True)
        os.replace(path, target)
        moved.append(target)
    return moved


def step_of(path: Path) -> int:
    """The step in a checkpoint's name (step-00001000.pt -> 1000)."""
    return int(_NAME.match(Path(path).name).group(1))


def list_checkpoints(run_dir: Path) -> list[Path]:
    """A run's checkpoints, oldest first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run folder meaning its latest checkpoint."""
    path = Path(path)
    if path.is_dir():
        found = list_checkpoints(path)
        if not found:
            raise GankitError(
                f"{path} holds no checkpoint (expected {CHECKPOINT_DIR}/step-*.pt): "
                "give a run folder that has trained for at least one checkpoint, or a .pt file"
            )
        return found[-1]
    if not path.exists():
        raise GankitError(f"checkpoint {path} does not exist: give a run folder or a checkpoint file")
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    path = resolve_checkpoint(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated, not a torch file, or holds code (refused by weights_only)
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if len(reason) > 200:
            reason = reason[:200].rsplit(" ", 1)[0] + " …"
        raise GankitError(
            f"cannot read checkpoint {path} ({reason}): it is damaged or not a gankit "
            "checkpoint; resume the run folder (it falls back to the newest checkpoint that loads) "
            "or give an earlier checkpoint of the run"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise GankitError(
            f"{path} is not a gankit checkpoint: give a file written by `gankit train` "
            "(runs/NAME/checkpoints/step-*.pt) or its run folder"
        )
    if state.get("version", 0) > VERSION:
        raise GankitError(
            f"{path} was written by a newer gankit (format {state['version']}): upgrade gankit"
        )
    return state


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints."""
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)


def rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
