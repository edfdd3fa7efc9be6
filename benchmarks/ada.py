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
from gankit.metrics import KID_MEAN, KID_STD, compute_metrics
from gankit.training.trainer import Trainer
from gankit.visualize import to_unit_range


def balanced_split(per_class: int):
    data = load_dataset(DataConfig(source="mnist5k", size=32, channels=1), progress=False)
    chosen = torch.cat([torch.nonzero(data.labels == c).squeeze(1)[:per_class] for c in range(10)])
    rest = torch.ones(len(data), dtype=torch.bool)
    rest[chosen] = False
    return data.subset(chosen.sort().values), data.subset(torch.nonzero(rest).squeeze(1))


def run(mode: str, train_data, held_out, args) -> dict:
    run_dir = Path(args.out) / f"run-{mode}{'-%dsteps' % args.steps if args.steps else ''}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    config = resolve_config({
        "data": {"size": 32, "channels": 1}, "seed": args.seed,
        # equal wall clock by default; equal steps (--steps) when the machine is shared
        **({"steps": args.steps} if args.steps else {"time_budget": args.seconds}),
        "augment": {"mode": mode}, "progress": False, "log_every": 10,
        "sample_every": 10**9, "checkpoint_every": 10**9, "runs_dir": args.out,
    })
    trainer = Trainer(config, train_data, run_dir)
    start = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - start
    G = trainer.ema.model
    latents = torch.Generator().manual_seed(1234)
    scores = compute_metrics(
        lambda k: to_unit_range(G(torch.randn(k, G.latent_dim, generator=latents)), G.output_range),
        held_out, "mnist", n=args.n, metrics=("kid",), progress=False)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    tag = f"-{args.steps}steps" if args.steps else ""
    shutil.copy(sorted((run_dir / "samples").glob("*.png"))[-1], Path(args.out) / f"ada-samples-{mode}{tag}.png")
    return {"augment": mode, "steps": result.step, "seconds": round(seconds, 1),
            "kimg": round(result.images_seen / 1000, 1), "kid": scores[KID_MEAN],
            "kid_std": scores[KID_STD], "final_p": rows[-1].get("augment/p", 0.0),
            "final_acc_real": rows[-1].get("d/acc_real"),
            "p_curve": [(r["step"], r.get("augment/p", 0.0)) for r in rows],
            "acc_curve": [(r["step"], r.get("d/acc_real")) for r in rows]}


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_p, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    for r in results:
        steps, p = zip(*r["p_curve"])
        ax_p.plot(steps, p, label=f"{r['augment']} (KID {r['kid']:.3f})")
        steps, acc = zip(*r["acc_curve"])
        ax_acc.plot(steps, acc, label=r["augment"])
    ax_p.set(xlabel="step", ylabel="augmentation p", title="p over training")
    ax_acc.set(xlabel="step", ylabel="D accuracy on reals", title="D's overfitting signal")
    ax_acc.axhline(0.8, color="grey", lw=0.8, ls="--")  # r_t = 0.6 <=> accuracy 0.8
    for ax in (ax_p, ax_acc):
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
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    train_data, held_out = balanced_split(args.per_class)
    results = [run(mode, train_data, held_out, args) for mode in ("none", "ada")]
    plot(results, Path(args.out) / f"ada_p{'-%dsteps' % args.steps if args.steps else ''}.png")
    summary = {"benchmark": "ada", "train_images": len(train_data), "eval_images": len(held_out),
               "size": 32, "seconds_each": None if args.steps else args.seconds, "steps_each": args.steps, "features": "mnist", "n_fake": args.n,
               "torch": torch.__version__, "results": results}
    tag = f"-{args.steps}steps" if args.steps else ""
    (Path(args.out) / f"ada{tag}.json").write_text(json.dumps(summary, indent=1))
    for r in results:
        print(f"{r['augment']:>5}: {r['steps']} steps, {r['kimg']} kimg, KID {r['kid']:.4f} "
              f"± {r['kid_std']:.4f}, final p {r['final_p']:.3f}, D real acc {r['final_acc_real']:.2f}")


if __name__ == "__main__":
    main()
