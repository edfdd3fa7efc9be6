"""Adversarial losses, D's targets and gradient penalties; see adversarial.py, targets.py, penalties.py."""

from .adversarial import LOSSES, AdversarialLoss, get_loss
from .penalties import PENALTIES, Penalty
from .targets import TargetConfig, make_targets

__all__ = ["LOSSES", "AdversarialLoss", "get_loss", "PENALTIES", "Penalty", "TargetConfig", "make_targets"]
