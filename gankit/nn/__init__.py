"""Layers shared by several architectures."""

from .layers import MinibatchDiscrimination, MinibatchStdDev, ShiftOnlyBatchNorm, spectral_normalize

__all__ = ["MinibatchDiscrimination", "MinibatchStdDev", "ShiftOnlyBatchNorm", "spectral_normalize"]
