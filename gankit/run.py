"""The one place a run is assembled: data, held-out images, nets, the task, the objective, the
augmentation and the trainer, from a resolved config (and a checkpoint's state when resuming).

`gankit.train`, resume, the command line and every benchmark build their runs here, so a run
started from any of them is the same run.

    config = resolve_config({...})
    run = build_run(config)          # loads the data, makes the run folder
    result = run.train()
"""

from __future__ import annotations

import datetime
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .augment import build_augmentation
from .config import TrainConfig, to_dict
from .errors import GankitError
from .losses import PENALTIES, get_loss
from .metrics import default_features
from .nn import convert_sync_batchnorm, freeze_blocks, spectral_normalize
from .seeds import derive_seed
from .tasks import Task, task_of
from .training import checkpoint as ckpt
from .training import distributed
from .training.device import autocast_factory, select_device
from .training.ema import EMA
from .training.guard import StepGuard
from .training.lock import LOCK_FILE, RunLock
from .training.optim import make_optimizer
from .training.step import Objective, StepContext
from .training.trainer import TrainResult, Trainer, check_unfinished
from .training.updates import UPDATES
from .variants import get_recipe


@dataclass
class Run:
    config: TrainConfig
    run_dir: Path
    task: Task
    trainer: Trainer
    held_out: Any = None  # the images KID is measured on during training (None without eval)
    lock: RunLock | None = None  # this process's hold on the run folder (rank 0), dropped after training

    def train(self) -> TrainResult:
        try:
            return self.trainer.train()
        finally:
            self.close()

    def close(self) -> None:
        """Let another trainer have the run folder (train() does this when it ends)."""
        if self.lock is not None:
            self.lock.release()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def build_run(config: TrainConfig, *, state: dict | None = None, init: dict | None = None,
              run_dir: Path | str | None = None, data: Any = None, held_out: Any = None,
              extractor: torch.nn.Module | None = None, write_config: bool = True,
              lock: RunLock | None = None) -> Run:
    """Assemble a run of the resolved `config`. `state`: a checkpoint to continue. `init`: a
    source checkpoint whose G, D and G_ema a new run starts from (transfer.resolve_init made
    `config` fit it; nothing else of it is used). `run_dir`: the
    folder to write to (default: a new one under config.runs_dir, named config.name). `data`,
    `held_out`, `extractor`: already loaded training images, evaluation images and KID features
    (default: loaded here, with eval.holdout of the data held out when config.eval.every is set).
    """
    task_class = task_of(config.recipe)
    if config.eval.every is not None and config.eval.features is None:
        config.eval.features = default_features(config.data.source)
    if config.eval.every is not None and extractor is None:
        # before any data is decoded: inception without weights fails here
        from .metrics import load_feature_extractor

        weights = config.eval.inception_weights if config.eval.features.startswith("inception") else None
        extractor = load_feature_extractor(config.eval.features, weights)
    if data is None:
        data = task_class.load_data(config.data, progress=config.progress)
        if config.eval.every is not None and held_out is None:
            # the split depends only on the data: a resumed run holds out the same images
            data, held_out = data.split(config.eval.holdout, seed=0)
    config.data.channels = data.channels  # record what "auto" resolved to
    if state is not None:  # a finished run is refused before its folder changes: it writes nothing
        check_unfinished(config, UPDATES.get(config.update), len(data), int(state["step"]))
    held: list = []
    if run_dir is None:  # rank 0 names and makes the run folder; the other ranks use the same one
        run_dir = distributed.broadcast_object(str(make_run_dir(config, held)) if distributed.is_main() else None)
    lock = lock or (held[0] if held else None)
    run_dir = Path(run_dir)
    # one trainer per folder, taken before anything is written in it (a refused run writes nothing)
    if lock is None and distributed.is_main():
        run_dir.mkdir(parents=True, exist_ok=True)  # a folder the caller named (Python API) may be new
        lock = RunLock(run_dir).acquire()

    device = select_device(config.device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    recipe = get_recipe(config.recipe)
    torch.manual_seed(config.seed)  # initial weights
    G, D = recipe.make(config.model, task_class.data_spec(config, data))
    if config.spectral_norm:
        D = spectral_normalize(D)
    if config.freeze_d:
        freeze_blocks(D, config.freeze_d)  # before the optimiser is made: it leaves them out
    if init is not None and state is None:  # on resume the run's own checkpoint has the weights
        from .transfer import load_source_weights

        ema_start = load_source_weights(G, D, init, config.init_from)
    G = G.to(device, memory_format=memory_format)
    D = D.to(device, memory_format=memory_format)
    augment, controller = build_augmentation(config.augment, G.output_range)
    augment.to(device)
    world = distributed.world_size()
    task = task_class(config, data, G, device, memory_format, distributed.rank(), world)
    if config.sync_batchnorm and world > 1:
        G, D = convert_sync_batchnorm(G), convert_sync_batchnorm(D)
    if config.compile:
        # in place (nn.Module.compile): parameters, state-dict keys and checkpoints unchanged
        G.compile()
        D.compile()
    distributed.broadcast_module(G)  # the same start on every rank, whatever its RNG did
    distributed.broadcast_module(D)
    penalty = PENALTIES.get(config.penalty) if config.penalty != "none" else None
    objective = Objective(
        loss=get_loss(config.loss), targets=config.targets, penalty=penalty,
        penalty_weight=(config.penalty_weight if config.penalty_weight is not None
                        else penalty.default_weight if penalty else 0.0),
        penalty_every=config.penalty_every, drift=config.drift, d_skip_below=config.d_skip_below,
        path_length=path_length_penalty(config, device), classifier_weight=config.classifier_weight,
        classifier_fakes=config.classifier_fakes,
        weights=task_class.objective_weights(config))
    # fp16's narrow range needs loss scaling; bf16 has fp32's range and does not
    scaler = torch.amp.GradScaler("cuda") if config.precision == "fp16" else None
    ctx = StepContext(G=G, D=D, opt_g=make_optimizer(G, config.optim, config.optim.lr_g),
                      opt_d=make_optimizer(D, config.optim, config.optim.lr_d), objective=objective,
                      device=device, autocast=autocast_factory(device, config.precision),
                      augment=augment, memory_format=memory_format, guard=StepGuard(world, scaler),
                      replay=task.replay, pools=task.pools)
    ema = EMA(G, config.ema_decay, ema_half_life_kimg(config), config.ema_rampup)
    if init is not None and state is None:
        ema.model.load_state_dict(ema_start)
    trainer = Trainer(config, task, ctx, UPDATES.get(config.update), ema, augment,
                      controller, run_dir, grows=recipe.grows, eval_data=held_out, extractor=extractor)
    if state is not None:
        trainer.load_state(state)
    else:  # latents and dropout from here; each rank its own stream
        torch.manual_seed(derive_seed(config.seed, "train", distributed.rank()))
    if write_config and distributed.is_main():
        write_run_config(config, run_dir)
    return Run(config, run_dir, task, trainer, held_out, lock)


def new_run_name(config: TrainConfig) -> str:
    source = Path(config.data.source).name or "data"
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{config.recipe}-{source}"


# What a run writes before its first checkpoint: a run stopped then holds only these, and can be
# started again under its name (anything else in the folder is the user's and is never removed).
RUN_FILES = ("config.yaml", "metrics.jsonl", "samples", "tensorboard", LOCK_FILE)


def make_run_dir(config: TrainConfig, lock_holder: list | None = None) -> Path:
    """A new run's folder. A default name is made unique by creating the folder atomically (two
    runs started in the same second get two folders); a --name that holds checkpoints is refused
    (resume it), one that holds only what a run writes before its first checkpoint starts afresh
    (after taking its lock, put into `lock_holder`: a run still being trained there is refused)."""
    runs = Path(config.runs_dir)
    if config.name is not None:
        run_dir = runs / config.name
        if ckpt.list_checkpoints(run_dir):
            raise GankitError(
                f"run folder {run_dir} already holds checkpoints: continue it with "
                f"`--resume {run_dir}` or choose another --name"
            )
        if run_dir.exists() and any(run_dir.iterdir()):
            leftovers = [p for p in run_dir.iterdir() if p.name not in RUN_FILES and p.name != "checkpoints"]
            # gankit's: a config.yaml, or only the lock (stopped while the run was built: the lock
            # is taken before anything else is written)
            only_lock = [p.name for p in run_dir.iterdir()] == [LOCK_FILE]
            if leftovers or not ((run_dir / "config.yaml").is_file() or only_lock):
                raise GankitError(f"run folder {run_dir} exists and is not empty: choose another --name "
                                  "or remove the folder")
            lock = RunLock(run_dir).acquire()  # a run still training there is refused, not cleared
            if lock_holder is not None:
                lock_holder.append(lock)
            warnings.warn(f"run folder {run_dir} holds a run that stopped before its first checkpoint: "
                          "starting it afresh", stacklevel=2)
            for name in RUN_FILES[:-1]:  # not the lock file: it is held now
                target = run_dir / name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir
    runs.mkdir(parents=True, exist_ok=True)
    base = new_run_name(config)
    for n in range(1, 10_000):
        run_dir = runs / (base if n == 1 else f"{base}-{n}")
        try:
            run_dir.mkdir()  # atomic: of two processes asking for the same name, one gets it
            return run_dir
        except FileExistsError:
            continue
    raise GankitError(f"{runs} holds 10,000 runs named {base}: choose a --name")


def path_length_penalty(config: TrainConfig, device: torch.device):
    """StyleGAN2's path-length regulariser when its weight is set (resolve checked G can take it)."""
    from .losses.path_length import PathLengthPenalty

    pl = config.path_length
    if not pl.weight:
        return None
    return PathLengthPenalty(pl.weight, pl.every, pl.batch_shrink, pl.decay).to(device)


def ema_half_life_kimg(config: TrainConfig) -> float | None:
    """The EMA's half-life in kimg; -1 is StyleGAN2-ADA's auto value, 10 kimg per 32 images of
    batch (a half-life of 312.5 steps at any batch size)."""
    return config.batch * 10 / 32 if config.ema_kimg == -1 else config.ema_kimg


def write_run_config(config: TrainConfig, run_dir: Path) -> None:
    import yaml

    (Path(run_dir) / "config.yaml").write_text(yaml.safe_dump(to_dict(config), sort_keys=False))

