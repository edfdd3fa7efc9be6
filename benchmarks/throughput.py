"""Training throughput of the default DCGAN (keras-io GAN-ADA) at 64x64x3, batch 128.

For each mode it times full training steps (G and D updates and the EMA update, exactly as
`gankit train` runs them) and reports images/s, the achieved GFLOP/s, and that rate as a share of
a 2048x2048 matmul timed in the same run: the machine's own yardstick, so numbers from noisy or
different machines stay comparable. FLOPs per step are counted by torch's FlopCounterMode on the
real step (the issue's rule of thumb is ~1.9 GFLOP per image for the joint update).

    python benchmarks/throughput.py                 # all modes, table to stdout + JSON
    python benchmarks/throughput.py --modes fp32-cl-joint --steps 20
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from gankit.config import resolve_config
from gankit.data import ImageData
from gankit.training.trainer import Trainer, cpu_supports_bf16

MODES = {
    # name: (precision, channels_last, update, augmentation: (mode, p))
    "fp32-nchw-alternating": ("fp32", False, "alternating", ("none", 0.0)),
    "fp32-nchw-joint": ("fp32", False, "joint", ("none", 0.0)),
    "fp32-cl-joint": ("fp32", True, "joint", ("none", 0.0)),
    "fp32-cl-joint-aug0.5": ("fp32", True, "joint", ("fixed", 0.5)),  # ADA's ops at p = 0.5
    # the same ops from kornia (optional: pip install kornia), to choose between the two
    "fp32-cl-joint-kornia0.5": ("fp32", True, "joint", ("kornia", 0.5)),
    "bf16-cl-joint": ("bf16", True, "joint", ("none", 0.0)),
    "fp32-cl-joint-compile": ("fp32", True, "joint", ("none", 0.0)),  # torch.compile'd G and D
}


def matmul_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def synthetic_data(size: int, channels: int, n: int = 1024) -> ImageData:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)
    return ImageData(images=images, labels=None, class_names=None, name="synthetic", size=size,
                     channels=channels)


def kornia_pipeline(p: float) -> torch.nn.Module:
    """gankit's "ada" ops (x-flip, translation 1/8, rotation 1/8 turn, zoom 0.25 iso + aniso,
    brightness, contrast, saturation) as kornia modules, each applied per sample with probability
    p; RandomAffine does the geometric ops in one resampling, as gankit does."""
    import kornia.augmentation as K

    return K.AugmentationSequential(
        K.RandomHorizontalFlip(p=p),
        K.RandomAffine(degrees=45.0, translate=(0.125, 0.125), scale=(0.75, 1.25, 0.75, 1.25), p=p,
                       padding_mode="reflection"),
        K.ColorJitter(brightness=0.2, contrast=0.5, saturation=1.0, p=p),
    )


def build_trainer(mode: str, size: int, channels: int, batch: int, tmp: str) -> Trainer:
    precision, channels_last, update, (aug_mode, p) = MODES[mode]
    config = resolve_config({"data": {"size": size, "channels": channels}, "batch": batch,
                             "precision": precision, "channels_last": channels_last,
                             "update": update, "runs_dir": tmp, "progress": False,
                             "augment": {"mode": "none" if aug_mode == "kornia" else aug_mode, "p": p},
                             "compile": mode.endswith("-compile")})
    trainer = Trainer(config, synthetic_data(size, channels), run_dir=tmp)
    if aug_mode == "kornia":
        trainer.nets.augment = kornia_pipeline(p)
    return trainer


def one_step(trainer: Trainer) -> None:
    trainer.update.step(trainer.nets, trainer._next_batch, trainer.config.d_steps)
    trainer.ema.update(trainer.nets.G)


def measure(mode: str, args) -> dict:
    trainer = build_trainer(mode, args.size, args.channels, args.batch, args.tmp)
    with FlopCounterMode(display=False) as counter:
        one_step(trainer)
    gflop_per_step = counter.get_total_flops() / 1e9
    for _ in range(args.warmup):
        one_step(trainer)
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        one_step(trainer)
        times.append(time.perf_counter() - start)
    step_time = statistics.median(times)
    images_per_s = args.batch / step_time
    return {"mode": mode, "images_per_s": round(images_per_s, 1),
            "gflop_per_image": round(gflop_per_step / args.batch, 3),
            "gflops": round(gflop_per_step / step_time, 1),
            "step_ms_median": round(step_time * 1000, 1),
            "step_ms_min": round(min(times) * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=15, help="timed steps per mode (median reported)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--tmp", default="/tmp/gankit-throughput")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    torch.manual_seed(0)
    bf16_native = cpu_supports_bf16()
    fp32_matmul = matmul_gflops(torch.float32)
    bf16_matmul = matmul_gflops(torch.bfloat16) if bf16_native else None
    modes = [m for m in args.modes.split(",") if m]
    results = []
    for mode in modes:
        if MODES[mode][3][0] == "kornia":
            try:
                import kornia  # noqa: F401
            except ImportError:
                results.append({"mode": mode, "skipped": "kornia is not installed"})
                continue
        if MODES[mode][0] == "bf16" and not bf16_native:
            results.append({"mode": mode, "skipped": "CPU has no native bf16 (AVX-512 BF16 / AMX)"})
            continue
        row = measure(mode, args)
        reference = bf16_matmul if MODES[mode][0] == "bf16" else fp32_matmul
        row["share_of_matmul"] = round(row["gflops"] / reference, 3)
        results.append(row)
    fp32_best = max((r["images_per_s"] for r in results if r["mode"].startswith("fp32") and "images_per_s" in r), default=None)
    for r in results:
        if "images_per_s" in r and fp32_best:
            r["vs_best_fp32"] = round(r["images_per_s"] / fp32_best, 2)

    summary = {
        "benchmark": "throughput", "size": args.size, "channels": args.channels, "batch": args.batch,
        "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bf16_native": bf16_native, "matmul_fp32_gflops": round(fp32_matmul, 1),
        "matmul_bf16_gflops": round(bf16_matmul, 1) if bf16_matmul else None, "results": results,
    }
    print(f"matmul 2048^2: fp32 {fp32_matmul:.0f} GFLOP/s" +
          (f", bf16 {bf16_matmul:.0f} GFLOP/s" if bf16_matmul else ", bf16 not native on this CPU"))
    print(f"{'mode':<24}{'img/s':>8}{'GFLOP/img':>11}{'GFLOP/s':>9}{'of matmul':>11}{'step ms':>9}")
    for r in results:
        if "skipped" in r:
            print(f"{r['mode']:<24}  skipped: {r['skipped']}")
        else:
            print(f"{r['mode']:<24}{r['images_per_s']:>8}{r['gflop_per_image']:>11}{r['gflops']:>9}"
                  f"{r['share_of_matmul']:>11.0%}{r['step_ms_median']:>9}")
    print(json.dumps(summary))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
