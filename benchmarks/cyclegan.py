"""CycleGAN on an unpaired pair of domains made from shipped digits, for a fixed wall-clock budget.

Domain A is the first half of mnist5k's fixed shuffle (white strokes on black), domain B the
second half inverted (dark strokes on white); no digit appears in both. Training uses the first
2000 of each and `gankit`'s own path (recipe `cyclegan`, the `cycle` update, one pool of 50 per
discriminator, LSGAN, cycle 10, identity 5); the last 500 of each are held out. On those it
reports:

- cycle L1: mean |F(G(a)) - a| and |G(F(b)) - b|, pixels in [0, 1];
- target share: the share of translations that a logistic regression on pixels, trained on the
  real training images of both domains, puts in the target domain (its accuracy on held-out reals
  is reported beside it). The domains differ in global brightness, so this alone is an easy bar;
- digit kept: the share of translations whose digit, read by the shipped MNIST classifier (B
  images re-inverted first), is the digit of the source image; the share for the real images is
  the classifier's own ceiling (it was trained on all of mnist5k, so that ceiling is optimistic);
- L1 to truth: here the true counterpart of an image is known (1 - x), so a translation can be
  scored against it; "do nothing" (the input itself) scores about 0.93.

The networks are narrower than the paper's (width 16, 3 residual blocks at 32 px by default) so
that a few minutes on a CPU train them for several epochs; the learning rate is constant (the
decay needs a known number of steps, and a time budget has none). Writes a sample sheet (rows A,
A->B, A->B->A, B, B->A, B->A->B of held-out images) and the numbers as JSON.

    nice -n 10 python benchmarks/cyclegan.py --seconds 300      # ~6 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from gankit import load_translator, train
from gankit.config import DataConfig
from gankit.resolve import resolve_config
from gankit.tasks.translation import cycle_sheet
from gankit.data import DATASETS
from gankit.metrics import load_feature_extractor
from gankit.variants import DataSpec, get_recipe
from gankit.visualize import save_grid, to_unit_range

TRAIN, HELD_OUT = 2000, 500  # images per domain


def domains(size: int):
    """(train A, train B, held-out A, held-out B) ImageData; the built-ins split mnist5k in halves."""
    load = lambda name: DATASETS.get(name)(DataConfig(source=name, size=size, channels=1), False)  # noqa: E731
    a, b = load("mnist5k-a"), load("mnist5k-b")
    first, rest = torch.arange(TRAIN), torch.arange(TRAIN, TRAIN + HELD_OUT)
    return a.subset(first), b.subset(first), a.subset(rest), b.subset(rest)


def as_unit(data) -> torch.Tensor:
    return data.pixels().float() / 255  # (N, 1, S, S) in [0, 1]


def scores(translate, a, b, labels_a, labels_b, domain_classifier, digits) -> dict:
    """Every number of the module docstring for one translator (images in [0, 1] both ways)."""
    ab, ba = translate(a, "a2b"), translate(b, "b2a")
    aba, bab = translate(ab, "b2a"), translate(ba, "a2b")

    def share_in(images, domain):  # the logistic regression: 0 = A, 1 = B
        return float((domain_classifier.predict(images.flatten(1).numpy()) == domain).mean())

    def digit_kept(images, labels):
        return float((digits.predict_digits(images) == labels).float().mean())

    return {
        "cycle_l1_aba": float((aba - a).abs().mean()), "cycle_l1_bab": float((bab - b).abs().mean()),
        "target_share_a2b": share_in(ab, 1), "target_share_b2a": share_in(ba, 0),
        "digit_kept_a2b": digit_kept(1 - ab, labels_a), "digit_kept_b2a": digit_kept(ba, labels_b),
        "l1_to_truth_a2b": float((ab - (1 - a)).abs().mean()), "l1_to_truth_b2a": float((ba - (1 - b)).abs().mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300, help="training wall-clock budget")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--width", type=int, default=16, help="model.g_width and model.d_width")
    parser.add_argument("--blocks", type=int, default=3, help="residual blocks of each generator")
    parser.add_argument("--batch", type=int, default=8, help="images of each domain per step")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    run_dir = out / "run-cyclegan"
    shutil.rmtree(run_dir, ignore_errors=True)

    options = {"recipe": "cyclegan", "seed": args.seed, "batch": args.batch, "time_budget": args.seconds,
               "data": {"source": "mnist5k-a", "source_b": "mnist5k-b", "size": args.size, "channels": 1,
                        "limit": TRAIN,
                        # digits: no mirror images, and no 286 -> 256 style crops of 28 px strokes
                        "crop": "center", "jitter": 0.0, "mirror": False},
               "model": {"g_width": args.width, "d_width": args.width, "g_blocks": args.blocks},
               "optim": {"lr_g": args.lr, "lr_d": args.lr}, "progress": False, "log_every": 20,
               "sample_every": 10**9, "checkpoint_every": 10**9, "runs_dir": str(out), "name": run_dir.name}
    start = time.perf_counter()
    result = train(options)
    seconds = time.perf_counter() - start

    train_a, train_b, a_data, b_data = domains(args.size)
    a, b = as_unit(a_data), as_unit(b_data)
    from sklearn.linear_model import LogisticRegression

    reals = torch.cat([as_unit(train_a), as_unit(train_b)]).flatten(1).numpy()
    domain_classifier = LogisticRegression(max_iter=2000).fit(reals, [0] * TRAIN + [1] * TRAIN)
    digits = load_feature_extractor("mnist")
    measure = lambda translate: scores(translate, a, b, a_data.labels, b_data.labels,  # noqa: E731
                                       domain_classifier, digits)

    translator = load_translator(run_dir)
    trained = measure(translator.translate)
    config = resolve_config(options)
    torch.manual_seed(config.seed)  # the loop's initial weights: where training started
    untrained, _ = get_recipe("cyclegan").make(config.model, DataSpec(args.size, 1))
    untrained.eval()

    def translate_untrained(images, direction):
        with torch.no_grad():
            return to_unit_range(untrained(images * 2 - 1, direction), untrained.output_range)

    before = measure(translate_untrained)
    real = {"domain_classifier_accuracy": float((domain_classifier.predict(torch.cat([a, b]).flatten(1).numpy())
                                                 == [0] * HELD_OUT + [1] * HELD_OUT).mean()),
            "digit_classifier_accuracy": float((torch.cat([digits.predict_digits(a), digits.predict_digits(1 - b)])
                                                == torch.cat([a_data.labels, b_data.labels])).float().mean()),
            "do_nothing_l1_to_truth": float((a - (1 - a)).abs().mean())}

    sheet, nrow = cycle_sheet(translator.module, a[:8] * 2 - 1, b[:8] * 2 - 1)
    sheet_path = save_grid(sheet, out / "cyclegan-sheet.png", nrow=nrow)

    summary = {
        "benchmark": "cyclegan", "domains": "A: mnist5k-a (first half); B: mnist5k-b (second half, inverted)",
        "train_images_per_domain": TRAIN, "held_out_per_domain": HELD_OUT, "size": args.size,
        "model": config.model, "batch": args.batch, "lr": args.lr, "seconds_budget": args.seconds,
        "threads": torch.get_num_threads(), "steps": result.step, "pairs_seen": result.images_seen,
        "epochs": round(result.images_seen / TRAIN, 2), "train_seconds": round(seconds, 1),
        "trained": trained, "untrained": before, "reals": real, "sheet": str(sheet_path),
        "torch": torch.__version__,
    }
    (out / "cyclegan.json").write_text(json.dumps(summary, indent=1))
    print(f"{result.step} steps, {result.images_seen} pairs ({summary['epochs']} epochs) in {seconds:.0f} s")
    print(f"{'':<22}{'A->B':>10}{'B->A':>10}{'untrained A->B':>16}")
    for key in ("cycle_l1", "target_share", "digit_kept", "l1_to_truth"):
        name_ab = f"{key}_aba" if key == "cycle_l1" else f"{key}_a2b"
        name_ba = f"{key}_bab" if key == "cycle_l1" else f"{key}_b2a"
        print(f"{key:<22}{trained[name_ab]:>10.3f}{trained[name_ba]:>10.3f}{before[name_ab]:>16.3f}")
    print(f"reals: domain classifier {real['domain_classifier_accuracy']:.3f}, digit classifier "
          f"{real['digit_classifier_accuracy']:.3f}; do-nothing L1 to truth {real['do_nothing_l1_to_truth']:.3f}")
    print(f"wrote {out / 'cyclegan.json'} and {sheet_path}")


if __name__ == "__main__":
    main()
