"""Does adaptive discriminator augmentation help on small data? A side-by-side at equal time.

Trains the default DCGAN at 32x32 on a 500-image subset of mnist5k (the first 50 of each digit)
with and without ADA, each for the same wall-clock budget, then scores each EMA generator by KID
with the digit classifier's features against the 4500 mnist5k digits neither run saw. Writes a
JSON of the results, a plot of p over training and the final sample grids.

    python benchmarks/ada.py --seconds 300          # ~12 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from gankit.config import DataConfig, resolve_config
from gankit.data import load_dataset
from gankit.metrics import KID_MEAN, KID_STD, compute_metrics, load_feature_extractor
from gankit.training.trainer import Trainer
from gankit.visualize import to_unit_range


def balanced_split(per_class: int):
    data = load_dataset(DataConfig(source="mnist5k", size=32, channels=1), progress=False)
    chosen = torch.cat([torch.nonzero(data.labels == c).squeeze(1)[:per_class] for c in range(10)])
    rest = torch.ones(len(data), dtype=torch.bool)
    rest[chosen] = False
    return data.subset(chosen.sort().values), data.subset(torch.nonzero(rest).squeeze(1))


def parse_mode(spec: str) -> tuple[str, dict]:
    """`none`, `ada`, `fixed`, `diffaug`, or `ada@0.7` (ADA with --ada-target 0.7)."""
    mode, _, target = spec.partition("@")
    return mode, ({"target": float(target)} if target else {})


def run(spec: str, train_data, held_out, args) -> dict:
    mode, augment_options = parse_mode(spec)
    tag = budget_tag(args)
    run_dir = Path(args.out) / f"run-{spec}{tag}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    config = resolve_config({
        "data": {"size": 32, "channels": 1}, "seed": args.seed,
        # equal wall clock by default; equal steps (--steps) when the machine is shared
        **({"steps": args.steps} if args.steps else {"time_budget": args.seconds}),
        "augment": {"mode": mode, **augment_options}, "progress": False, "log_every": 10,
        "sample_every": 10**9, "checkpoint_every": 10**9, "runs_dir": args.out,
        # KID over training against the unseen digits: shows whether D's overfitting starts to
        # cost G, which is the regime ADA is for
        "eval": {"every": args.eval_every, "n": args.eval_n, "features": "mnist"},
    })
    extractor = load_feature_extractor("mnist") if args.eval_every else None
    trainer = Trainer(config, train_data, run_dir, eval_data=held_out if args.eval_every else None,
                      extractor=extractor)
    start = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - start
    G = trainer.ema.model
    latents = torch.Generator().manual_seed(1234)
    scores = compute_metrics(
        lambda k: to_unit_range(G(torch.randn(k, G.latent_dim, generator=latents)), G.output_range),
        held_out, "mnist", n=args.n, metrics=("kid",), progress=False)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    shutil.copy(sorted((run_dir / "samples").glob("*.png"))[-1], Path(args.out) / f"ada-samples-{spec}{tag}.png")
    train_rows = [r for r in rows if "d/acc_real" in r]
    return {"augment": spec, "steps": result.step, "seconds": round(seconds, 1),
            "kimg": round(result.images_seen / 1000, 1), "kid": scores[KID_MEAN],
            "kid_std": scores[KID_STD], "final_p": rows[-1].get("augment/p", 0.0),
            "final_acc_real": rows[-1].get("d/acc_real"),
            "best_eval_kid": min((r["metrics/kid"] for r in rows if "metrics/kid" in r), default=None),
            "p_curve": [(r["step"], r.get("augment/p", 0.0)) for r in train_rows],
            "acc_curve": [(r["step"], r["d/acc_real"]) for r in train_rows],
            "kid_curve": [(r["step"], r["metrics/kid"]) for r in rows if "metrics/kid" in r]}


def budget_tag(args) -> str:
    return f"-{args.steps}steps" if args.steps else ""


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_kid = any(r.get("kid_curve") for r in results)
    fig, axes = plt.subplots(1, 3 if with_kid else 2, figsize=(15 if with_kid else 10, 3.6))
    ax_p, ax_acc = axes[0], axes[1]
    for r in results:
        steps, p = zip(*r["p_curve"])
        ax_p.plot(steps, p, label=f"{r['augment']} (KID {r['kid']:.3f})")
        steps, acc = zip(*r["acc_curve"])
        ax_acc.plot(steps, acc, label=r["augment"])
        if with_kid and r.get("kid_curve"):
            steps, kid = zip(*r["kid_curve"])
            axes[2].plot(steps, kid, marker="o", ms=3, label=r["augment"])
    if with_kid:
        # the first evaluation (noise-like samples) is 100x the rest: a linear axis scaled to the
        # later ones shows where the runs differ, and the first values are written in the title
        curves = [[k for _, k in r["kid_curve"]] for r in results if r.get("kid_curve")]
        later = [k for kids in curves for k in kids[1:]]
        first = ", ".join(f"{r['augment']} {r['kid_curve'][0][1]:.1f}" for r in results if r.get("kid_curve"))
        axes[2].set(xlabel="step", ylabel="KID (mnist features)",
                    title=f"KID of the EMA G vs unseen digits\n(first evaluation off the chart: {first})")
        if later:
            axes[2].set_ylim(0, 1.1 * max(later))
    ax_p.set(xlabel="step", ylabel="augmentation p", title="p over training")
    ax_acc.set(xlabel="step", ylabel="D accuracy on reals", title="D's overfitting signal")
    ax_acc.axhline(0.8, color="grey", lw=0.8, ls="--")  # r_t = 0.6 <=> accuracy 0.8
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--steps", type=int, default=None,
                        help="equal step budgets instead of equal time (robust on a busy machine)")
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--n", type=int, default=2000, help="generated images for KID")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--modes", default="none,ada",
                        help="comma-separated: none, ada, fixed, diffaug, ada@TARGET")
    parser.add_argument("--eval-every", type=int, default=None,
                        help="steps between KID evaluations during training (a KID curve)")
    parser.add_argument("--eval-n", type=int, default=1000, help="generated images per evaluation")
    parser.add_argument("--only", default=None,
                        help="train just this mode and save its result (run modes as parallel "
                             "processes); a later call without --only plots what was saved")
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    tag = budget_tag(args)
    modes = args.modes.split(",")
    if args.only:
        train_data, held_out = balanced_split(args.per_class)
        result = run(args.only, train_data, held_out, args)
        (Path(args.out) / f"ada{tag}-{args.only}.json").write_text(json.dumps(result, indent=1))
        return
    saved = {m: Path(args.out) / f"ada{tag}-{m}.json" for m in modes}
    if not all(path.exists() for path in saved.values()):
        train_data, held_out = balanced_split(args.per_class)
    results = [json.loads(saved[m].read_text()) if saved[m].exists()
               else run(m, train_data, held_out, args) for m in modes]
    plot(results, Path(args.out) / f"ada_p{tag}.png")
    summary = {"benchmark": "ada", "train_images": 10 * args.per_class,
               "eval_images": 5000 - 10 * args.per_class, "size": 32,
               "seconds_each": None if args.steps else args.seconds, "steps_each": args.steps,
               "features": "mnist", "n_fake": args.n, "torch": torch.__version__, "results": results}
    (Path(args.out) / f"ada{tag}.json").write_text(json.dumps(summary, indent=1))
    for r in results:
        print(f"{r['augment']:>5}: {r['steps']} steps, {r['kimg']} kimg, KID {r['kid']:.4f} "
              f"± {r['kid_std']:.4f}, final p {r['final_p']:.3f}, D real acc {r['final_acc_real']:.2f}")


if __name__ == "__main__":
    main()
