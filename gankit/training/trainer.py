"""The one training loop. Every GAN plugs in through its task (batches, sample sheet, evaluation,
state beyond the nets) and an update strategy (the order of passes of one step); nothing here
looks at which GAN is running, and nothing asks a model or a dataset what it is.

A run is assembled by run.py; this module only trains it.

Reproducibility: the data order and crops of batch k are a function of (seed, k) alone, and
latents and dropout come from the global torch RNG whose state is checkpointed, so N steps,
a resume and N more steps give bit-for-bit the weights of 2N uninterrupted steps (on CPU).
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import TrainConfig, to_dict
from ..errors import GankitError
from ..seeds import derive_seed
from ..visualize import save_grid
from . import checkpoint as ckpt
from . import distributed
from .ema import EMA
from .device import reproducible
from .logging import JsonLinesSink, ProgressSink, Reporter, TensorBoardSink, report
from .schedule import linear_decay
from .step import StepContext
from .updates import Update


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    images_seen: int
    checkpoint: Path
    scalars: dict


class Trainer:
    """Trains the nets of `ctx` on `task`'s batches with `update`, from step 0 or a checkpoint."""

    def __init__(self, config: TrainConfig, task, ctx: StepContext, update: Update, ema: EMA,
                 augment, controller, run_dir: Path, grows: bool = False, eval_data=None,
                 extractor: torch.nn.Module | None = None):
        """`eval_data` and `extractor` (features for KID) are needed when config.eval.every is set;
        `grows`: the nets follow the images seen (the Growing contract)."""
        assert config.eval.every is None or (eval_data is not None and extractor is not None)
        self.config, self.task, self.ctx, self.update, self.ema = config, task, ctx, update, ema
        self.augment, self.controller = augment, controller
        self.run_dir, self.grows = Path(run_dir), grows
        self.eval_data, self.extractor = eval_data, extractor
        self.data = task.data
        self.device = ctx.device
        self.rank, self.world = distributed.rank(), distributed.world_size()
        self.best_kid = math.inf
        self.rollbacks = 0  # returns to the last checkpoint after non-finite updates
        self.step = 0
        self.batches_drawn = 0
        self.images_seen = 0
        self.reporter: Reporter | None = None  # while training: the values of the log row being gathered
        self.pending_log: dict = {}  # a checkpoint's part of a log row, until training starts

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {
            "config": to_dict(self.config),
            "step": self.step,
            "batches_drawn": self.batches_drawn,
            "world_size": self.world,  # batches_drawn counts each rank's batches
            "images_seen": self.images_seen,
            "G": self.ctx.G.state_dict(),
            "D": self.ctx.D.state_dict(),
            "G_ema": self.ema.model.state_dict(),
            "opt_g": self.ctx.opt_g.state_dict(),
            "opt_d": self.ctx.opt_d.state_dict(),
            "rng": ckpt.rng_state(self.device),
            "augment": {"p": self.augment.p.detach().cpu(),
                        "controller": self.controller.state_dict() if self.controller else {}},
            "best_kid": self.best_kid,
            # the objective's running state: path-length regularisation's pl_mean
            "objective": self.ctx.objective.path_length.state_dict() if self.ctx.objective.path_length else {},
            "rollbacks": self.rollbacks,
            "log": self.reporter.state_dict() if self.reporter is not None else self.pending_log,
            **self.task.state_dict(),  # replay buffers / pools
            "data": self.task.data_facts(),
        }

    def load_state(self, state: dict) -> None:
        """Continue from a checkpoint's state (exactly, on the same number of processes)."""
        try:
            self.ctx.G.load_state_dict(state["G"])
            self.ctx.D.load_state_dict(state["D"])
            self.ema.model.load_state_dict(state["G_ema"])
            self.ctx.opt_g.load_state_dict(state["opt_g"])
            self.ctx.opt_d.load_state_dict(state["opt_d"])
            self.step, self.batches_drawn = int(state["step"]), int(state["batches_drawn"])
            self.images_seen = int(state["images_seen"])
            self.best_kid = float(state.get("best_kid", math.inf))
            self.rollbacks = int(state.get("rollbacks", 0))
            self.pending_log = state.get("log", {})  # older checkpoints have none: the row restarts
            if self.ctx.objective.path_length is not None and state.get("objective"):
                self.ctx.objective.path_length.load_state_dict(state["objective"])
            self.augment.set_p(float(state["augment"]["p"]))
            self.task.load_state_dict(state)
            if self.controller is not None:
                self.controller.load_state_dict(state["augment"]["controller"])
            saved_world = int(state.get("world_size", 1))
            if saved_world != self.world:  # resuming on another number of processes: the data
                # continues after the images already drawn, and each rank takes a fresh RNG stream
                self.batches_drawn = self.batches_drawn * saved_world // self.world
            if saved_world == 1 and self.world == 1:
                ckpt.restore_rng_state(state["rng"], self.device)  # exact resume
            else:
                torch.manual_seed(derive_seed(self.config.seed, "resume", self.step * 4096 + self.rank))
        except (KeyError, RuntimeError, ValueError) as err:
            raise GankitError(
                f"the checkpoint does not match the model its config describes ({str(err)[:160]}): "
                "it was damaged or edited; resume from an earlier checkpoint"
            ) from None

    def save_checkpoint(self) -> Path:
        path = ckpt.checkpoint_path(self.run_dir, self.step)
        if distributed.is_main():  # the weights are the same on every rank
            ckpt.save_checkpoint(self.state_dict(), path)
            ckpt.prune_checkpoints(self.run_dir, self.config.keep_checkpoints)
        return path

    # ---------------------------------------------------------------- pieces
    def _next_batch(self):
        batch, n = self.task.batch(self.batches_drawn)
        self.batches_drawn += 1
        self.images_seen += n * self.world
        return batch

    def decay_span(self) -> tuple[float, float] | None:
        """(the step where the learning rates start to fall, steps until they reach zero) from
        optim.decay_*, or None for constant rates."""
        optim = self.config.optim
        if optim.decay_start is None:
            return None
        unit = self.steps_per_epoch() if optim.decay_unit == "epochs" else 1.0
        return optim.decay_start * unit, optim.decay_length * unit

    def _set_learning_rates(self) -> None:
        """Both optimisers' rates for the step about to run, from the step alone, so a resumed run
        is at the same point of its schedule. Each group keeps its first rate as `initial_lr`
        (torch's convention), which the optimiser's state, and so the checkpoint, carries."""
        span = self.decay_span()
        if span is None:
            return
        factor = linear_decay(self.step, *span)
        for name, opt in (("g", self.ctx.opt_g), ("d", self.ctx.opt_d)):
            for group in opt.param_groups:
                group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor
            report(f"optim/lr_{name}", opt.param_groups[0]["lr"])

    def _recover(self) -> None:
        """Updates have kept coming out non-finite: go back to the newest checkpoint and continue
        with fresh latents (the same ones would lead to the same place), a bounded number of times."""
        checkpoints = ckpt.list_checkpoints(self.run_dir)
        if not checkpoints or self.rollbacks >= self.config.max_rollbacks:
            where = "before the first checkpoint" if not checkpoints else f"after {self.rollbacks} rollbacks"
            raise GankitError(
                f"training diverged at step {self.step} ({self.config.guard_patience} updates in a row "
                f"had non-finite gradients) {where}: lower the learning rates (--lr-g, --lr-d), add a "
                "penalty (--penalty r1) or use --precision fp32; earlier checkpoints are kept")
        rollbacks = self.rollbacks  # the checkpoint predates these: keep counting
        self.load_state(ckpt.load_checkpoint(checkpoints[-1]))
        if self.reporter is not None:  # the next row averages the checkpoint's steps and the redone
            self.reporter.load_state_dict(self.pending_log)  # ones, not the non-finite steps undone
        self.rollbacks = rollbacks + 1
        torch.manual_seed(derive_seed(self.config.seed, "rollback", self.rollbacks))
        self.ctx.guard.skipped = 0
        warnings.warn(f"non-finite updates: rolled back to {checkpoints[-1].name} "
                      f"(rollback {self.rollbacks} of at most {self.config.max_rollbacks})")
        report("guard/rollbacks", self.rollbacks)

    def _set_progress(self) -> None:
        """Nets that change with training progress (progressive growing) learn it here, from the
        images seen alone, so a resumed run is in the same phase at the same image."""
        self.ctx.step = self.step
        if self.grows:
            new_phase = [net.set_progress(self.images_seen) for net in (self.ctx.G, self.ctx.D, self.ema.model)]
            resolution, alpha = self.ctx.G.phase
            report("grow/resolution", resolution)  # so the growing can be followed in the logs
            report("grow/alpha", alpha)
            if new_phase[0] or new_phase[1]:  # ProGAN's reset_opt_for_new_lod
                self.ctx.opt_g.state.clear()
                self.ctx.opt_d.state.clear()

    @torch.no_grad()
    def save_samples(self) -> Path:
        images, nrow = self.task.sample_sheet(self.ema.model)
        return save_grid(images, self.run_dir / "samples" / f"step-{self.step:08d}.png", nrow=nrow)

    @torch.no_grad()
    def evaluate(self, keep_best: bool = True) -> float:
        """KID of the EMA generator against the held-out images; keeps checkpoints/best.pt at the
        lowest KID (as the keras example's ModelCheckpoint on val_kid), unless `keep_best` is False
        (the loop keeps it itself, after the step's log row). Uses its own latents, so the training
        RNG and thus exact resume are untouched."""
        from ..metrics import KID_MEAN, compute_metrics

        sample = self.task.sampler(self.ema.model, self.config.seed)
        scores = compute_metrics(sample, self.eval_data, self.config.eval.features,
                                 n=self.config.eval.n, metrics=("kid",), device=self.device,
                                 extractor=self.extractor, progress=False,
                                 # subsets as large as the smaller side: no shrink warning each time
                                 kid_subset_size=min(self.config.eval.n, len(self.eval_data)))
        kid = scores[KID_MEAN]
        report("metrics/kid", kid)
        if keep_best:
            self.keep_if_best(kid)
        return kid

    def keep_if_best(self, kid: float) -> None:
        if kid < self.best_kid:
            self.best_kid = kid
            ckpt.save_checkpoint(self.state_dict(), ckpt.best_path(self.run_dir))

    def steps_per_epoch(self) -> float:
        images_per_step = self.config.batch * self.update.batches_per_step(self.config.d_steps)
        return len(self.data) / images_per_step

    def total_steps(self) -> int | None:
        return total_steps(self.config, self.update, len(self.data))

    # ---------------------------------------------------------------- loop
    @contextlib.contextmanager
    def _stop_on_interrupt(self):
        """Ctrl-C asks the loop to stop after the current step (a half-done step would break
        exact resume); a second Ctrl-C aborts at once."""
        self.interrupted = False
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def ask_to_stop(signum, frame):
            if self.interrupted:
                raise KeyboardInterrupt
            self.interrupted = True

        previous = signal.signal(signal.SIGINT, ask_to_stop)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _finished(self, total: int | None, budget: float | None, start: float) -> bool:
        if total is not None and self.step >= total:
            return True
        # a time budget or Ctrl-C may be seen by one rank first: all stop at the same step
        return distributed.any_rank(self.interrupted or (budget is not None and time.perf_counter() - start >= budget),
                                    self.device)

    def train(self) -> TrainResult:
        with reproducible(self.device, self.config.deterministic):
            return self._train()

    def _train(self) -> TrainResult:
        cfg = self.config
        total = self.total_steps()
        budget = cfg.time_budget
        check_unfinished(cfg, self.update, len(self.data), self.step)
        span = self.decay_span()
        end = math.ceil(sum(span)) if span is not None else None
        if end is not None and total is not None and total > end:
            warnings.warn(f"the learning rates reach zero at step {end}, before this run's "
                          f"last step {total}: the steps after it do not train (optim.decay_* are kept "
                          "on resume; start a new run for a longer schedule)")
        main = distributed.is_main()  # rank 0 logs for all
        # rows after the last one the checkpoint had flushed are written again: the part-interval
        # row a run ends with is redone whole (the checkpoint carries its values so far)
        after = None if self.step == 0 else self.step - 1 if self.pending_log.get("counts") else self.step
        sinks = [JsonLinesSink(self.run_dir / "metrics.jsonl", after_step=after),
                 TensorBoardSink(self.run_dir / "tensorboard", after_step=after)] if main else []
        if total is not None:
            bar = ProgressSink(total, self.step, "step", cfg.progress and main)
        else:
            bar = ProgressSink(int(math.ceil(budget)), 0, "s", cfg.progress and main)
        self.ctx.G.train()
        self.ctx.D.train()
        start = time.perf_counter()
        interval_start, interval_images, side_time = start, 0, 0.0
        last_checkpoint = None
        with Reporter(sinks + [bar]) as reporter, self._stop_on_interrupt():
            self.reporter = reporter
            reporter.load_state_dict(self.pending_log)
            while not self._finished(total, budget, start):
                seen_before = self.images_seen
                self._set_progress()
                self._set_learning_rates()
                stats = self.update.step(self.ctx, self._next_batch, cfg.d_steps, cfg.g_steps)
                self.ctx.guard.end_of_step()
                skipped, self.ctx.guard.skipped_in_step = self.ctx.guard.skipped_in_step, 0
                if skipped:
                    report("guard/skipped_updates", skipped)
                if self.ctx.guard.skipped >= cfg.guard_patience:
                    self._recover()
                    continue
                self.ema.update(self.ctx.G, seen_before, self.images_seen - seen_before)
                self.step += 1
                interval_images += self.images_seen - seen_before
                stats = distributed.mean_scalars(stats, self.device)  # every rank's batch counts
                if self.controller is not None and not skipped:
                    self.controller.observe(stats["d/sign_real"], self.images_seen - seen_before)
                    self.controller.maybe_update(self.step)
                report("augment/p", self.augment.p_value)
                for name, value in stats.items():
                    report(name, value)

                side_start = time.perf_counter()
                kid = None
                if self.step % cfg.sample_every == 0 and main:
                    self.save_samples()
                if cfg.eval.every is not None and self.step % cfg.eval.every == 0 and main:
                    kid = self.evaluate(keep_best=False)
                side_time += time.perf_counter() - side_start

                if self.step % cfg.log_every == 0:
                    now = time.perf_counter()
                    train_time = max(now - interval_start - side_time, 1e-9)
                    report("speed/images_per_s", interval_images / train_time)
                    report("progress/kimg", self.images_seen / 1000)
                    report("progress/epoch", self.images_seen / len(self.data))  # kept on resume
                    reporter.flush(self.step)
                    interval_start, interval_images, side_time = now, 0, 0.0

                # checkpoints after the step's log row: what they carry of the next row is exact
                side_start = time.perf_counter()
                if kid is not None:
                    self.keep_if_best(kid)
                if self.step % cfg.checkpoint_every == 0:
                    last_checkpoint = self.save_checkpoint()
                side_time += time.perf_counter() - side_start
                bar.advance_to(self.step if total is not None else int(time.perf_counter() - start))
            if last_checkpoint is None or self.step % cfg.checkpoint_every != 0:
                last_checkpoint = self.save_checkpoint()  # with the unfinished row's values
            reporter.flush(self.step)  # that row, as far as it goes (a resume redoes it whole)
            if main:
                self.save_samples()
            distributed.barrier()  # no rank returns before the final checkpoint is on disk
        if self.interrupted:
            raise TrainingInterrupted(
                f"interrupted at step {self.step}; saved {last_checkpoint}: continue with "
                f"`gankit train --resume {self.run_dir}`"
            )
        return TrainResult(self.run_dir, self.step, self.images_seen, last_checkpoint, dict(reporter.last))


def total_steps(config: TrainConfig, update: Update, n_images: int) -> int | None:
    """The step a run stops at by --steps and --epochs (None: only a time budget bounds it)."""
    bounds = []
    if config.steps is not None:
        bounds.append(config.steps)
    if config.epochs is not None:
        images_per_step = config.batch * update.batches_per_step(config.d_steps)
        bounds.append(math.ceil(config.epochs * n_images / images_per_step))
    return min(bounds) if bounds else None


def check_unfinished(config: TrainConfig, update: Update, n_images: int, step: int) -> None:
    """Refuse to continue a run that has reached its bound (build_run asks before writing anything)."""
    total = total_steps(config, update, n_images)
    if total is not None and step >= total:
        raise GankitError(f"this run has already trained {step} of its {total} steps: pass a larger "
                          "--steps (or --epochs / --time-budget) to train further")


class TrainingInterrupted(GankitError):
    exit_code = 130  # the shell's convention for Ctrl-C
