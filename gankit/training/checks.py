"""The training loop's own options (bounds, cadence, optimiser, precision, EMA, replay, processes),
checked before any data is decoded; each error names the fix."""

from __future__ import annotations

from ..errors import GankitError
from . import distributed
from .device import autocast_factory, select_device

OPTIMIZERS = ("adam", "rmsprop")  # optim.name
DECAY_UNITS = ("steps", "epochs")  # optim.decay_unit
PRECISIONS = ("fp32", "bf16", "fp16")  # precision


def check_config(config) -> None:
    choices = {"optim.name": (config.optim.name, OPTIMIZERS), "precision": (config.precision, PRECISIONS),
               "optim.decay_unit": (config.optim.decay_unit, DECAY_UNITS)}
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise GankitError(f"option {key}={value!r} is not valid: use one of {', '.join(allowed)}")
    positive = {"batch": config.batch, "d_steps": config.d_steps, "g_steps": config.g_steps,
                "guard_patience": config.guard_patience, "sample_every": config.sample_every,
                "checkpoint_every": config.checkpoint_every, "keep_checkpoints": config.keep_checkpoints,
                "log_every": config.log_every, "grid_size": config.grid_size}
    for key, value in positive.items():
        if value < 1:
            raise GankitError(f"option {key}={value} must be at least 1")
    for key, value in {"steps": config.steps, "epochs": config.epochs,
                       "time_budget": config.time_budget}.items():
        if value is not None and value <= 0:
            raise GankitError(f"option {key}={value} must be positive")
    if config.max_rollbacks < 0:
        raise GankitError(f"max_rollbacks={config.max_rollbacks} must be 0 or more")
    if not 0.0 <= config.ema_decay < 1.0:
        raise GankitError(f"ema_decay={config.ema_decay} must be in [0, 1): 0.99 or 0.999 are usual")
    pl = config.path_length
    if not (pl.weight >= 0 and pl.every >= 1 and pl.batch_shrink >= 1 and 0 <= pl.decay <= 1):
        raise GankitError(f"path_length: weight {pl.weight:g}, every {pl.every}, batch_shrink {pl.batch_shrink}, "
                          f"decay {pl.decay:g}: use a weight of 0 or more (StyleGAN2: 2), every and batch_shrink "
                          "of at least 1 (4 and 2) and a decay in [0, 1] (0.01)")
    if not config.classifier_weight >= 0:
        raise GankitError(f"--classifier-weight {config.classifier_weight:g}: give 0 or more (AC-GAN: 1)")
    check_label_paths(config)
    if not config.drift >= 0:
        raise GankitError(f"--drift {config.drift:g}: give 0 (off) or a small positive weight, e.g. 0.001 (ProGAN)")
    if config.ema_kimg is not None and not (config.ema_kimg > 0 or config.ema_kimg == -1):
        raise GankitError(f"--ema-kimg {config.ema_kimg:g}: give a half-life in thousands of images (e.g. 10), "
                          "or -1 for StyleGAN2-ADA's auto value (10 x batch / 32)")
    if config.ema_rampup is not None and not 0 < config.ema_rampup <= 1:
        raise GankitError(f"--ema-rampup {config.ema_rampup:g}: give a share of the images seen, e.g. 0.05")
    optim = config.optim
    for key in ("lr_g", "lr_d"):
        if getattr(optim, key) <= 0:
            raise GankitError(f"optim.{key}={getattr(optim, key)} must be positive (2e-4 is usual)")
    for key in ("beta1", "beta2"):
        if not 0.0 <= getattr(optim, key) < 1.0:
            raise GankitError(f"optim.{key}={getattr(optim, key)} must be in [0, 1)")
    if optim.decay is not None and not 0.0 <= optim.decay <= 1.0:
        raise GankitError(f"--decay {optim.decay:g} (optim.decay): give a share of the run from 0 (constant "
                          "rate) to 1")
    start, length = optim.decay_start, optim.decay_length
    if (start is None) != (length is None) or (start is not None and (start < 0 or length <= 0)):
        raise GankitError(f"optim.decay_start={start} and optim.decay_length={length}: give both (a "
                          "start of 0 or more and a positive length, in optim.decay_unit) or neither")
    if config.replay.size < 0 or not 0.0 < config.replay.fraction <= 1.0:
        raise GankitError(f"replay.size={config.replay.size} must be 0 (off) or more and replay.fraction="
                          f"{config.replay.fraction} in (0, 1] (0.5 is usual)")
    if config.sync_batchnorm and distributed.world_size() > 1 and not _uses_cuda(config.device):
        raise GankitError("--set sync_batchnorm=true needs CUDA (torch's SyncBatchNorm has no CPU "
                          "kernel): drop it for CPU processes")
    autocast_factory(select_device(config.device), config.precision)


def _uses_cuda(device: str) -> bool:
    import torch

    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


def check_label_paths(config) -> None:
    """A conditional D must carry the label one way, and its AC-GAN head must not read it from its
    input. Checked for new runs only: a run saved before these checks still loads and samples."""
    model = config.model  # the recipe's options; only the conv nets have these keys
    head, label_input = model.get("d_classifier"), model.get("d_label_input")
    if not config.conditional or label_input is None:
        return
    if head and label_input == "channels":
        # measured: with the label maps in its input, D's head names the class of reals and fakes
        # alike from the maps (class accuracy 1.0 and a class loss of 0.001 by step 260 of the
        # zoo's cgan), so G's class loss is ~0 whatever it draws and teaches it nothing
        raise GankitError("model.d_classifier with model.d_label_input=channels lets D's class head read the "
                          "label from its input maps instead of the image: use model.d_label_input=none "
                          "(AC-GAN as Odena et al.) or projection")
    from ..models.conditional import AC_GAN_D_INPUT

    if label_input == AC_GAN_D_INPUT and not (head and config.classifier_weight > 0):
        raise GankitError("model.d_label_input=none leaves D blind to the label: add model.d_classifier=true "
                          "with a --classifier-weight above 0 (AC-GAN), or use channels or projection")
