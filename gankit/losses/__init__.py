"""Adversarial losses as pure functions of D's logits; see adversarial.py."""

from .adversarial import LOSSES, AdversarialLoss, get_loss

__all__ = ["LOSSES", "AdversarialLoss", "get_loss"]
