"""Which device a run trains on, and what precision that device can do natively."""

from __future__ import annotations

import contextlib

import torch

from ..errors import GankitError
from . import distributed


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
