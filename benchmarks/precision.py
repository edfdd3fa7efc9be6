"""Does bf16 autocast change what a run learns? The default DCGAN (the README's first command) on
mnist5k at 32 px, in fp32 and in bf16, each for the same wall-clock budget on one CPU thread, over
several seeds; KID on the shipped digit classifier's features (2000 samples of the EMA generator)
against mnist5k. The issue's test: bf16's KID within fp32's seed-to-seed spread.

bf16 runs only where the CPU has native bf16 (AVX-512 BF16 or AMX; gankit refuses it where it would
be emulated). The speed of one step in each precision is benchmarks/throughput.py's job.

    python benchmarks/precision.py --only bf16:0 &  python benchmarks/precision.py --only fp32:0 &  wait
    python benchmarks/precision.py --table-only
    python benchmarks/precision.py --steps 1200        # equal steps instead: the numerics alone
                                                       # (results in benchmarks/results/precision/steps-1200)
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

import torch

from grid import load_results, per_seed, result_path, spread, train_and_score

OUT = Path("benchmarks/results/precision")
ARMS = ("fp32", "bf16")


def run(arm: str, seed: int, args) -> dict:
    from gankit.config import DataConfig
    from gankit.data import load_dataset
    from gankit.metrics import KID_MEAN
    from gankit.resolve import resolve_config
    from gankit.run import build_run

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    run_dir = out / "runs" / f"{arm}-seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    data_options = {"source": "mnist5k", "size": 32, "channels": 1}
    data = load_dataset(DataConfig(**data_options), progress=False)
    options = {"data": data_options, "seed": seed, "batch": args.batch, "precision": arm,
               **({"steps": args.steps} if args.steps else {"time_budget": args.seconds}),
               "progress": False, "log_every": 50,
               "sample_every": 10**9, "checkpoint_every": 10**9, "runs_dir": str(out / "runs")}
    run = build_run(resolve_config(options), run_dir=run_dir, data=data)
    result, seconds, scores = train_and_score(run, data, out / f"samples-{arm}-seed{seed}.png")
    kid = scores[KID_MEAN]
    return {"arm": arm, "seed": seed, "seconds": round(seconds, 1), "steps": result.step, "kid": kid,
            "threads": args.threads, "budget": f"{args.steps} steps" if args.steps else f"{args.seconds:g} s"}


def table(by_arm: dict[str, list[dict]]) -> str:
    """Per arm: steps in the budget, KID per seed, mean ± sd; and whether bf16's mean differs from
    fp32's by more than the seed-to-seed spread (the larger of the two arms' sds)."""
    lines = ["| precision | seeds | steps in the budget (median) | final KID per seed | mean ± sd |",
             "|---|---:|---:|---|---:|"]
    for arm, runs in by_arm.items():
        kids = [r["kid"] for r in runs]
        lines.append(f"| {arm} | {len(runs)} | {statistics.median(r['steps'] for r in runs):.0f} | "
                     f"{per_seed(kids)} | {spread(kids)} |")
    if all(arm in by_arm and len(by_arm[arm]) > 1 for arm in ARMS):
        kids = {arm: [r["kid"] for r in by_arm[arm]] for arm in ARMS}
        gap = statistics.mean(kids["bf16"]) - statistics.mean(kids["fp32"])
        noise = max(statistics.stdev(kids[arm]) for arm in ARMS)  # the larger seed-to-seed sd
        verdict = ("within the seed-to-seed spread" if abs(gap) <= noise else
                   "better than fp32 beyond the spread" if gap < 0 else "worse than fp32 beyond the spread")
        lines.append(f"\nbf16's mean KID minus fp32's: {gap:+.3f}, against a seed-to-seed sd of up to "
                     f"{noise:.3f}: {verdict}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--seconds", type=float, default=240, help="training budget of each run")
    parser.add_argument("--steps", type=int, default=None, help="train every run for this many steps instead of --seconds")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--only", default=None, help="ARM:SEED: train just this run and save its result")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    if args.steps and args.out == str(OUT):
        args.out = str(OUT / f"steps-{args.steps}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = ([tuple(args.only.split(":"))] if args.only else
            [] if args.table_only else [(a, s) for s in args.seeds.split(",") for a in args.arms.split(",")])
    for arm, seed in jobs:
        result = run(arm, int(seed), args)
        result_path(out, arm, int(seed)).write_text(json.dumps(result, indent=1))
        print(f"{arm} seed {seed}: KID {result['kid']:.4f} after {result['steps']} steps in {result['seconds']:.0f} s")
    by_arm = load_results(out, [a for a in ARMS])
    if by_arm:
        text = table(by_arm)
        (out / "table.md").write_text(text + "\n")
        print(text)


if __name__ == "__main__":
    main()
