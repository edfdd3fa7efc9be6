"""The Python API: everything the command line does, as functions.

    train(...)               a new run, or `resume=` a run folder          (gankit train)
    load_generator(run)      sample, interpolate, mix styles               (gankit sample, ...)
    load_translator(run)     translate images; translate_folder(...)       (gankit translate apply)
    evaluate_checkpoint(...) KID / FID of a run against real images        (gankit eval)
    export(run, format=, out=) an ONNX / TorchScript file of the generator (gankit export)


    from gankit import train, load_generator
    result = train(data={"source": "digits", "size": 32}, steps=200)
    G = load_generator(result.run_dir)
    images = G.sample(16)          # (16, C, H, W) floats in [0, 1]
"""

from __future__ import annotations

import dataclasses
import warnings

from pathlib import Path

from .config import TrainConfig, from_dict, merge, to_dict, upgrade_saved_config
from .errors import GankitError
from .export import Exported, export
from .generator import LoadedGenerator, load_generator
from .metrics.checkpoint import evaluate_checkpoint
from .resolve import complete_bounds, resolve_config, validate
from .run import build_run, write_run_config
from .training import checkpoint as ckpt
from .training import distributed
from .training.trainer import TrainResult
from .translator import Translator, load_translator, translate_folder

# Options that may change when a run is resumed: they bound or observe the run but do not change
# what one step computes. Anything else would silently make a different run.
RESUMABLE = {"steps", "epochs", "time_budget", "sample_every", "checkpoint_every",
             "keep_checkpoints", "log_every", "progress", "device", "guard_patience", "max_rollbacks",
             "runs_dir", "data.workers"}


def _fixed_part(section: str, values):
    """A section's options without those that may change on resume (`section.option` in RESUMABLE)."""
    if not isinstance(values, dict):
        return values
    return {k: v for k, v in values.items() if f"{section}.{k}" not in RESUMABLE}


def _absolute_paths(options: dict) -> dict:
    """`options` with its local paths made absolute. The run records its config (config.yaml and
    every checkpoint), and a relative folder would break `--resume` or `eval` started from another
    working directory. Built-in dataset names stay names."""
    from .data import DATASETS

    def absolute(value):
        if isinstance(value, str) and value and Path(value).expanduser().exists():
            return str(Path(value).expanduser().resolve())
        return value

    options = dict(options)
    if isinstance(options.get("data"), dict):
        data = options["data"] = dict(options["data"])
        for key in ("source", "source_b", "labels_csv", "bbox", "root"):
            if key in data and not (key.startswith("source") and data[key] in DATASETS):
                data[key] = absolute(data[key])
    if isinstance(options.get("eval"), dict) and "inception_weights" in options["eval"]:
        options["eval"] = {**options["eval"], "inception_weights": absolute(options["eval"]["inception_weights"])}
    return options


def train(config: TrainConfig | dict | None = None, *, resume: str | Path | None = None,
          **overrides) -> TrainResult:
    """Train a GAN. `config` (a TrainConfig or a dict of options) and keyword `overrides`
    (nested dicts for sections, e.g. `data={"source": "digits"}`) layer over the defaults.
    `resume` (a run folder or checkpoint) continues a run; only RESUMABLE options may change."""
    if isinstance(config, TrainConfig):
        config = to_dict(config)
    options = merge(config or {}, overrides)
    distributed.setup()  # under torchrun: join the process group (a no-op otherwise)
    if resume is not None:
        return _resume(resume, options)
    source = None
    if options.get("init_from"):  # fine-tuning: the source decides the nets
        from .transfer import resolve_init

        options, source = resolve_init(options)
    config = complete_bounds(resolve_config(_absolute_paths(options)))
    return build_run(config, init=source).train()


def plan(config: TrainConfig | dict | None = None, **overrides) -> dict:
    """What `train` would do, without doing it (`gankit train --dry-run`): the options resolved
    and checked as train checks them (a fine-tuning source is read), the nets built on the meta
    device and shaped by the data's channels and classes (read from file headers; eight images of
    a shipped built-in), nothing written. -> {"config": the resolved config as a dict,
    "parameters": {"G": n, "D": n}, "recipe", "task"}."""
    import torch

    from .tasks import task_of
    from .variants import get_recipe

    if isinstance(config, TrainConfig):
        config = to_dict(config)
    options = merge(config or {}, overrides)
    if options.get("init_from"):
        from .transfer import resolve_init

        options, _ = resolve_init(options)
    config = complete_bounds(resolve_config(_absolute_paths(options)))
    from .data import check_source, peek

    check_source(config.data.source)
    check_source(config.data.source_b, "the second domain's data")
    spec = task_of(config.recipe).data_spec(config)
    channels, classes = peek(config.data)
    if config.data.source_b:  # two domains: RGB if either is (as load_unpaired)
        other, _ = peek(dataclasses.replace(config.data, source=config.data.source_b, source_b=None))
        channels = config.data.channels or (max(channels, other) if channels and other else None)
    config.data.channels = channels or config.data.channels  # as build_run records what "auto" resolved to
    spec = dataclasses.replace(spec, channels=channels or spec.channels,
                               num_classes=classes if spec.num_classes and classes else spec.num_classes)
    with torch.device("meta"):  # shapes only: no memory, no time
        G, D = get_recipe(config.recipe).make(config.model, spec)
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    return {"config": to_dict(config), "parameters": {"G": count(G), "D": count(D)},
            "recipe": config.recipe, "task": get_recipe(config.recipe).task}


def _loadable_checkpoint(path: Path) -> tuple[Path, dict, list[tuple[Path, str]]]:
    """(checkpoint, its state, the damaged newer ones skipped and why): a file as given, or a run
    folder's newest checkpoint that loads. Nothing is moved here: the resume may yet be refused."""
    if not path.is_dir():
        checkpoint_file = ckpt.resolve_checkpoint(path)
        return checkpoint_file, ckpt.load_checkpoint(checkpoint_file), []
    ckpt.resolve_checkpoint(path)  # none at all: the one-line error
    skipped = []
    for candidate in reversed(ckpt.list_checkpoints(path)):
        try:
            return candidate, ckpt.load_checkpoint(candidate), skipped
        except GankitError as err:
            skipped.append((candidate, str(err)))
    raise GankitError(f"no checkpoint of {path} can be read (the newest: {skipped[0][1]}); the run cannot "
                      "continue: start it again")


def _resume(path: str | Path, options: dict) -> TrainResult:
    from .training.lock import RunLock

    path = Path(path)
    folder = path if path.is_dir() else path.parent.parent if path.parent.name == ckpt.CHECKPOINT_DIR else None
    # one trainer per run: taken before resume touches the folder (falling back, setting aside)
    lock = RunLock(folder).acquire() if folder is not None and distributed.is_main() else None
    try:
        return _resume_locked(path, options, lock)
    finally:
        if lock is not None:
            lock.release()


def _resume_locked(path: Path, options: dict, lock) -> TrainResult:
    checkpoint_file, state, damaged = _loadable_checkpoint(path)
    in_run = checkpoint_file.parent.name == ckpt.CHECKPOINT_DIR
    run_dir = checkpoint_file.parent.parent if in_run else None
    saved = upgrade_saved_config(state["config"])
    options = _absolute_paths(options)  # paths given now are relative to this directory
    for key, value in options.items():
        changed = merge(saved[key], value) if isinstance(value, dict) and key in saved else value
        if key not in RESUMABLE and _fixed_part(key, saved.get(key)) != _fixed_part(key, changed):
            raise GankitError(
                f"option {key} cannot change when resuming (the run used {saved.get(key)!r}): "
                "drop it, or start a new run without --resume"
            )
    config = from_dict(TrainConfig, merge(saved, options), "config")
    validate(config)
    if run_dir is None:  # a checkpoint file from elsewhere: continue it in a new run folder
        config.name = None
    # build_run refuses a finished run before it writes anything; a refused resume writes nothing
    run = build_run(config, state=state, run_dir=run_dir, lock=lock if run_dir is not None else None,
                    write_config=False)
    if run_dir is not None:  # checked and about to train: now the folder may change
        if damaged:
            ckpt.set_aside([c for c, _ in damaged], "damaged")
            warnings.warn("skipped damaged checkpoints (moved to checkpoints/damaged/): "
                          + "; ".join(f"{c.name}: {why.split('(', 1)[-1].split(')')[0]}" for c, why in damaged),
                          stacklevel=3)
        ckpt.remove_stale_temporaries(run_dir)  # half-written saves of killed runs
        newer = [p for p in ckpt.list_checkpoints(run_dir) if ckpt.step_of(p) > int(state["step"])]
        if newer:  # continuing an earlier checkpoint: the newer ones are kept, out of the way
            kept = ckpt.set_aside(newer, "set-aside")
            warnings.warn(f"continuing from {checkpoint_file.name}: the newer {', '.join(p.name for p in newer)} "
                          f"moved to {kept[0].parent}", stacklevel=3)
    if distributed.is_main():
        write_run_config(config, run.run_dir)
    return run.train()


__all__ = ["train", "load_generator", "load_translator", "translate_folder", "evaluate_checkpoint",
           "export", "LoadedGenerator", "Translator", "TrainResult", "Exported"]
