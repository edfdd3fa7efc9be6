"""Differentiable augmentation of everything D sees, and the ADA controller of its strength."""

from __future__ import annotations

from .ada import AdaController
from .ops import COLOUR, GEOMETRIC, MASK, ValueRange
from .pipeline import MODE_OPS, AugmentPipe

__all__ = ["AdaController", "AugmentPipe", "COLOUR", "GEOMETRIC", "MASK", "MODE_OPS", "build_augmentation"]


def build_augmentation(cfg, value_range: ValueRange) -> tuple[AugmentPipe, AdaController | None]:
    """The pipeline an AugmentConfig describes, and its controller when p adapts (mode "ada")."""
    multipliers = {**MODE_OPS[cfg.mode], **cfg.ops}
    p = 1.0 if cfg.mode == "diffaug" else cfg.p  # DiffAugment transforms every image
    pipe = AugmentPipe(multipliers, value_range, p=p)
    if cfg.mode != "ada":
        return pipe, None
    controller = AdaController(pipe, cfg.target, cfg.speed_kimg * 1000, cfg.interval, cfg.p_max)
    return pipe, controller
