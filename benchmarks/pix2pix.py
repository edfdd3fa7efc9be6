"""pix2pix on a paired task made from shipped digits: what the GAN term adds to L1 (the paper's
ablation, Isola et al. 2017, table 1: "L1" against "L1 + cGAN").

The task: complete a digit whose lower half is blanked (the built-in pair `mnist5k-masked`).
Training uses the first 4000 pairs of mnist5k through gankit's own path (recipe `pix2pix`, the
`pix2pix` update, U-Net and conditional PatchGAN); the last 500 are held out. Two arms, the same
seeds, steps and nets:

    l1        model.gan_weight=0: G learns from the L1 distance to the target alone
    pix2pix   the recipe's loss: GAN + 100 x L1

On the held-out pairs it reports:
- L1 to target: mean |G(x) - y| over the blanked lower half, pixels in [0, 1]; L1 alone is
  expected to win here, since it is what that arm minimises;
- digit read: the share of completions whose digit the shipped MNIST classifier reads as the
  true one (the masked inputs themselves, and the real targets, are reported beside it);
- KID of the completions against the held-out real digits, on the classifier's features: how
  much the completed digits look like digits. The paper's claim is that the GAN term buys this:
  L1 alone averages the possible lower halves into a blur.

Narrower nets than the paper's (width 16) at 32 px so that each run takes minutes on a CPU;
batches of 8 pairs rather than the reference's 1 (a CPU runs a batch of 8 in about the time of
one). Writes the numbers as JSON, a table, and a sheet of held-out inputs, completions by each
arm, and targets.

    nice -n 10 python benchmarks/pix2pix.py --steps 3000 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

import torch

from gankit import load_translator, train
from gankit.config import DataConfig
from gankit.data.builtin import load_mnist5k
from gankit.data.paired import mask_lower_half
from gankit.metrics import KID_MEAN, kid, load_feature_extractor
from gankit.visualize import save_grid

TRAIN, HELD_OUT = 4000, 500
ARMS = {"l1": {"gan_weight": 0.0}, "pix2pix": {}}


def held_out(size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(masked inputs, targets, labels) of mnist5k's last HELD_OUT digits, in [0, 1]."""
    digits = load_mnist5k(DataConfig(source="mnist5k", size=size, channels=1), False)
    last = torch.arange(len(digits) - HELD_OUT, len(digits))
    targets = digits.images[last]
    return mask_lower_half(targets).float() / 255, targets.float() / 255, digits.labels[last]


def scores(outputs, inputs, targets, labels, classifier) -> dict:
    half = targets.shape[-2] // 2
    feats = lambda x: classifier(x)  # noqa: E731
    return {
        "l1_lower_half": float((outputs - targets)[..., half:, :].abs().mean()),
        "digit_read": float((classifier.predict_digits(outputs) == labels).float().mean()),
        "kid": kid(feats(outputs), feats(targets), subset_size=len(outputs))[KID_MEAN],
    }


def run_arm(arm: str, seed: int, args, out: Path) -> dict:
    name = f"run-{arm}-seed{seed}"
    shutil.rmtree(out / name, ignore_errors=True)
    options = {"recipe": "pix2pix", "seed": seed, "batch": args.batch, "steps": args.steps,
               "data": {"source": "mnist5k-masked", "size": args.size, "channels": 1, "limit": TRAIN,
                        # digits: no mirror images, and no 286 -> 256 style crops of 28 px strokes
                        "crop": "center", "jitter": 0.0, "mirror": False},
               "model": {"g_width": args.width, "d_width": args.width, **ARMS[arm]},
               "progress": False, "log_every": 50, "sample_every": 10**9, "checkpoint_every": 10**9,
               "runs_dir": str(out), "name": name}
    start = time.perf_counter()
    result = train(options)
    return {"arm": arm, "seed": seed, "steps": result.step, "seconds": round(time.perf_counter() - start, 1),
            "run_dir": str(result.run_dir)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--width", type=int, default=16, help="model.g_width and model.d_width")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", default="benchmarks/results/pix2pix")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    inputs, targets, labels = held_out(args.size)
    classifier = load_feature_extractor("mnist")
    results, sheet_rows = [], {}
    for seed in args.seeds:
        for arm in ARMS:
            run = run_arm(arm, seed, args, out)
            translator = load_translator(run["run_dir"])
            outputs = translator.translate(inputs, "a2b", batch_size=250)
            run.update(scores(outputs, inputs, targets, labels, classifier))
            results.append(run)
            print(f"{arm} seed {seed}: " + ", ".join(f"{k} {run[k]:.4f}" for k in ("l1_lower_half", "digit_read", "kid")))
            if seed == args.seeds[0]:
                sheet_rows[arm] = outputs[:10]
    reference = {"masked_input": scores(inputs, inputs, targets, labels, classifier),
                 "targets": {"digit_read": float((classifier.predict_digits(targets) == labels).float().mean())}}
    lines = ["| arm | seeds | L1, lower half | digit read | KID vs real digits | s per run |", "|---|---|---|---|---|---|"]
    for arm in ARMS:
        rows = [r for r in results if r["arm"] == arm]

        def cell(key, rows=rows):
            values = [r[key] for r in rows]
            return f"{statistics.mean(values):.4f}" + (f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else "")

        lines.append(f"| {arm} | {len(rows)} | {cell('l1_lower_half')} | {cell('digit_read')} | {cell('kid')} "
                     f"| {statistics.median(r['seconds'] for r in rows):.0f} |")
    m = reference["masked_input"]
    lines.append(f"| masked input as is | - | {m['l1_lower_half']:.4f} | {m['digit_read']:.4f} | {m['kid']:.4f} | - |")
    lines.append(f"| real targets | - | 0 | {reference['targets']['digit_read']:.4f} | - | - |")
    table = "\n".join(lines)
    sheet = torch.cat([inputs[:10], sheet_rows["l1"], sheet_rows["pix2pix"], targets[:10]])
    sheet_path = save_grid(sheet, out / "pix2pix-sheet.png", nrow=10)
    (out / "table.md").write_text(table + "\n")
    (out / "pix2pix.json").write_text(json.dumps({
        "benchmark": "pix2pix", "task": "mnist5k-masked: complete the lower half", "train_pairs": TRAIN,
        "held_out": HELD_OUT, "size": args.size, "width": args.width, "batch": args.batch, "steps": args.steps,
        "threads": torch.get_num_threads(), "torch": torch.__version__, "runs": results,
        "reference": reference, "sheet": str(sheet_path)}, indent=1))
    print(table)
    print(f"wrote {out / 'pix2pix.json'}, {out / 'table.md'} and {sheet_path} (rows: input, l1, pix2pix, target)")


if __name__ == "__main__":
    main()
