"""Layers shared by several architectures."""

from .layers import ShiftOnlyBatchNorm

__all__ = ["ShiftOnlyBatchNorm"]
