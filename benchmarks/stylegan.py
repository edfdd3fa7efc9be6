"""The StyleGAN-style recipe with ADA on small data, for a fixed wall-clock budget each.

Trains `--recipe stylegan` (ADA on) on `faces100` (100 faces at 32 px) and on `mnist5k` (32 px),
then writes for each: a sample grid, a style-mixing grid (rows' coarse styles with columns' fine
styles), an interpolation strip (lerp in w) and a truncation row (psi 1 -> 0), plus the progress
GIF, and scores the EMA generator by KID: mnist features against the 5000 digits; for the faces,
Inception features when their weights are on disk (no download here), else no KID.

    python benchmarks/stylegan.py --seconds 300     # ~12 minutes on 2 CPU cores
    # the README's runs, side by side with other work on a 2-core machine:
    python benchmarks/stylegan.py --only mnist5k --seconds 2400 --threads 1 --sample-every 200
    python benchmarks/stylegan.py --only faces100 --seconds 2100 --threads 1 --sample-every 200

`--variant before` trains as gankit did before it followed the references more closely (tanh
output, D pooling instead of the low-pass filter, no path-length regularisation, EMA 0.999 per
step), so one run of each variant gives the before/after table. (The output is tanh in both now:
the reference's linear output collapsed these CPU-sized runs; see StyleGANOptions.output.) The digits are also scored by
precision/recall and density/coverage and by the perceptual path length, all on the mnist
features (PPL in w, end-point sampling, 2000 pairs; lower is smoother).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from gankit.api import load_generator
from gankit.config import DataConfig
from gankit.resolve import resolve_config
from gankit.run import build_run
from gankit.data import load_dataset
from gankit.errors import GankitError
from gankit.metrics import KID_MEAN, KID_STD, compute_metrics, load_feature_extractor
from gankit.metrics.manifold import COVERAGE, DENSITY, PRECISION, RECALL
from gankit.metrics.path_length import PPL, perceptual_path_length
from gankit.visualize import progress_gif, save_grid

DATASETS = {"faces100": 1, "mnist5k": 1}  # source -> channels
# gankit's StyleGAN before issue 16 (the runs of the first benchmark): what "--variant before" sets
BEFORE = {"model": {"output": "tanh", "d_downsample": "pool"}, "path_length": {"weight": 0.0},
          "ema_kimg": None, "ema_rampup": None, "ema_decay": 0.999}


def run(source: str, args) -> dict:
    out = Path(args.out)
    tag = f"stylegan-{source}" + ("-before" if args.variant == "before" else "")
    run_dir = out / "runs" / tag
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    before = BEFORE if args.variant == "before" else {"model": {}}
    config = resolve_config({**{k: v for k, v in before.items() if k != "model"},
        "recipe": "stylegan", "data": {"source": source, "size": 32, "channels": DATASETS[source]},
        "seed": args.seed, "time_budget": args.seconds, "progress": False, "log_every": 20,
        "sample_every": args.sample_every, "checkpoint_every": 10**9, "runs_dir": str(out / "runs"),
        "batch": args.batch,
        # narrower than the recipe's default: a CPU budget of minutes buys few images at full width
        "model": {"channel_base": args.channel_base, "channel_max": args.channel_max,
                  "mapping_layers": args.mapping_layers, **before["model"]},
    })
    start = time.perf_counter()
    result = build_run(config, run_dir=run_dir).train()
    seconds = time.perf_counter() - start
    G = load_generator(run_dir)
    pictures = out / "stylegan"
    pictures.mkdir(parents=True, exist_ok=True)
    save_grid(G.sample(64, seed=1), pictures / f"{tag}-samples.png", nrow=8)
    save_grid(G.style_mix(rows=4, cols=6, seed=2), pictures / f"{tag}-mixing.png", nrow=7)
    frames = G.interpolate(keyframes=4, frames=8, seed=3, space="w")
    save_grid(frames, pictures / f"{tag}-interpolation.png", nrow=8)
    z = torch.randn(1, G.latent_dim, generator=torch.Generator().manual_seed(4)).repeat(8, 1)
    rows = [G.generate(z[:1], truncation=psi) for psi in (1.0, 0.85, 0.7, 0.55, 0.4, 0.25, 0.1, 0.0)]
    save_grid(torch.cat(rows), pictures / f"{tag}-truncation.png", nrow=8)
    progress_gif(run_dir, pictures / f"{tag}-progress.gif", duration=300)

    data = load_dataset(DataConfig(source=source, size=32, channels=DATASETS[source]), progress=False)
    features = "mnist" if source == "mnist5k" else "inception"
    scores: dict = {}
    try:
        extractor = load_feature_extractor(features)
        metrics = ("kid", "pr", "dc") if features == "mnist" else ("kid",)
        scores = compute_metrics(G.sample(args.n, seed=5), data, features, n=args.n, metrics=metrics,
                                 extractor=extractor, progress=False)
        if features == "mnist":
            scores.update(perceptual_path_length(G, extractor, n=args.n, space="w", sampling="end", seed=6))
    except GankitError as err:  # no Inception weights offline: say so rather than invent a number
        print(f"{source}: no KID ({str(err)[:120]})")
    kid, kid_std = scores.get(KID_MEAN), scores.get(KID_STD)
    rows_log = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows_log if "augment/p" in r][-1]
    return {"data": source, "images": len(data), "steps": result.step, "seconds": round(seconds, 1),
            "kimg": round(result.images_seen / 1000, 1), "features": features if kid is not None else None,
            "kid": kid, "kid_std": kid_std, "final_p": last["augment/p"], "d_acc_real": last.get("d/acc_real"),
            "variant": args.variant, **{k: v for k, v in scores.items() if k in (PRECISION, RECALL, DENSITY, COVERAGE, PPL)},
            "pictures": f"benchmarks/results/stylegan/{tag}-*.png"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300, help="training budget per dataset")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--channel-base", type=int, default=1024)
    parser.add_argument("--channel-max", type=int, default=64)
    parser.add_argument("--mapping-layers", type=int, default=4)
    parser.add_argument("--n", type=int, default=2000, help="generated images for KID")
    parser.add_argument("--sample-every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=None, help="faces100 or mnist5k")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (e.g. 1 to run two benchmarks side by side on 2 cores)")
    parser.add_argument("--variant", choices=("after", "before"), default="after",
                        help="before: gankit's StyleGAN before it followed the references (see BEFORE)")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = {"seconds_each": args.seconds, "batch": args.batch, "channel_base": args.channel_base,
                "channel_max": args.channel_max, "mapping_layers": args.mapping_layers,
                "threads": torch.get_num_threads(), "torch": torch.__version__}
    results = []
    for source in DATASETS:
        if args.only and source != args.only:
            continue
        results.append(run(source, args))
        # one file per dataset, so the two can be run separately (--only) and still be tabled together
        suffix = "-before" if args.variant == "before" else ""
        Path(args.out, f"stylegan-{source}{suffix}.json").write_text(json.dumps({**settings, "result": results[-1]}, indent=1))
    merged = [json.loads(path.read_text()) for path in sorted(Path(args.out).glob("stylegan-*.json"))]
    Path(args.out, "stylegan.json").write_text(json.dumps({"runs": merged}, indent=1))
    for r in results:
        kid = f"KID {r['kid']:.3f} ± {r['kid_std']:.3f} ({r['features']})" if r["kid"] is not None else "no KID"
        print(f"{r['data']}: {r['steps']} steps, {r['kimg']} kimg in {r['seconds']} s, {kid}, final p {r['final_p']:.2f}")


if __name__ == "__main__":
    main()
