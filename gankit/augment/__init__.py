"""Differentiable augmentation of everything D sees, and the controllers of its strength.

    mode ada     a pipeline whose p follows D's overfitting: --augpipe bgc (StyleGAN2-ADA, the
                 default) or any of its named pipelines, or keras (the keras-io example's)
    mode fixed   the same pipelines at a constant p
    mode diffaug DiffAugment's policy on every image
    mode none    D sees the images as they are
"""

from __future__ import annotations

import math

from ..errors import GankitError
from .ada import AdaController, KerasController
from .diffaugment import POLICIES, DiffAugment, policy_parts
from .keras import KerasAugment
from .ops import OP_NAMES
from .pipeline import PIPES, Augmentation, AugmentPipe

__all__ = ["AdaController", "AugmentPipe", "Augmentation", "DiffAugment", "KerasAugment",
           "KerasController", "MODES", "OP_NAMES", "PIPES", "PIPE_NAMES", "build_augmentation", "check_config"]

PIPE_NAMES = (*PIPES, "keras")
MODES = ("ada", "fixed", "diffaug", "none")  # augment.mode
SIGN_TARGET, ACCURACY_TARGET = 0.6, 0.85  # the reference's r_t target; the keras example's accuracy


def target_for(cfg) -> float:
    """The controller's target: cfg.target, or the pipeline's own default (its meaning differs:
    E[sign(D(real))] for the StyleGAN2-ADA controller, D's accuracy on reals for keras')."""
    if cfg.target is not None:
        return cfg.target
    return ACCURACY_TARGET if cfg.pipe == "keras" else SIGN_TARGET


def build_augmentation(cfg, value_range: tuple[float, float]) -> tuple[Augmentation, object | None]:
    """The pipeline an AugmentConfig describes, and its controller when p adapts (mode "ada")."""
    if cfg.mode == "diffaug":
        return DiffAugment(value_range, cfg.policy), None
    p = cfg.p if cfg.mode in ("ada", "fixed") else 0.0
    if cfg.pipe == "keras":
        pipe = KerasAugment(value_range, p)
    else:
        pipe = AugmentPipe({**PIPES[cfg.pipe], **cfg.ops}, value_range, p, cfg.antialias)
    if cfg.mode != "ada":
        return pipe, None
    if cfg.pipe == "keras":
        return pipe, KerasController(pipe, target_for(cfg), cfg.integration_steps, cfg.p_max)
    return pipe, AdaController(pipe, target_for(cfg), cfg.ada_kimg, cfg.interval, cfg.p_max)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_config(cfg) -> None:
    """Every augmentation option a user can get wrong, each with the fix; nothing is built."""
    if cfg.mode not in MODES:
        raise GankitError(f"option augment.mode={cfg.mode!r} is not valid: use one of {', '.join(MODES)}")
    if cfg.pipe not in PIPE_NAMES:
        raise GankitError(f"unknown augmentation pipeline {cfg.pipe!r} (--augpipe): choose one of "
                          f"{', '.join(PIPE_NAMES)}")
    if not _number(cfg.p) or not 0.0 <= cfg.p <= 1.0:
        raise GankitError(f"augment.p={cfg.p} must be a probability in [0, 1]")
    if cfg.p_max is not None and (not _number(cfg.p_max) or not 0.0 < cfg.p_max <= 1.0):
        raise GankitError(f"augment.p_max={cfg.p_max} must be in (0, 1], or unset for no cap")
    for name, multiplier in cfg.ops.items():
        if name not in OP_NAMES:
            raise GankitError(f"unknown augmentation {name!r} in augment.ops: choose from "
                              f"{', '.join(OP_NAMES)}")
        if not _number(multiplier) or multiplier < 0:
            raise GankitError(f"augment.ops.{name}={multiplier!r} must be a number >= 0 "
                              "(a multiplier of p; 0 turns the op off)")
    if cfg.ops and cfg.pipe == "keras":
        raise GankitError("augment.ops sets multipliers of StyleGAN2-ADA's ops; the keras pipeline "
                          "has none: drop augment.ops or choose --augpipe bgc")
    if not _number(cfg.ada_kimg) or cfg.ada_kimg <= 0:
        shown = f"{cfg.ada_kimg:g}" if isinstance(cfg.ada_kimg, float) else cfg.ada_kimg
        raise GankitError(f"--ada-kimg {shown} must be positive: the thousands of images p "
                          "takes to move by 1 (500 is the reference's)")
    if not isinstance(cfg.interval, int) or cfg.interval < 1:
        raise GankitError(f"--ada-interval {cfg.interval} must be at least 1 (steps between updates of p)")
    if not isinstance(cfg.integration_steps, int) or cfg.integration_steps < 1:
        raise GankitError(f"augment.integration_steps={cfg.integration_steps} must be at least 1")
    if cfg.target is not None:
        low, what = (0.0, "D's accuracy on reals") if cfg.pipe == "keras" else (-1.0, "E[sign(D(real))]")
        if not _number(cfg.target) or not low < cfg.target < 1.0:
            raise GankitError(f"--ada-target {cfg.target} must be in ({low:g}, 1): it is {what}; "
                              f"{ACCURACY_TARGET if cfg.pipe == 'keras' else SIGN_TARGET} is usual")
    parts = policy_parts(cfg.policy) if isinstance(cfg.policy, str) else None
    if not parts or any(part not in POLICIES for part in parts):
        raise GankitError(f"--diffaug-policy {cfg.policy!r}: give a comma-separated list of "
                          f"{', '.join(POLICIES)} (e.g. color,translation,cutout)")
