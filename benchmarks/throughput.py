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
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from gankit.resolve import resolve_config
from gankit.run import build_run
from gankit.data import ImageData
from gankit.training.device import cpu_supports_bf16, reproducible
from gankit.training.trainer import Trainer

MODES = {
    # name: (precision, channels_last, update, augmentation options)
    "fp32-nchw-alternating": ("fp32", False, "alternating", {"mode": "none"}),
    "fp32-nchw-joint": ("fp32", False, "joint", {"mode": "none"}),
    "fp32-cl-joint": ("fp32", True, "joint", {"mode": "none"}),
    # StyleGAN2-ADA's bgc at p = 0.5, anti-aliased as the reference (the default) and plain bilinear
    "fp32-cl-joint-bgc0.5": ("fp32", True, "joint", {"mode": "fixed", "p": 0.5}),
    "fp32-cl-joint-bgc0.5-plain": ("fp32", True, "joint", {"mode": "fixed", "p": 0.5, "antialias": False}),
    "fp32-cl-joint-keras0.5": ("fp32", True, "joint", {"mode": "fixed", "p": 0.5, "pipe": "keras"}),
    "fp32-cl-joint-diffaug": ("fp32", True, "joint", {"mode": "diffaug"}),
    # kornia's modules for a similar chain (optional: pip install kornia), to choose between the two
    "fp32-cl-joint-kornia0.5": ("fp32", True, "joint", {"mode": "kornia", "p": 0.5}),
    "bf16-cl-joint": ("bf16", True, "joint", {"mode": "none"}),
    "fp32-cl-joint-compile": ("fp32", True, "joint", {"mode": "none"}),  # torch.compile'd G and D
    "bf16-cl-joint-compile": ("bf16", True, "joint", {"mode": "none"}),
    # GPU: `deterministic: false` (cuDNN's fastest kernels, grid_sample's atomics) against the
    # default deterministic modes above; on a CPU they are the same
    "fp32-cl-joint-fast": ("fp32", True, "joint", {"mode": "none"}),
    "fp32-cl-joint-bgc0.5-fast": ("fp32", True, "joint", {"mode": "fixed", "p": 0.5}),
}


def synchronize(device: str) -> None:
    """Wait for the GPU's queued work: without it a CUDA step would time only its launch."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 10, device: str = "cpu") -> float:
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    a @ b
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def synthetic_data(size: int, channels: int, n: int = 1024) -> ImageData:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)
    return ImageData(images=images, labels=None, class_names=None, name="synthetic", size=size,
                     channels=channels)


def kornia_pipeline(p: float) -> torch.nn.Module:
    """A bgc-like chain from kornia's modules: x-flip, one RandomAffine (any rotation, translation
    1/8, zoom 2^+-0.2), colour jitter, each module applied per sample with probability p. Less
    work than bgc (each *module* is decided per sample, not each op) and not anti-aliased."""
    import kornia.augmentation as K

    return K.AugmentationSequential(
        K.RandomHorizontalFlip(p=p),
        K.RandomAffine(degrees=180.0, translate=(0.125, 0.125), scale=(0.87, 1.15, 0.87, 1.15), p=p,
                       padding_mode="reflection"),
        K.ColorJitter(brightness=0.2, contrast=0.5, saturation=1.0, p=p),
    )


def build_trainer(mode: str, size: int, channels: int, batch: int, tmp: str, device: str = "cpu") -> Trainer:
    precision, channels_last, update, augment = MODES[mode]
    kornia = augment["mode"] == "kornia"
    config = resolve_config({"data": {"size": size, "channels": channels}, "batch": batch,
                             "precision": precision, "channels_last": channels_last,
                             "update": update, "runs_dir": tmp, "progress": False, "device": device,
                             "augment": {"mode": "none"} if kornia else augment,
                             "compile": mode.endswith("-compile"), "deterministic": not mode.endswith("-fast")})
    # each mode in its own folder: a run folder takes one trainer at a time (RunLock)
    run_dir = Path(tmp) / mode
    run_dir.mkdir(parents=True, exist_ok=True)
    with build_run(config, run_dir=run_dir, data=synthetic_data(size, channels), write_config=False) as run:
        trainer = run.trainer
    if kornia:
        trainer.ctx.augment = kornia_pipeline(augment["p"])
    return trainer


def one_step(trainer: Trainer) -> None:
    """One training step as the loop runs it, under the run's determinism settings (which the
    interleaved modes switch between)."""
    with reproducible(trainer.device, trainer.config.deterministic):
        trainer.update.step(trainer.ctx, trainer._next_batch, trainer.config.d_steps)
        trainer.ema.update(trainer.ctx.G)


def measure(modes: list[str], args) -> dict[str, dict]:
    """Time the modes' steps interleaved (one step of each in turn), so that a noisy neighbour on
    the machine slows every mode alike and the ratios between them hold."""
    trainers = {mode: build_trainer(mode, args.size, args.channels, args.batch, args.tmp, args.device)
                for mode in modes}
    flops = {}
    for mode, trainer in trainers.items():
        with FlopCounterMode(display=False) as counter:
            one_step(trainer)
        flops[mode] = counter.get_total_flops() / 1e9
        for _ in range(args.warmup):
            one_step(trainer)
    times = {mode: [] for mode in modes}
    for _ in range(args.steps):
        for mode, trainer in trainers.items():
            synchronize(args.device)
            start = time.perf_counter()
            one_step(trainer)
            synchronize(args.device)
            times[mode].append(time.perf_counter() - start)
    rows = {}
    for mode in modes:
        step_time = statistics.median(times[mode])
        rows[mode] = {"mode": mode, "images_per_s": round(args.batch / step_time, 1),
                      "gflop_per_image": round(flops[mode] / args.batch, 3),
                      "gflops": round(flops[mode] / step_time, 1),
                      "step_ms_median": round(step_time * 1000, 1),
                      "step_ms_min": round(min(times[mode]) * 1000, 1)}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=15, help="timed steps per mode, interleaved (median reported)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--tmp", default="/tmp/gankit-throughput")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the yardstick matmul runs there too)")
    args = parser.parse_args()

    torch.manual_seed(0)
    cuda = args.device.startswith("cuda")
    bf16_native = torch.cuda.is_bf16_supported() if cuda else cpu_supports_bf16()
    fp32_matmul = matmul_gflops(torch.float32, device=args.device)
    bf16_matmul = matmul_gflops(torch.bfloat16, device=args.device) if bf16_native else None
    modes = [m for m in args.modes.split(",") if m]
    skipped = {}
    for mode in modes:
        if MODES[mode][3]["mode"] == "kornia":
            try:
                import kornia  # noqa: F401
            except ImportError:
                skipped[mode] = "kornia is not installed"
        if MODES[mode][0] == "bf16" and not bf16_native:
            skipped[mode] = "no native bf16 here (CPU: AVX-512 BF16 / AMX; GPU: Ampere or later)"
    measured = measure([m for m in modes if m not in skipped], args)
    results = []
    for mode in modes:
        if mode in skipped:
            results.append({"mode": mode, "skipped": skipped[mode]})
            continue
        row = measured[mode]
        reference = bf16_matmul if MODES[mode][0] == "bf16" else fp32_matmul
        row["share_of_matmul"] = round(row["gflops"] / reference, 3)
        if "fp32-cl-joint" in measured and mode != "fp32-cl-joint" and MODES[mode][0] == "fp32":
            # the step's extra time over the plain step, measured interleaved with it
            plain = measured["fp32-cl-joint"]["step_ms_median"]
            row["overhead_vs_plain"] = round(row["step_ms_median"] / plain - 1, 3)
        results.append(row)
    fp32_best = max((r["images_per_s"] for r in results if r["mode"].startswith("fp32") and "images_per_s" in r), default=None)
    for r in results:
        if "images_per_s" in r and fp32_best:
            r["vs_best_fp32"] = round(r["images_per_s"] / fp32_best, 2)

    summary = {
        "benchmark": "throughput", "size": args.size, "channels": args.channels, "batch": args.batch,
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bf16_native": bf16_native, "matmul_fp32_gflops": round(fp32_matmul, 1),
        "matmul_bf16_gflops": round(bf16_matmul, 1) if bf16_matmul else None, "results": results,
    }
    print(f"matmul 2048^2: fp32 {fp32_matmul:.0f} GFLOP/s" +
          (f", bf16 {bf16_matmul:.0f} GFLOP/s" if bf16_matmul else ", bf16 not native on this CPU"))
    print(f"{'mode':<28}{'img/s':>8}{'GFLOP/img':>11}{'GFLOP/s':>9}{'of matmul':>11}{'step ms':>9}{'vs plain':>10}")
    for r in results:
        if "skipped" in r:
            print(f"{r['mode']:<28}  skipped: {r['skipped']}")
        else:
            extra = f"{r['overhead_vs_plain']:+.1%}" if "overhead_vs_plain" in r else ""
            print(f"{r['mode']:<28}{r['images_per_s']:>8}{r['gflop_per_image']:>11}{r['gflops']:>9}"
                  f"{r['share_of_matmul']:>11.0%}{r['step_ms_median']:>9}{extra:>10}")
    print(json.dumps(summary))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
