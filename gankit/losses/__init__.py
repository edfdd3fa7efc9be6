"""Adversarial losses, D's targets and gradient penalties; see adversarial.py, targets.py, penalties.py."""

from ..errors import GankitError
from .adversarial import LOSSES, AdversarialLoss, get_loss
from .penalties import PENALTIES, Penalty
from .targets import TargetConfig, make_targets

__all__ = ["LOSSES", "AdversarialLoss", "get_loss", "PENALTIES", "Penalty", "TargetConfig", "check_config",
           "make_targets"]


def check_config(config) -> None:
    """The loss, its targets and penalty, and what reads D's decision boundary."""
    loss = LOSSES.get(config.loss)  # registries: a typo fails before any data is loaded
    if config.penalty != "none":
        PENALTIES.get(config.penalty)
    if config.penalty_weight is not None and config.penalty_weight < 0:
        raise GankitError(f"penalty_weight={config.penalty_weight} must be 0 or more")
    if config.penalty_every < 1:
        raise GankitError(f"option penalty_every={config.penalty_every} must be at least 1")
    targets = config.targets
    if not (0.0 <= targets.smoothing < 0.5 and 0.0 <= targets.noise <= 0.5 and 0.0 <= targets.flip < 0.5):
        raise GankitError("targets.smoothing and targets.flip must be in [0, 0.5) and targets.noise in "
                          "[0, 0.5] (0.1, 0.1 and 0.05 are usual)")
    if targets.active and not loss.uses_targets:
        raise GankitError(f"the {config.loss} loss has no targets to smooth, noise or flip: use "
                          "--loss nonsaturating / lsgan, or drop the targets options")
    if config.d_skip_below is not None and config.d_skip_below <= 0:
        raise GankitError(f"d_skip_below={config.d_skip_below} must be positive (or unset)")
    if loss.boundary is None and (config.augment.mode == "ada" or config.d_skip_below is not None):
        raise GankitError(
            f"the {config.loss} loss has no real/fake boundary, so D's overfitting signal (ADA) and "
            "D-skip have nothing to read: use --aug fixed|diffaug|none and no --d-skip-below, or "
            "another --loss")
