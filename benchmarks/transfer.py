"""What starting from a trained GAN buys on 50 images: from scratch vs fine-tuned vs FreezeD.

The source (`--source`): the shipped pretrained model `dcgan-mnist04`, the default DCGAN (the
keras-io GAN-ADA nets) trained at 32 px on the digits 0-4 of mnist5k by
`python scripts/make_pretrained.py dcgan-mnist04`; or another, e.g. a source of the target's own
kind, `scripts/make_pretrained.py dcgan-digits59 --out DIR` (UCI digits 5-9), given as DIR's
file (its arms are stored as ARM-lrRATE-from-dcgan-digits59). The target: `--per-class` images of
each of the digits 5-9 (50 by default). Each arm trains on the target for the same wall-clock
budget (`--seconds`, one CPU thread) and is scored by KID, on the shipped digit classifier's
features, against the digits 5-9 no run saw — every `--eval-every` steps during training (KID
against time) and at the end with 2000 samples:

    scratch     new nets, ADA (the default run on 50 images)
    finetune    --init-from the source, ADA
    freezeN     --init-from the source, ADA, --freeze-d N (FreezeD; N from --freeze)

`--lr` sets both Adam learning rates of every arm (default: the recipe's 2e-4); an arm run at another
rate is stored as ARM-lrRATE (e.g. `finetune-lr0.001`) in the same folder, so one table and one plot
hold both. The baseline of the "× baseline" and "time to reach" columns is the scratch arm (at any
rate) with the lowest median final KID: fine-tuning is compared with the best scratch run found.

Writes one JSON per run, a table (medians and spreads over seeds; the time each arm needed to
reach the scratch arm's final KID; the memorisation check: 64 samples' nearest training image
against the 50 images' distances to each other, by pixel L1 and digit features, as `gankit
nearest` does), the KID-against-time curves, a sample grid and a nearest-neighbour picture per run.

    python benchmarks/transfer.py --only finetune:0 &  python benchmarks/transfer.py --only scratch:0 &  wait
    python benchmarks/transfer.py --only finetune:0 --lr 1e-3
    python benchmarks/transfer.py --table-only
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

import torch

from grid import load_results, per_seed, ratio, result_path, train_and_score

OUT = Path("benchmarks/results/transfer")
SOURCE_CLASSES, TARGET_CLASSES = range(0, 5), range(5, 10)
RECIPE_LR = 2e-4  # the dcgan recipe's Adam rate for G and D (OptimConfig)


DEFAULT_SOURCE = "dcgan-mnist04"


def arm_name(arm: str, lr: float, source: str = DEFAULT_SOURCE) -> str:
    """The name a run's result is stored and tabled under: the arm, with its rate unless the
    recipe's, and its source unless the default (e.g. finetune-lr0.001-from-dcgan-digits59)."""
    name = arm if lr == RECIPE_LR else f"{arm}-lr{lr:g}"
    return name if arm == "scratch" or source == DEFAULT_SOURCE else f"{name}-from-{Path(source).stem}"


def base_arm(name: str) -> str:
    return name.split("-from-")[0].split("-lr")[0]


def family(name: str) -> str:
    """The arm and its source, without the rate: one colour in the plot, one label in the table."""
    source = name.split("-from-")[1] if "-from-" in name else None
    return base_arm(name) + (f" from {source}" if source else "")


def digits(classes, per_class: int | None = None):
    """(chosen, the rest) of mnist5k's digits of `classes`: per_class of each, in file order."""
    from gankit.config import DataConfig
    from gankit.data import load_dataset

    data = load_dataset(DataConfig(source="mnist5k", size=32, channels=1), progress=False)
    members = [torch.nonzero(data.labels == c).squeeze(1) for c in classes]
    chosen = torch.cat([m[:per_class] if per_class else m for m in members]).sort().values
    rest = torch.cat([m[per_class:] for m in members]).sort().values if per_class else torch.tensor([], dtype=torch.long)
    return data.subset(chosen), (data.subset(rest) if len(rest) else None)


def base_options(args, seed: int, out: Path) -> dict:
    return {"data": {"source": "mnist5k", "size": 32, "channels": 1}, "seed": seed, "batch": args.batch,
            "augment": {"mode": "ada", "ada_kimg": args.ada_kimg}, "progress": False, "log_every": 10,
            "sample_every": 10**9, "checkpoint_every": 10**9, "runs_dir": str(out / "runs"),
            "optim": {"lr_g": args.lr, "lr_d": args.lr}}


def run(arm: str, seed: int, args) -> dict:
    from gankit.metrics import KID_MEAN, load_feature_extractor
    from gankit.metrics.memorisation import NEAREST, check_memorisation
    from gankit.resolve import resolve_config
    from gankit.run import build_run
    from gankit.transfer import resolve_init

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    train_data, held_out = digits(TARGET_CLASSES, args.per_class)
    name = arm_name(arm, args.lr, args.source)
    run_dir = out / "runs" / f"{name}-seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    options = {**base_options(args, seed, out), "time_budget": args.seconds,
               "eval": {"every": args.eval_every, "n": 1000, "features": "mnist"}}
    init = None
    if arm != "scratch":
        options["init_from"] = args.source
        if arm.startswith("freeze"):
            options["freeze_d"] = int(arm.removeprefix("freeze"))
        options, init = resolve_init(options)
    run = build_run(resolve_config(options), init=init, run_dir=run_dir, data=train_data,
                    held_out=held_out, extractor=load_feature_extractor("mnist"))
    result, seconds, scores = train_and_score(run, held_out, out / f"samples-{name}-seed{seed}.png")
    kid = scores[KID_MEAN]
    # does it copy its 50 images? `gankit nearest` on the run, against the images it trained on
    check = check_memorisation(run_dir, n=64, k=3, features="mnist", out=out / f"nearest-{name}-seed{seed}.png",
                               n_reference=len(train_data), train=train_data)
    copies = {metric: {key: value for key, value in report.summary().items() if key != NEAREST}
              for metric, report in check.reports.items()}
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    kid_rows = [r for r in rows if "metrics/kid" in r]
    t0 = rows[0]["time"] if rows else 0.0
    return {"arm": name, "lr": args.lr, "seed": seed, "per_class": args.per_class, "seconds": round(seconds, 1),
            "steps": result.step, "kid": kid, "memorisation": copies,
            "curve": {"seconds": [round(r["time"] - t0, 1) for r in kid_rows], "kid": [r["metrics/kid"] for r in kid_rows]}}


def seconds_to_reach(curve: dict, level: float) -> float | None:
    return next((s for s, k in zip(curve["seconds"], curve["kid"]) if k <= level), None)


def kid_at(curve: dict, seconds: float) -> float | None:
    """The KID of the last evaluation at or before `seconds` of training (None before the first)."""
    return next((k for s, k in zip(reversed(curve["seconds"]), reversed(curve["kid"])) if s <= seconds), None)


def kid_at_text(runs: list[dict], seconds: float) -> str:
    kids = [k for k in (kid_at(r["curve"], seconds) for r in runs) if k is not None]
    return f"{statistics.median(kids):.2f}" if len(kids) == len(runs) else "-"


def best_scratch(by_arm: dict[str, list[dict]]) -> str | None:
    """The scratch arm (any learning rate) with the lowest median final KID: the baseline."""
    scratches = [arm for arm in by_arm if base_arm(arm) == "scratch"]
    return min(scratches, key=lambda arm: statistics.median(r["kid"] for r in by_arm[arm]), default=None)


def table(by_arm: dict[str, list[dict]], checkpoints: tuple[float, ...] = ()) -> str:
    """One row per arm; `checkpoints`: the times (s) at which each arm's median KID is also shown."""
    baseline = best_scratch(by_arm)
    scratch = statistics.median(r["kid"] for r in by_arm[baseline]) if baseline else None
    lines = [f"Baseline of the × and time columns: `{baseline}` (the scratch arm with the lowest median final KID).\n"] if baseline else []
    lines += ["| arm | Adam lr | seeds | final KID per seed | median | × baseline | s to reach the baseline's final KID (median) "
             "| nearest-train distance ÷ train-to-train (L1; features) | samples flagged as copies |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    if checkpoints:  # KID along the way: what a shorter budget would have bought
        lines[-2] = lines[-2].replace(" | × baseline", "".join(f" | KID at {t:.0f} s" for t in checkpoints) + " | × baseline")
        lines[-1] += "---:|" * len(checkpoints)
    for arm, runs in by_arm.items():
        kids = [r["kid"] for r in runs]
        reach = [seconds_to_reach(r["curve"], scratch) for r in runs] if scratch is not None else []
        reached = [s for s in reach if s is not None]
        reach_text = f"{statistics.median(reached):.0f} ({len(reached)} of {len(runs)} seeds)" if reached else "-"
        copies = [r["memorisation"] for r in runs if "memorisation" in r]
        ratios = "; ".join(f"{statistics.median(c[m]['ratio'] for c in copies):.2f}"
                           for m in ("l1", "features") if copies and all(m in c for c in copies)) or "-"
        flagged = (f"{sum(len(c['l1']['flagged']) for c in copies)} of {64 * len(copies)}" if copies else "-")
        lines.append(f"| {family(arm)} | {runs[0].get('lr', RECIPE_LR):g} | {len(runs)} | {per_seed(kids)} | "
                     f"{statistics.median(kids):.3f} | {''.join(kid_at_text(runs, t) + ' | ' for t in checkpoints)}{ratio(kids, scratch)} | {reach_text} | {ratios} | {flagged} |")
    return "\n".join(lines)


def plot(by_arm: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colours: dict[str, str] = {}
    for arm, runs in by_arm.items():  # one colour per arm, solid at the recipe's rate, dashed at another
        colour = colours.setdefault(family(arm), cycle[len(colours) % len(cycle)])
        style = "--" if "-lr" in arm else "-"
        for i, r in enumerate(runs):
            ax.plot(r["curve"]["seconds"], r["curve"]["kid"], color=colour, linestyle=style, alpha=0.7,
                    marker="o", ms=2, label=f"{family(arm)}, Adam {r.get('lr', RECIPE_LR):g}" if i == 0 else None)
    baseline = best_scratch(by_arm)
    if baseline:
        ax.axhline(statistics.median(r["kid"] for r in by_arm[baseline]), color="grey", linewidth=0.8,
                   linestyle=":", label=f"{baseline}: median final KID")
    ax.set(xlabel="seconds of training (one CPU thread)", ylabel="KID vs unseen digits 5-9 (log scale)",
           yscale="log", title="From scratch vs fine-tuned (from MNIST 0-4, or from UCI digits 5-9)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", default="scratch,finetune,freeze1,freeze2")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=1200, help="training budget of each target run")
    parser.add_argument("--source", default=DEFAULT_SOURCE,
                        help="the model to fine-tune: a pretrained name (made by scripts/make_pretrained.py), a run or a checkpoint")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--ada-kimg", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lr", type=float, default=RECIPE_LR, help="Adam learning rate of G and D in every arm")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--only", default=None, help="ARM:SEED: train just this run and save its result")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = ([tuple(args.only.split(":"))] if args.only else
            [] if args.table_only else [(a, s) for s in args.seeds.split(",") for a in args.arms.split(",")])
    for arm, seed in jobs:
        result = run(arm, int(seed), args)
        result_path(out, result["arm"], int(seed)).write_text(json.dumps(result, indent=1))
        print(f"{result['arm']} seed {seed}: KID {result['kid']:.4f} after {result['steps']} steps in {result['seconds']:.0f} s")
    found = load_results(out)
    order = ["scratch", "finetune"] + sorted({base_arm(a) for a in found if a.startswith("freeze")})
    by_arm = load_results(out, sorted(found, key=lambda a: (order.index(base_arm(a)) if base_arm(a) in order else 99, a)))
    if by_arm:
        plot(by_arm, out / "transfer-curves.png")
        text = table(by_arm, checkpoints=tuple(args.seconds * f for f in (0.1, 0.25, 0.5)))
        (out / "table.md").write_text(text + "\n")
        print(text)


if __name__ == "__main__":
    main()
