"""The recipe zoo: every recipe and preset on mnist5k for the same wall-clock budget.

For each entry: train on all 5000 mnist5k digits (28 px, or 32 / 64 px where the nets need a power
of two) for --seconds, then score the EMA generator with the shipped digit classifier (an entry
with eval.every trains on 90%, evaluates on the rest and is scored at its best.pt):
  KID         against the 5000 training digits, mnist features (lower is better)
  coverage    digits (of 10) that get at least 2.5% of 2000 samples (a quarter of their share)
  confident   share of samples the classifier calls with probability > 0.9: recognisable digits
  label acc   conditional recipes: share of samples classified as the label they were asked for
  img/s       real images drawn per second of training (critic steps draw their own batches)
Writes benchmarks/results/zoo/<name>-<seconds>s.png (a sample grid; one row per class for
conditional recipes) and .json, and zoo-<seconds>s.json / .md (the README's table).

    python benchmarks/zoo.py --seconds 360        # ~2 hours (all entries one after another)
    python benchmarks/zoo.py --only cgan,wgan-gp  # a subset
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

import torch

from gankit.config import load_preset, merge
from gankit.resolve import resolve_config
from gankit.run import build_run
from gankit.data import load_dataset
from gankit.metrics import KID_MEAN, KID_STD, compute_metrics, load_feature_extractor
from gankit.models.conditional import class_rows
from gankit.training.checkpoint import best_path, load_checkpoint
from gankit.visualize import save_grid, to_unit_range

# The budget is CPU minutes, so the zoo trains everything with batches of 32 (more updates for the
# same images; per-image cost is the same) and runs the loss and trick entries on one shared, lighter
# pair of nets: the Hands-On ML DCGAN's sizes (G 7x7x128 -> ConvT 64 -> image, D conv 64/128, 5x5),
# so that a column compares losses, not architectures. The book presets keep their own nets.
# Sizes: the book models are 28 px; the keras DCGAN and the LEGO nets need a power of two, so 32 px
# (and the LEGO preset once more at its own 64 px).
SMALL_BATCH = {"batch": 32}
LEGO_32PX = {"g_widths": [256, 128, 64], "g_strides": [2, 2, 2], "d_widths": [64, 128, 256]}
SHARED_NETS = {"batch": 32, "model": {"g_widths": [128, 64], "g_strides": [2, 2], "d_widths": [64, 128]}}
ADAM_2E4 = {"lr_g": 2e-4, "lr_d": 2e-4}  # the DCGAN paper's rate, which the acgan preset had first
# (name, preset or recipe, overrides, what the overrides change, for the table)
ZOO = [
    ("mlp (Hands-On ML)", "mlp-homl", {}, ""),
    # gankit's own remedy for a late collapse: KID on held-out digits every 2000 steps keeps
    # checkpoints/best.pt, which is what this entry scores (the evaluations count in its budget)
    ("mlp (Hands-On ML), best checkpoint by KID", "mlp-homl", {"eval": {"every": 2000, "n": 500, "features": "mnist"}},
     "scores best.pt (KID every 2000 steps on 10% held out)", "mlp-homl-best"),
    # the book's remedy for the simple GAN's mode collapse; the key names its result files
    # (with reals and fakes in separate D passes: the two-phase step's mixed batch would let the
    # layer compare reals with fakes, and the trainer refuses it)
    ("mlp + minibatch discrimination", "mlp-homl", {"model": {"minibatch": "discrimination"},
                                                    "update": "alternating"},
     "minibatch discrimination, alternating update", "mlp-homl-mbd"),
    ("dcgan (keras GAN-ADA)", "dcgan", {"data": {"size": 32}, "augment": {"mode": "none"}, **SMALL_BATCH},
     "batch 32, no ADA"),
    ("dcgan-homl", "dcgan-homl", {}, ""),
    ("dcgan-tf", "dcgan-tf", SMALL_BATCH, "batch 32"),
    # The book's nets are made for 64 px: G grows a 4x4 map (a 4x4 "valid" ConvT of the 1x1 code)
    # through four stride-2 stages and D's 4x4 conv head reads a 4x4 map. At 32 px the zoo drops one
    # stage from each, keeping that 4x4 start and head.
    ("dcgan-lego (GDL)", "dcgan-lego", {"data": {"size": 32}, "model": LEGO_32PX, **SMALL_BATCH},
     "32 px: one stage fewer (G 256-128-64, D 64-128-256), batch 32"),
    # The preset as the book has it: 64 px (the digits upscaled), four times the pixels per step
    ("dcgan-lego at the book's 64 px", "dcgan-lego", SMALL_BATCH, "64 px, batch 32", "dcgan-lego-64"),
    # Keeping all four stages at 32 px instead shrinks G's start to a 2x2 map: G collapses to
    # one blurred blob within ~100 steps (a G with the 4x4 start and D's four stages does not).
    ("dcgan-lego, all four stages at 32 px (2x2 start)", "dcgan-lego", {"data": {"size": 32}, **SMALL_BATCH},
     "32 px, batch 32", "dcgan-lego-2x2"),
    # the diagnostic that ruled out D's batch norm as the cause of that collapse
    ("dcgan-lego 2x2 start, D without batch norm", "dcgan-lego", {"data": {"size": 32}, "model": {"d_norm": "none"},
                                                                  **SMALL_BATCH}, "32 px, batch 32, no BN in D",
     "dcgan-lego-nobn"),
    ("wgan-gp (5 critic steps)", "wgan-gp", {"data": {"size": 28}, **SHARED_NETS}, "shared nets, 28 px"),
    ("lsgan", "lsgan", SHARED_NETS, "shared nets"),
    ("hinge + spectral norm", "hinge-sn", SHARED_NETS, "shared nets"),
    ("r1", "r1", SHARED_NETS, "shared nets"),
    ("stabilised (replay, stddev, smoothing, flips, D-skip)", "stabilised", SHARED_NETS, "shared nets"),
    ("cgan (one-hot, label maps)", "cgan", SHARED_NETS, "shared nets"),
    ("cgan (embedding, projection, hinge, SN)", "cgan-projection", SHARED_NETS, "shared nets"),
    # the conditional-fidelity levers of issue 16, on the same shared nets: an AC-GAN classifier
    # head on a D that does not see the label (Odena et al. 2017; with the label maps in D's input
    # the head reads the label off them, and gankit refuses it), class-conditional batch norm in G
    # (de Vries et al. 2017), both; and the head on the projection D
    ("cgan + conditional batch norm", "cgan", merge(SHARED_NETS, {"model": {"g_label_norm": True}}),
     "shared nets, conditional BN", "cgan-cbn"),
    ("AC-GAN (D blind to the label, classifier head)", "cgan",
     merge(SHARED_NETS, {"model": {"d_classifier": True, "d_label_input": "none"}}),
     "shared nets, D: no label input + AC-GAN head", "acgan"),
    ("AC-GAN + conditional batch norm", "cgan",
     merge(SHARED_NETS, {"model": {"d_classifier": True, "d_label_input": "none", "g_label_norm": True}}),
     "shared nets, D: no label input + AC-GAN head, conditional BN", "acgan-cbn"),
    # D's head trained on reals only: G's fakes must be named by a classifier of real digits
    ("AC-GAN, class head on reals only", "cgan",
     merge(SHARED_NETS, {"model": {"d_classifier": True, "d_label_input": "none"}, "classifier_fakes": False}),
     "shared nets, D: no label input + AC-GAN head trained on reals only", "acgan-reals"),
    # the preset's way to 0.95 (issue 16), each step a probe on the shared nets; the preset now
    # ships the last (Adam 1e-3), so the probes before it name Adam 2e-4, as they ran
    ("AC-GAN, class loss weight 3", "acgan", merge(SHARED_NETS, {"optim": ADAM_2E4}),
     "shared nets, class loss weight 3, Adam 2e-4", "acgan-w3"),
    ("AC-GAN, class loss weight 10", "acgan", merge(SHARED_NETS, {"classifier_weight": 10.0, "optim": ADAM_2E4}),
     "shared nets, class loss weight 10, Adam 2e-4", "acgan-w10"),
    # the levers tried on top for issue 16's 0.95: a slower EMA of G (0.999 per step instead of
    # keras' 0.99), a class weight between 3 and 10, conditional BN, a wider G, 3x3 kernels (more
    # steps), higher learning rates
    ("AC-GAN, EMA 0.999", "acgan", merge(SHARED_NETS, {"ema_decay": 0.999, "optim": ADAM_2E4}),
     "shared nets, EMA decay 0.999, Adam 2e-4", "acgan-ema999"),
    ("AC-GAN, class loss weight 5", "acgan", merge(SHARED_NETS, {"classifier_weight": 5.0, "optim": ADAM_2E4}),
     "shared nets, class loss weight 5, Adam 2e-4", "acgan-w5"),
    ("AC-GAN, class loss weight 3 + conditional batch norm", "acgan",
     merge(SHARED_NETS, {"model": {"g_label_norm": True}, "optim": ADAM_2E4}),
     "shared nets, conditional BN, Adam 2e-4", "acgan-w3-cbn"),
    ("AC-GAN, wider G", "acgan", merge(SHARED_NETS, {"model": {"g_widths": [256, 128]}, "optim": ADAM_2E4}),
     "shared nets but G 256-128, Adam 2e-4", "acgan-wide-g"),
    ("AC-GAN, 3x3 kernels", "acgan", merge(SHARED_NETS, {"model": {"g_kernel": 3, "d_kernel": 3}, "optim": ADAM_2E4}),
     "shared nets with 3x3 kernels (more steps), Adam 2e-4", "acgan-k3"),
    ("AC-GAN, learning rates 5e-4", "acgan", merge(SHARED_NETS, {"optim": {"lr_g": 5e-4, "lr_d": 5e-4}}),
     "shared nets, Adam 5e-4", "acgan-lr5"),
    ("AC-GAN preset (Adam 1e-3)", "acgan", SHARED_NETS, "shared nets (= the preset's own), Adam 1e-3", "acgan-lr10"),
    ("cgan-projection + AC-GAN head + conditional batch norm", "cgan-projection",
     merge(SHARED_NETS, {"model": {"d_classifier": True, "g_label_norm": True}}),
     "shared nets, AC-GAN head, conditional BN", "cgan-projection-cbn-acgan"),
]
# (key, name, preset, overrides, changes): the key picks entries (--only) and names result files
ENTRIES = [(entry[4] if len(entry) > 4 else entry[1], *entry[:4]) for entry in ZOO]
KEYS = [key for key, *_ in ENTRIES]
# Not in the zoo: wgan-gp-gdl (GDL's 64 px CelebA nets with 3 critic steps cost 3.5 s a step on one
# core here; the wgan-gp entry covers the recipe).


def options_for(source: str, overrides: dict, args) -> dict:
    try:
        base = load_preset(source)
    except Exception:
        base = {"recipe": source}
    base = merge(base, overrides)
    return merge(base, {
        "data": {"source": "mnist5k", "channels": 1}, "seed": args.seed, "time_budget": args.seconds,
        "progress": False, "log_every": 20, "sample_every": 10**9, "checkpoint_every": 10**9,
        "runs_dir": str(Path(args.out) / "runs")})


@torch.no_grad()
def generate(G, n: int, num_classes: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.latent_dim, generator=g)
    labels = torch.randint(num_classes, (n,), generator=g) if num_classes else None
    chunks = [to_unit_range(G(zc, None if labels is None else labels[i * 250:(i + 1) * 250]), G.output_range)
              for i, zc in enumerate(z.split(250))]
    return torch.cat(chunks), labels


def slug_of(key: str, seconds: float, seed: int = 0) -> str:
    """Result files are per entry, budget and seed: a longer second pass keeps the first one's,
    and seeds other than 0 (the table's) sit beside it for the spread."""
    return f"{key if key != 'dcgan' else 'dcgan-keras'}-{seconds:.0f}s" + (f"-seed{seed}" if seed else "")


def run(key: str, name: str, source: str, overrides: dict, changed: str, data, classifier, args) -> dict:
    if args.batch:
        overrides = merge(overrides, {"batch": args.batch})
        changed = ", ".join(part for part in (changed.replace("batch 32", "").strip(", "), f"batch {args.batch}")
                            if part)
    config = resolve_config(options_for(source, overrides, args))
    slug = slug_of(key, args.seconds, args.seed)
    run_dir = Path(args.out) / "runs" / f"zoo-{slug}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    if data.size != config.data.size:
        data = load_dataset(config.data, progress=False)
    if config.eval.every:  # hold out 10% to evaluate on; the digit classifier gives the features
        train_part, held_out = data.split(config.eval.holdout, seed=0)
        built = build_run(config, run_dir=run_dir, data=train_part, held_out=held_out, extractor=classifier)
    else:
        built = build_run(config, run_dir=run_dir, data=data)
    trainer, num_classes = built.trainer, built.task.num_classes
    start = time.perf_counter()
    result = built.train()
    seconds = time.perf_counter() - start
    G = trainer.ema.model.eval()
    best_step = None
    if config.eval.every:
        trainer.evaluate()  # the final G competes too (and best.pt exists however short the run)
        best = load_checkpoint(best_path(run_dir))
        G.load_state_dict(best["G_ema"])
        best_step = int(best["step"])
        print(f"  best.pt: step {best_step}, held-out KID {best['best_kid']:.3f}", flush=True)
    # KID against all 5000 digits, as every other row (for a best.pt entry that includes the 500
    # held-out digits that chose the checkpoint: a slight advantage)
    images, labels = generate(G, args.n, num_classes, seed=1234)
    scores = compute_metrics(images, data, "mnist", n=args.n,
                             metrics=("kid",), extractor=classifier, progress=False)
    probs = torch.cat([classifier.classifier(classifier.prepare(x)).softmax(1) for x in images.split(500)])
    predicted = probs.argmax(1)
    share = torch.bincount(predicted, minlength=10).float() / len(predicted)
    row = {"name": name, "preset": source, "zoo_overrides": changed, "threads": torch.get_num_threads(),
           "penalty": config.penalty, "d_steps": config.d_steps, "recipe": config.recipe, "size": config.data.size,
           "loss": config.loss, "update": config.update, "steps": result.step, "best_step": best_step,
           "seconds": round(seconds, 1), "images_per_s": round(result.images_seen / seconds, 1),
           "kid": scores[KID_MEAN], "kid_std": scores[KID_STD],
           "coverage": int((share >= 0.025).sum()), "confident": float((probs.max(1).values > 0.9).float().mean()),
           "label_acc": float((predicted == labels).float().mean()) if labels is not None else None}
    grid_dir = Path(args.out) / "zoo"
    grid_dir.mkdir(parents=True, exist_ok=True)
    if num_classes:
        z, grid_labels = class_rows(num_classes, 8, G.latent_dim, torch.Generator().manual_seed(0))
        with torch.no_grad():
            grid = to_unit_range(G(z, grid_labels), G.output_range)
        save_grid(grid, grid_dir / f"{slug}.png", nrow=8)
    else:
        save_grid(images[:64], grid_dir / f"{slug}.png", nrow=8)
    row["grid"] = f"benchmarks/results/zoo/{slug}.png"
    row["seed"] = args.seed
    # one file per entry, so entries can run in separate processes (--only) and be tabled together
    (grid_dir / f"{slug}.json").write_text(json.dumps({"seconds_each": args.seconds, "n": args.n,
                                                       "torch": torch.__version__, "row": row}, indent=1))
    return row


@torch.no_grad()
def real_reference(data, classifier) -> dict:
    """The classifier's coverage and confidence on the training digits themselves: the ceiling
    a generator's columns are read against (no KID: these are the images KID compares with)."""
    images = data.pixels()[:2000].float().div(255)
    probs = torch.cat([classifier.classifier(classifier.prepare(x)).softmax(1) for x in images.split(500)])
    share = torch.bincount(probs.argmax(1), minlength=10).float() / len(probs)
    return {"coverage": int((share >= 0.025).sum()), "confident": float((probs.max(1).values > 0.9).float().mean())}


def markdown(rows: list[dict], seconds: float, reference: dict | None = None) -> str:
    lines = [f"| recipe / preset | zoo changes | px | loss, update | steps in {seconds:.0f} s | img/s | "
             "KID (mnist) | coverage | confident | label acc |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        acc = f"{r['label_acc']:.2f}" if r["label_acc"] is not None else "-"
        seeds = r.get("per_seed") or []
        if len(seeds) > 1:  # the seed-0 run's numbers, then the median and range over the seeds
            kids = [s["kid"] for s in seeds]
            r = {**r, "kid_note": f" (median {statistics.median(kids):.3f}, {min(kids):.3f}-{max(kids):.3f}, "
                                  f"{len(seeds)} seeds)"}
            if r["label_acc"] is not None:
                accs = [s["label_acc"] for s in seeds]
                acc += f" (median {statistics.median(accs):.2f}, {min(accs):.2f}-{max(accs):.2f})"
        loss = r["loss"] + (f" + {r['penalty']}" if r.get("penalty") not in (None, "none") else "")
        update = r["update"] + (f" ×{r['d_steps']}" if (r.get("d_steps") or 1) > 1 else "")
        steps = f"{r['steps']}" + (f" (best.pt: {r['best_step']})" if r.get("best_step") else "")
        lines.append(f"| {r['name']} (`{r['preset']}`) | {r.get('zoo_overrides') or '-'} | {r['size']} | {loss}, {update} | "
                     f"{steps} | {r['images_per_s']:.0f} | {r['kid']:.3f} ± {r['kid_std']:.3f}{r.get('kid_note', '')} | "
                     f"{r['coverage']}/10 | {r['confident']:.2f} | {acc} |")
    if reference:
        lines.append(f"| *the training digits themselves* | | 28 | | | | | {reference['coverage']}/10 | "
                     f"{reference['confident']:.2f} | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=360, help="training budget per entry")
    parser.add_argument("--n", type=int, default=2000, help="generated images scored per entry")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=None,
                        help="comma-separated entry keys to run (default: all): " + ", ".join(KEYS))
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (e.g. 1 to run two benchmarks side by side on 2 cores)")
    parser.add_argument("--batch", type=int, default=None, help="one batch size for every entry run "
                        "[default: the zoo's 32, the MLP's 32]")
    parser.add_argument("--table-only", action="store_true",
                        help="train nothing: rebuild the table from the saved entries at --seconds")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.table_only:
        wanted = set()
    else:
        wanted = set(args.only.split(",")) if args.only else None
        unknown = sorted((wanted or set()) - set(KEYS))
        if unknown:
            parser.error(f"--only: no entry {', '.join(unknown)}; the keys are {', '.join(KEYS)}")
    classifier = load_feature_extractor("mnist")
    from gankit.config import DataConfig
    data = load_dataset(DataConfig(source="mnist5k", size=28, channels=1), progress=False)
    for key, name, source, overrides, changed in ENTRIES:
        if wanted is not None and key not in wanted:
            continue
        row = run(key, name, source, overrides, changed, data, classifier, args)
        print(f"{name:<55} {row['steps']:>6} steps {row['images_per_s']:>7.0f} img/s  KID {row['kid']:.3f}  "
              f"coverage {row['coverage']}/10  confident {row['confident']:.2f}"
              + (f"  label acc {row['label_acc']:.2f}" if row["label_acc"] is not None else ""), flush=True)
    # the table covers every entry with a result at this budget, whichever process ran it
    out = Path(args.out)
    rows = []
    for key, name, source, overrides, changed in ENTRIES:
        path = out / "zoo" / f"{slug_of(key, args.seconds)}.json"
        if path.exists():
            saved = json.loads(path.read_text())
            if saved["seconds_each"] == args.seconds:
                saved["row"].update(name=name, zoo_overrides=changed)  # as the entry now words it
                if "penalty" not in saved["row"]:  # files written before these fields were kept
                    config = resolve_config(options_for(source, overrides, args))
                    saved["row"].update(penalty=config.penalty, d_steps=config.d_steps)
                others = [json.loads(extra.read_text())["row"]
                          for extra in sorted((out / "zoo").glob(f"{slug_of(key, args.seconds)}-seed*.json"))]
                saved["row"]["per_seed"] = [{k: r.get(k) for k in ("seed", "kid", "coverage", "label_acc")}
                                            for r in [saved["row"], *others]]
                rows.append(saved["row"])
    reference = real_reference(data, classifier)
    tag = f"zoo-{args.seconds:.0f}s"
    (out / f"{tag}.json").write_text(json.dumps({"seconds_each": args.seconds, "n": args.n, "torch": torch.__version__,
                                                 "rows": rows, "training_digits": reference}, indent=1))
    (out / f"{tag}.md").write_text(markdown(rows, args.seconds, reference))
    print(markdown(rows, args.seconds, reference))


if __name__ == "__main__":
    main()
