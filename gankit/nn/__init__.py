"""Layers shared by several architectures."""

from .layers import (MinibatchDiscrimination, MinibatchStdDev, ShiftOnlyBatchNorm, ShiftOnlySyncBatchNorm,
                     convert_sync_batchnorm, freeze_blocks, spectral_normalize, split_at)

__all__ = ["MinibatchDiscrimination", "MinibatchStdDev", "ShiftOnlyBatchNorm", "ShiftOnlySyncBatchNorm",
           "convert_sync_batchnorm", "freeze_blocks", "spectral_normalize", "split_at"]
