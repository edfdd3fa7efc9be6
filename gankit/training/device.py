"""Which device a run trains on, and what precision that device can do natively."""

from __future__ import annotations

import contextlib
import os
import warnings

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


@contextlib.contextmanager
def reproducible(device: torch.device, on: bool):
    """While training on a GPU with `deterministic: true`: torch's deterministic algorithms (with
    the cuBLAS workspace setting they need), cuDNN's deterministic kernels and no autotuner, so one
    seed gives one run and a resumed run matches an unbroken one, as on the CPU. The augmentations'
    resampling follows (augment/sampling.py). warn_only: an op with no deterministic kernel warns
    rather than stopping a run. The previous torch settings come back afterwards (the Python API
    may be one part of a longer program). CPUs need none of this: their kernels are deterministic."""
    if device.type != "cuda" or not on:
        yield
        return
    if "CUBLAS_WORKSPACE_CONFIG" not in os.environ:
        # cuBLAS reads it when it first starts in the process; later it no longer applies (it is
        # left set: cuBLAS cannot take it back either)
        if torch.cuda.is_initialized():
            warnings.warn("deterministic: CUDA was in use before training started, so cuBLAS may not be "
                          "deterministic: set CUBLAS_WORKSPACE_CONFIG=:4096:8 before starting Python")
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    # a caller's own strict mode stays strict
    torch.use_deterministic_algorithms(True, warn_only=before[1] if before[0] else True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2], before[3]
