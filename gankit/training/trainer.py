"""The one training loop. Every GAN variant plugs in through its recipe (models), its loss and
an update strategy; nothing here looks at which variant is running.

Reproducibility: the data order and crops of batch k are a function of (seed, k) alone, and
latents and dropout come from the global torch RNG whose state is checkpointed, so N steps,
a resume and N more steps give bit-for-bit the weights of 2N uninterrupted steps (on CPU).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import signal
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ..augment import build_augmentation
from ..config import OptimConfig, TrainConfig, to_dict
from ..data import ImageData
from ..errors import GankitError
from ..losses import PENALTIES, get_loss
from ..models.conditional import class_rows
from ..nn import spectral_normalize
from ..variants import DataSpec, get_recipe
from ..visualize import from_unit_range, save_grid, to_unit_range
from . import checkpoint as ckpt
from .ema import EMA
from .logging import JsonLinesSink, ProgressSink, Reporter, TensorBoardSink, report
from . import distributed
from .guard import StepGuard
from .replay import ReplayBuffer
from .schedule import linear_decay
from .updates import UPDATES, Nets, batch_coupled_layers


def derive_seed(seed: int, purpose: str, index: int = 0) -> int:
    """An independent 63-bit seed per (run seed, purpose, index): no stream overlaps another."""
    digest = hashlib.blake2b(f"{seed}/{purpose}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def select_device(name: str) -> torch.device:
    if name == "auto":
        # under torchrun each process takes the GPU of its local rank
        return torch.device(f"cuda:{distributed.local_rank()}" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GankitError(f"--device {name!r} is not a device: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GankitError(f"--device {name} asked for CUDA but none is available: use --device cpu")
    return device


def cpu_supports_bf16() -> bool:
    """True where oneDNN has native bf16 kernels (AVX-512 BF16 or AMX); elsewhere bf16 is
    emulated and far slower than fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_factory(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext
    if precision == "fp16":
        if device.type != "cuda":
            raise GankitError("--precision fp16 needs CUDA (with a gradient scaler); on a CPU use "
                              "--precision bf16 where it is native, or fp32")
        return lambda: torch.autocast("cuda", dtype=torch.float16)
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise GankitError("--precision bf16 needs a GPU with bf16 (Ampere or newer): use --precision fp32")
    if device.type == "cpu" and not cpu_supports_bf16():
        raise GankitError(
            "--precision bf16 needs a CPU with native bf16 (AVX-512 BF16 or AMX); this one would "
            "emulate it slowly: use --precision fp32"
        )
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16)


def num_classes(data: ImageData) -> int:
    """Classes of a labelled dataset; a conditional GAN on unlabelled data is a user error."""
    if data.labels is None:
        raise GankitError(
            f"a conditional GAN needs class labels, but {data.name} has none: for a folder use "
            "--labels (sub-folders) or --labels-csv FILE --label-column NAME, or train an "
            "unconditional GAN (--unconditional, or --recipe convgan instead of cgan)"
        )
    return len(data.class_names) if data.class_names else int(data.labels.max()) + 1


def make_optimizer(net: torch.nn.Module, optim: OptimConfig, lr: float) -> torch.optim.Optimizer:
    if optim.name == "rmsprop":  # Keras' RMSprop defaults (rho 0.9, eps 1e-7), as Hands-On ML uses it
        return torch.optim.RMSprop(net.parameters(), lr=lr, alpha=0.9, eps=1e-7)
    return torch.optim.Adam(net.parameters(), lr=lr, betas=(optim.beta1, optim.beta2))


def _split(labels, size: int):
    return labels.split(size) if isinstance(labels, torch.Tensor) else \
        [None] * len(range(0, len(labels), size))


class BatchStream:
    """Global batch g holds positions [g*B, (g+1)*B) of an endless sequence of per-epoch
    permutations. With several ranks, rank r's batch k is global batch k*world + r: the ranks
    shard every epoch between them (as a DistributedSampler does) and never see the same image
    in one step."""

    def __init__(self, data: ImageData, batch: int, seed: int, rank: int = 0, world: int = 1,
                 mirror: bool = False):
        self.data, self.batch, self.seed, self.rank, self.world = data, batch, seed, rank, world
        self.mirror = mirror
        self._perms: dict[int, torch.Tensor] = {}

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.pop(min(self._perms))
            g = torch.Generator().manual_seed(derive_seed(self.seed, "order", epoch))
            self._perms[epoch] = torch.randperm(len(self.data), generator=g)
        return self._perms[epoch]

    def indices(self, k: int) -> torch.Tensor:
        n = len(self.data)
        g = k * self.world + self.rank
        positions = range(g * self.batch, (g + 1) * self.batch)
        return torch.stack([self._permutation(p // n)[p % n] for p in positions])

    def images(self, k: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = self.indices(k)
        crops = torch.Generator().manual_seed(derive_seed(self.seed, "crop", k * self.world + self.rank))
        images = self.data.batch(idx, crops)  # (B, C, S, S) in [0, 1]
        if self.mirror:  # after the crop's draws, so mirroring leaves the crops of a run unchanged
            flip = torch.rand(len(images), generator=crops) < 0.5
            images[flip] = images[flip].flip(-1)
        labels = self.data.labels[idx] if self.data.labels is not None else None
        return images, labels


class DomainStreams:
    """Batch k of each domain of unpaired data, each domain in its own order: the images of A and
    B in one step are paired by nothing but chance. Yields ((A, B), None) as a stream yields
    (images, labels)."""

    def __init__(self, data, batch: int, seed: int, mirror: bool = False):
        self.streams = [BatchStream(domain, batch, derive_seed(seed, "domain", i), mirror=mirror)
                        for i, domain in enumerate(data.domains)]

    def images(self, k: int) -> tuple[tuple[torch.Tensor, ...], None]:
        return tuple(stream.images(k)[0] for stream in self.streams), None


def make_stream(data, batch: int, seed: int, rank: int = 0, world: int = 1, mirror: bool = False):
    """Data with several domains (`data.domains`) yields one batch of each per draw; `mirror`
    flips each image left-right with probability 1/2."""
    if hasattr(data, "domains"):
        if world > 1:
            raise GankitError("multi-process training of unpaired data (CycleGAN) is not supported: "
                              "train it in one process")
        return DomainStreams(data, batch, seed, mirror)
    return BatchStream(data, batch, seed, rank, world, mirror)


def _each(fn, images):
    """`fn` on a batch, or on each batch of a tuple of them (one per domain)."""
    return tuple(fn(x) for x in images) if isinstance(images, tuple) else fn(images)


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    images_seen: int
    checkpoint: Path
    scalars: dict


class Trainer:
    def __init__(self, config: TrainConfig, data: ImageData, run_dir: Path, state: dict | None = None,
                 eval_data: ImageData | None = None, extractor: torch.nn.Module | None = None):
        """`eval_data` and `extractor` (features for KID) are needed when config.eval.every is set."""
        self.config, self.data, self.run_dir = config, data, Path(run_dir)
        assert config.eval.every is None or (eval_data is not None and extractor is not None)
        self.eval_data, self.extractor = eval_data, extractor
        self.best_kid = math.inf
        self.rollbacks = 0  # returns to the last checkpoint after non-finite updates
        self.rank, self.world = distributed.rank(), distributed.world_size()
        self.device = select_device(config.device)
        self.autocast = autocast_factory(self.device, config.precision)
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        recipe = get_recipe(config.recipe)
        self.num_classes = num_classes(data) if config.conditional else 0
        if self.num_classes:
            self.class_frequencies = torch.bincount(data.labels, minlength=self.num_classes).float()

        torch.manual_seed(config.seed)  # initial weights
        G, D = recipe.make(config.model, DataSpec(data.size, data.channels, self.num_classes))
        if config.spectral_norm:
            D = spectral_normalize(D)
        G = G.to(self.device, memory_format=self.memory_format)
        D = D.to(self.device, memory_format=self.memory_format)
        self.augment, self.ada = build_augmentation(config.augment, G.output_range)
        self.augment.to(self.device)
        penalty = PENALTIES.get(config.penalty) if config.penalty != "none" else None
        # A D made of several discriminators (CycleGAN's, one per domain) names its `parts`: each
        # gets its own pool, since one pool would hand a D fakes of the other domain.
        parts = getattr(D, "parts", ()) if config.replay.size else ()
        self.pools = {part: ReplayBuffer(config.replay.size, config.replay.fraction) for part in parts}
        self.replay = ReplayBuffer(config.replay.size, config.replay.fraction) \
            if config.replay.size and not parts else None
        self.nets = Nets(
            G=G,
            D=D,
            opt_g=make_optimizer(G, config.optim, config.optim.lr_g),
            opt_d=make_optimizer(D, config.optim, config.optim.lr_d),
            loss=get_loss(config.loss),
            device=self.device,
            autocast=self.autocast,
            augment=self.augment,
            memory_format=self.memory_format,
            targets=config.targets,
            penalty=penalty,
            penalty_weight=(config.penalty_weight if config.penalty_weight is not None
                            else penalty.default_weight if penalty else 0.0),
            replay=self.replay,
            d_skip_below=config.d_skip_below,
            penalty_every=config.penalty_every,
            pools=self.pools,
        )
        self.update = UPDATES.get(config.update)
        coupled = batch_coupled_layers(D)
        if coupled and self.update.mixes_real_and_fake:
            raise GankitError(
                f"the {config.update} update passes reals and fakes through D together, but D's "
                f"{coupled[0]} mixes the samples of a batch (batch norm or a minibatch layer), which "
                "would let it compare reals with fakes: use --update alternating or a D without them")
        norms = [name for name, m in D.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        if norms and penalty is not None:
            # (a minibatch stddev layer, as in ProGAN and StyleGAN2, couples samples only weakly)
            warnings.warn(f"the {config.penalty} penalty needs per-sample gradients, but D's batch norm "
                          f"({norms[0]}) mixes the samples of a batch: prefer model.d_norm=layer or none")
        if config.sync_batchnorm and self.world > 1:
            if self.device.type != "cuda":
                raise GankitError("--set sync_batchnorm=true needs CUDA (torch's SyncBatchNorm has no CPU "
                                  "kernel): drop it for CPU processes")
            # the optimisers hold the same parameter objects: the conversion keeps them
            self.nets.G = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.nets.G)
            self.nets.D = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.nets.D)
            G, D = self.nets.G, self.nets.D
        if config.compile:
            # in place (nn.Module.compile): parameters, state-dict keys and checkpoints unchanged
            G.compile()
            D.compile()
        distributed.broadcast_module(G)  # the same start on every rank, whatever its RNG did
        distributed.broadcast_module(D)
        # fp16's narrow range needs loss scaling; bf16 has fp32's range and does not
        scaler = torch.amp.GradScaler("cuda") if config.precision == "fp16" else None
        self.nets.guard = StepGuard(self.world, scaler)
        self.ema = EMA(G, config.ema_decay)
        self.stream = make_stream(data, config.batch, config.seed, self.rank, self.world, config.data.mirror)
        self.step = 0
        self.batches_drawn = 0
        self.images_seen = 0
        g = torch.Generator().manual_seed(derive_seed(config.seed, "grid"))
        if getattr(G, "sample_sheet", None) is not None:
            # a G that maps images to images shows what it makes of fixed real inputs, drawn
            # from a stream of their own so the training order is untouched
            sheet_stream = make_stream(data, config.grid_size, derive_seed(config.seed, "sheet"))
            self.sheet_inputs = sheet_stream.images(0)[0]
        elif self.num_classes:  # one row per class, shared latents down each column
            per_class = max(1, config.grid_size // self.num_classes)
            self.grid_latents, self.grid_labels = class_rows(self.num_classes, per_class, G.latent_dim, g)
            self.grid_nrow = per_class
        else:
            self.grid_latents = torch.randn(config.grid_size, G.latent_dim, generator=g)
            self.grid_labels, self.grid_nrow = None, None
        if state is not None:
            self._load_state(state)
        else:  # latents and dropout from here; each rank its own stream
            torch.manual_seed(derive_seed(config.seed, "train", self.rank))

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {
            "config": to_dict(self.config),
            "step": self.step,
            "batches_drawn": self.batches_drawn,
            "world_size": self.world,  # batches_drawn counts each rank's batches
            "images_seen": self.images_seen,
            "G": self.nets.G.state_dict(),
            "D": self.nets.D.state_dict(),
            "G_ema": self.ema.model.state_dict(),
            "opt_g": self.nets.opt_g.state_dict(),
            "opt_d": self.nets.opt_d.state_dict(),
            "rng": ckpt.rng_state(self.device),
            "augment": {"p": self.augment.p.detach().cpu(),
                        "controller": self.ada.state_dict() if self.ada else {}},
            "best_kid": self.best_kid,
            "rollbacks": self.rollbacks,
            "replay": self.replay.state_dict() if self.replay is not None else {},
            "pools": {part: pool.state_dict() for part, pool in self.pools.items()},
            "data": {"name": self.data.name, "size": self.data.size, "channels": self.data.channels,
                     "num_images": len(self.data), "class_names": self.data.class_names,
                     "num_classes": self.num_classes},
        }

    def _load_state(self, state: dict) -> None:
        try:
            self.nets.G.load_state_dict(state["G"])
            self.nets.D.load_state_dict(state["D"])
            self.ema.model.load_state_dict(state["G_ema"])
            self.nets.opt_g.load_state_dict(state["opt_g"])
            self.nets.opt_d.load_state_dict(state["opt_d"])
            self.step, self.batches_drawn = int(state["step"]), int(state["batches_drawn"])
            self.images_seen = int(state["images_seen"])
            self.best_kid = float(state.get("best_kid", math.inf))
            self.rollbacks = int(state.get("rollbacks", 0))
            self.augment.set_p(float(state["augment"]["p"]))
            if self.replay is not None:
                self.replay.load_state_dict(state["replay"], self.device)
            for part, pool in self.pools.items():
                pool.load_state_dict(state["pools"][part], self.device)
            if self.ada is not None:
                self.ada.load_state_dict(state["augment"]["controller"])
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
    def _to_model(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] images on the CPU -> G's value range on the training device."""
        images = from_unit_range(images, self.nets.G.output_range)
        if self.device.type == "cuda":  # page-locked memory: the copy below overlaps with compute
            images = images.pin_memory()
        return images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

    def _next_batch(self):
        images, labels = self.stream.images(self.batches_drawn)
        self.batches_drawn += 1
        self.images_seen += (images[0] if isinstance(images, tuple) else images).shape[0] * self.world
        images = _each(self._to_model, images)
        if labels is not None:
            labels = labels.to(self.device)
        return images, labels

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
        for name, opt in (("g", self.nets.opt_g), ("d", self.nets.opt_d)):
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
        self._load_state(ckpt.load_checkpoint(checkpoints[-1]))
        self.rollbacks = rollbacks + 1
        torch.manual_seed(derive_seed(self.config.seed, "rollback", self.rollbacks))
        self.nets.guard.skipped = 0
        warnings.warn(f"non-finite updates: rolled back to {checkpoints[-1].name} "
                      f"(rollback {self.rollbacks} of at most {self.config.max_rollbacks})")
        report("guard/rollbacks", self.rollbacks)

    def _set_progress(self) -> None:
        """Models that change with training progress (progressive growing) learn it here, from
        the images seen alone, so a resumed run is in the same phase at the same image."""
        self.nets.step = self.step
        for net in (self.nets.G, self.nets.D, self.ema.model):
            hook = getattr(net, "set_progress", None)
            if hook is not None:
                hook(self.images_seen)

    @torch.no_grad()
    def save_samples(self) -> Path:
        G = self.ema.model
        path = self.run_dir / "samples" / f"step-{self.step:08d}.png"
        if getattr(G, "sample_sheet", None) is not None:
            images, nrow = G.sample_sheet(_each(self._to_model, self.sheet_inputs))
            return save_grid(to_unit_range(images, G.output_range).cpu(), path, nrow=nrow)
        labels = self.grid_labels if self.grid_labels is not None else [None] * len(self.grid_latents)
        chunks = [to_unit_range(G(z.to(self.device), y if y is None else y.to(self.device)),
                                G.output_range).cpu()
                  for z, y in zip(self.grid_latents.split(256), _split(labels, 256))]
        return save_grid(torch.cat(chunks), path, nrow=self.grid_nrow)

    @torch.no_grad()
    def evaluate(self) -> float:
        """KID of the EMA generator against the held-out images; keeps checkpoints/best.pt at the
        lowest KID (as the keras example's ModelCheckpoint on val_kid). Uses its own latents, so
        the training RNG and thus exact resume are untouched."""
        from ..metrics import KID_MEAN, compute_metrics

        G = self.ema.model
        latents = torch.Generator().manual_seed(derive_seed(self.config.seed, "eval"))

        def sample(k: int) -> torch.Tensor:
            z = torch.randn(k, G.latent_dim, generator=latents).to(self.device)
            # labels as often as the data has them: held-out reals follow the data's frequencies
            labels = (torch.multinomial(self.class_frequencies, k, replacement=True, generator=latents)
                      .to(self.device) if self.num_classes else None)
            return to_unit_range(G(z, labels), G.output_range)

        scores = compute_metrics(sample, self.eval_data, self.config.eval.features,
                                 n=self.config.eval.n, metrics=("kid",), device=self.device,
                                 extractor=self.extractor, progress=False,
                                 # subsets as large as the smaller side: no shrink warning each time
                                 kid_subset_size=min(self.config.eval.n, len(self.eval_data)))
        kid = scores[KID_MEAN]
        report("metrics/kid", kid)
        if kid < self.best_kid:
            self.best_kid = kid
            ckpt.save_checkpoint(self.state_dict(), ckpt.best_path(self.run_dir))
        return kid

    def steps_per_epoch(self) -> float:
        images_per_step = self.config.batch * self.update.batches_per_step(self.config.d_steps)
        return len(self.data) / images_per_step

    def total_steps(self) -> int | None:
        bounds = []
        if self.config.steps is not None:
            bounds.append(self.config.steps)
        if self.config.epochs is not None:
            images_per_step = self.config.batch * self.update.batches_per_step(self.config.d_steps)
            bounds.append(math.ceil(self.config.epochs * len(self.data) / images_per_step))
        return min(bounds) if bounds else None

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
        cfg = self.config
        total = self.total_steps()
        budget = cfg.time_budget
        if total is not None and self.step >= total:
            raise GankitError(
                f"this run has already trained {self.step} of its {total} steps: pass a larger "
                "--steps (or --epochs / --time-budget) to train further"
            )
        span = self.decay_span()
        end = math.ceil(sum(span)) if span is not None else None
        if end is not None and total is not None and total > end:
            warnings.warn(f"the learning rates reach zero at step {end}, before this run's "
                          f"last step {total}: the steps after it do not train (optim.decay_* are kept "
                          "on resume; start a new run for a longer schedule)")
        main = distributed.is_main()  # rank 0 logs for all
        sinks = [JsonLinesSink(self.run_dir / "metrics.jsonl", after_step=self.step),
                 TensorBoardSink(self.run_dir / "tensorboard", after_step=self.step)] if main else []
        if total is not None:
            bar = ProgressSink(total, self.step, "step", cfg.progress and main)
        else:
            bar = ProgressSink(int(math.ceil(budget)), 0, "s", cfg.progress and main)
        self.nets.G.train()
        self.nets.D.train()
        start = time.perf_counter()
        interval_start, interval_images, side_time = start, 0, 0.0
        last_checkpoint = None
        with Reporter(sinks + [bar]) as reporter, self._stop_on_interrupt():
            while not self._finished(total, budget, start):
                seen_before = self.images_seen
                self._set_progress()
                self._set_learning_rates()
                stats = self.update.step(self.nets, self._next_batch, cfg.d_steps, cfg.g_steps)
                self.nets.guard.end_of_step()
                skipped, self.nets.guard.skipped_in_step = self.nets.guard.skipped_in_step, 0
                if skipped:
                    report("guard/skipped_updates", skipped)
                if self.nets.guard.skipped >= cfg.guard_patience:
                    self._recover()
                    continue
                self.ema.update(self.nets.G)
                self.step += 1
                interval_images += self.images_seen - seen_before
                stats = distributed.mean_scalars(stats, self.device)  # every rank's batch counts
                if self.ada is not None and not skipped:
                    self.ada.observe(stats["d/sign_real"], self.images_seen - seen_before)
                    self.ada.maybe_update(self.step)
                report("augment/p", self.augment.p_value)
                for name, value in stats.items():
                    report(name, value)

                side_start = time.perf_counter()
                if self.step % cfg.sample_every == 0 and main:
                    self.save_samples()
                if cfg.eval.every is not None and self.step % cfg.eval.every == 0 and main:
                    self.evaluate()
                if self.step % cfg.checkpoint_every == 0:
                    last_checkpoint = self.save_checkpoint()
                side_time += time.perf_counter() - side_start

                if self.step % cfg.log_every == 0:
                    now = time.perf_counter()
                    train_time = max(now - interval_start - side_time, 1e-9)
                    report("speed/images_per_s", interval_images / train_time)
                    report("progress/kimg", self.images_seen / 1000)
                    report("progress/epoch", self.images_seen / len(self.data))  # kept on resume
                    reporter.flush(self.step)
                    interval_start, interval_images, side_time = now, 0, 0.0
                bar.advance_to(self.step if total is not None else int(time.perf_counter() - start))
            reporter.flush(self.step)
            if main:
                self.save_samples()
            if last_checkpoint is None or self.step % cfg.checkpoint_every != 0:
                last_checkpoint = self.save_checkpoint()
            distributed.barrier()  # no rank returns before the final checkpoint is on disk
        if self.interrupted:
            raise TrainingInterrupted(
                f"interrupted at step {self.step}; saved {last_checkpoint}: continue with "
                f"`gankit train --resume {self.run_dir}`"
            )
        return TrainResult(self.run_dir, self.step, self.images_seen, last_checkpoint, dict(reporter.last))


class TrainingInterrupted(GankitError):
    exit_code = 130  # the shell's convention for Ctrl-C
