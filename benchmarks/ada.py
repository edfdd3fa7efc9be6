"""What does augmenting D's view buy on a small dataset? Every arm, several seeds, one table.

Trains the default DCGAN (the keras-io GAN-ADA nets) at 32x32 on a small balanced subset of
mnist5k (`--per-class` digits of each class) with each arm of augmentation for the same number of
steps, and scores the EMA generator by KID with the shipped digit classifier's features against
the mnist5k digits no run saw: every `--eval-every` steps during training (1000 samples) and at the
end (2000 samples). Arms:

    none       D sees the training images as they are
    ada        StyleGAN2-ADA's bgc pipeline, p adapted by the reference's controller (r_t -> 0.6)
    ada-keras  the keras-io example's augmenter and controller (D's accuracy on reals -> 0.85)
    diffaug    DiffAugment, color,translation,cutout on every image
    fixed      the bgc pipeline at a constant p (--fixed-p)
    ada-plain  ada without anti-aliased resampling (plain bilinear)
    ada-500    ada at the reference's default speed, ada_kimg 500

Each run is one process on one CPU thread (`--threads`); run arms and seeds side by side, then
build the table and plot from the saved results:

    python benchmarks/ada.py --only ada:0 &  python benchmarks/ada.py --only none:0 &  wait
    python benchmarks/ada.py --table-only
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

import torch

from grid import load_results, per_seed, ratio, result_path, spread, train_and_score

ARMS = {
    "none": {"mode": "none"},
    "ada": {"mode": "ada", "pipe": "bgc"},
    "ada-keras": {"mode": "ada", "pipe": "keras"},
    "diffaug": {"mode": "diffaug"},
    "fixed": {"mode": "fixed", "pipe": "bgc"},
    "ada-plain": {"mode": "ada", "pipe": "bgc", "antialias": False},
    "ada-500": {"mode": "ada", "pipe": "bgc", "ada_kimg": 500.0},
}
OUT = Path("benchmarks/results/ada")


def balanced_split(per_class: int):
    from gankit.config import DataConfig
    from gankit.data import load_dataset

    data = load_dataset(DataConfig(source="mnist5k", size=32, channels=1), progress=False)
    chosen = torch.cat([torch.nonzero(data.labels == c).squeeze(1)[:per_class] for c in range(10)])
    rest = torch.ones(len(data), dtype=torch.bool)
    rest[chosen] = False
    return data.subset(chosen.sort().values), data.subset(torch.nonzero(rest).squeeze(1))


def arm_options(arm: str, args) -> dict:
    options = dict(ARMS[arm])
    if options["mode"] == "ada":
        options.setdefault("ada_kimg", args.ada_kimg)
    if options["mode"] == "fixed":
        options["p"] = args.fixed_p
    return options


def run(arm: str, seed: int, args) -> dict:
    from gankit.config import load_preset
    from gankit.resolve import resolve_config
    from gankit.run import build_run
    from gankit.metrics import KID_MEAN, KID_STD, load_feature_extractor

    torch.set_num_threads(args.threads)
    train_data, held_out = balanced_split(args.per_class)
    out = Path(args.out)
    run_dir = out / "runs" / f"{arm}-seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    augment = arm_options(arm, args)
    preset = load_preset(args.config) if args.config else {}
    config = resolve_config({
        **preset,
        "data": {"size": 32, "channels": 1}, "seed": seed, "batch": args.batch, "steps": args.steps,
        "augment": augment, "progress": False, "log_every": 10, "sample_every": 10**9,
        "checkpoint_every": 10**9, "runs_dir": str(out / "runs"),
        "eval": {"every": args.eval_every, "n": 1000, "features": "mnist"},
    })
    run = build_run(config, run_dir=run_dir, data=train_data, held_out=held_out,
                    extractor=load_feature_extractor("mnist"))
    result, seconds, scores = train_and_score(run, held_out, out / f"samples-{arm}-seed{seed}.png")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "d/sign_real" in r]
    kid_rows = [r for r in rows if "metrics/kid" in r]
    return {
        "arm": arm, "seed": seed, "config": args.config or "dcgan", "per_class": args.per_class,
        "augment": augment, "steps": result.step, "seconds": round(seconds, 1),
        "kimg": round(result.images_seen / 1000, 1), "kid": scores[KID_MEAN], "kid_std": scores[KID_STD],
        "best_eval_kid": min((r["metrics/kid"] for r in kid_rows), default=None),
        "final_p": train_rows[-1].get("augment/p", 0.0),
        "final_r_t": statistics.mean(r["d/sign_real"] for r in train_rows[-20:]),
        "curves": {"step": [r["step"] for r in train_rows],
                   "p": [r.get("augment/p", 0.0) for r in train_rows],
                   "r_t": [r["d/sign_real"] for r in train_rows],
                   "kid_step": [r["step"] for r in kid_rows],
                   "kid": [r["metrics/kid"] for r in kid_rows]},
    }


def table(by_arm: dict[str, list[dict]]) -> str:
    """One row per arm. Medians beside means: one collapsed run (KID > 1) would make a mean say
    more about that run than about the arm."""
    baseline = statistics.median(r["kid"] for r in by_arm["none"]) if "none" in by_arm else None
    lines = ["| arm | seeds | final KID per seed | median | × none (medians) | mean ± sd | best KID during "
             "training, median | p at the end | r_t at the end | s per run |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for arm, runs in by_arm.items():
        kids = [r["kid"] for r in runs]
        lines.append(
            f"| {arm} | {len(runs)} | {per_seed(kids)} | {statistics.median(kids):.3f} | "
            f"{ratio(kids, baseline)} | {spread(kids)} | {statistics.median(r['best_eval_kid'] for r in runs):.3f} | "
            f"{spread([r['final_p'] for r in runs])} | {spread([r['final_r_t'] for r in runs])} | "
            f"{statistics.mean(r['seconds'] for r in runs):.0f} |")
    return "\n".join(lines)


def plot(by_arm: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_p, ax_r, ax_kid) = plt.subplots(1, 3, figsize=(16, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (arm, runs), colour in zip(by_arm.items(), colours):
        for i, r in enumerate(runs):
            c = r["curves"]
            label = arm if i == 0 else None
            ax_p.plot(c["step"], c["p"], color=colour, alpha=0.7, lw=1, label=label)
            ax_r.plot(c["step"], _smooth(c["r_t"]), color=colour, alpha=0.7, lw=1, label=label)
            ax_kid.plot(c["kid_step"], c["kid"], color=colour, alpha=0.7, lw=1, marker="o", ms=2, label=label)
    ax_p.set(xlabel="step", ylabel="augmentation p", title="p (each seed a line)")
    ax_r.set(xlabel="step", ylabel="r_t = E[sign D(real)]", title="D's overfitting signal r_t (smoothed)")
    ax_r.axhline(0.6, color="grey", lw=0.8, ls="--")
    # log scale: a collapse (KID > 1) and the differences near 0.15 both stay visible
    ax_kid.set(xlabel="step", ylabel="KID (mnist features, log scale)", yscale="log",
               title="KID of the EMA G vs unseen digits")
    for ax in (ax_p, ax_r, ax_kid):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _smooth(values: list[float], window: int = 10) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", default="none,ada,ada-keras,diffaug,fixed")
    parser.add_argument("--seeds", default="0,1,2")
    # the README's grid: 50 digits, 6000 steps (~35 min a run on one free core of the 2-core AVX2 EPYC)
    parser.add_argument("--per-class", type=int, default=5, help="training digits per class")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--config", default=None,
                        help="a preset for the nets (default: the dcgan recipe, the keras example's)")
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--ada-kimg", type=float, default=10.0,
                        help="ADA's speed for the ada arms (the reference's 500 is the ada-500 arm)")
    parser.add_argument("--fixed-p", type=float, default=0.3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--only", default=None, help="ARM:SEED: train just this run and save its result")
    parser.add_argument("--table-only", action="store_true", help="table and plot from the saved results")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.only:
        arm, _, seed = args.only.partition(":")
        result = run(arm, int(seed or 0), args)
        result_path(out, arm, result["seed"]).write_text(json.dumps(result, indent=1))
        print(f"{arm} seed {result['seed']}: KID {result['kid']:.4f} (best during training "
              f"{result['best_eval_kid']:.4f}), p {result['final_p']:.3f}, {result['seconds']:.0f} s")
        return
    if not args.table_only:
        for arm in args.arms.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                if not result_path(out, arm, seed).exists():
                    result_path(out, arm, seed).write_text(json.dumps(run(arm, seed, args), indent=1))
    by_arm = load_results(out, ARMS)
    plot(by_arm, out / "ada-curves.png")
    text = table(by_arm)
    (out / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
