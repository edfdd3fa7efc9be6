"""How well does projection put unseen images into a trained generator?

Projects `--n` held-out digits (the last 500 of mnist5k, which the shipped `dcgan-mnist` and
`stylegan-mnist` models and the digit classifier never saw) into each `--models` model, and
reports per model, as medians over the images with the spread:

- the reconstruction error: pixel L1 (mean absolute difference, images in [0, 1]) and the
  distance of the digit classifier's features;
- the same errors of two references: the nearest training image (by L1, over the images the
  model was trained on: what a perfect memoriser would give) and a random sample of the model
  (what no projection gives);
- the share of reconstructions the digit classifier reads as the target's digit.

Writes a JSON per model, a table, and a picture per model (targets; reconstructions; nearest
training images).

    python benchmarks/projection.py --models dcgan-mnist,stylegan-mnist --n 50 --steps 1000
    python benchmarks/projection.py --models runs/my-digits --n 8 --steps 100   # any digit run
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

OUT = Path("benchmarks/results/projection")
HELD_OUT = 500  # the last images of mnist5k


def median_spread(values: list[float]) -> str:
    q = torch.tensor(values).quantile(torch.tensor([0.25, 0.5, 0.75])).tolist()
    return f"{q[1]:.3f} ({q[0]:.3f}–{q[2]:.3f})"


def run(model: str, args) -> dict:
    from gankit import load_generator
    from gankit.config import DataConfig
    from gankit.data import load_dataset
    from gankit.metrics import load_feature_extractor
    from gankit.metrics.memorisation import nearest, pool_pixels
    from gankit.projection import project
    from gankit.visualize import save_grid

    torch.set_num_threads(args.threads)
    generator = load_generator(model)
    data = load_dataset(DataConfig(source="mnist5k", size=generator.config.data.size, channels=1), progress=False)
    held = data.subset(torch.arange(len(data) - HELD_OUT, len(data)))
    train = data.subset(torch.arange(len(data) - HELD_OUT))
    pick = torch.randperm(len(held), generator=torch.Generator().manual_seed(args.seed))[:args.n]
    targets = pool_pixels(held)[pick].float() / 255  # (n, 1, S, S)
    digits = held.labels[pick]
    start = time.perf_counter()
    result = project(generator.module, targets, steps=args.steps, distance=args.distance, features="mnist",
                     seed=args.seed)
    seconds = time.perf_counter() - start
    extractor = load_feature_extractor("mnist").eval()
    pool = pool_pixels(train)
    _, nearest_index = nearest(targets, pool, 1)  # the closest training image of each target, by L1
    nearest_images = pool[nearest_index[:, 0]].float() / 255
    random_images = generator.sample(args.n, seed=args.seed + 1)

    def errors(images: torch.Tensor) -> tuple[list[float], list[float]]:
        with torch.no_grad():
            l1 = (images - targets).abs().flatten(1).mean(1)
            feats = (extractor(images) - extractor(targets)).norm(dim=1)
        return l1.tolist(), feats.tolist()

    rows = {name: errors(images) for name, images in
            (("projection", result.images), ("nearest training image", nearest_images), ("random sample", random_images))}
    with torch.no_grad():
        read = (extractor.predict_digits(result.images) == digits).float().mean().item()
    name = Path(model).name
    save_grid(torch.cat([targets[:8], result.images[:8], nearest_images[:8]]), Path(args.out) / f"{name}.png", nrow=min(8, args.n))
    return {"model": model, "space": result.space, "n": args.n, "steps": args.steps, "seconds": round(seconds, 1),
            "distance": result.distance, "label_accuracy": read,
            "errors": {k: {"l1": v[0], "features": v[1]} for k, v in rows.items()}}


def table(results: list[dict]) -> str:
    lines = ["| model | space | images | steps | pixel L1: projection | nearest training image | random sample "
             "| feature distance: projection | nearest | random | read as the target's digit |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        e = r["errors"]
        lines.append(f"| {r['model']} | {r['space']} | {r['n']} | {r['steps']} | "
                     f"{median_spread(e['projection']['l1'])} | {median_spread(e['nearest training image']['l1'])} | "
                     f"{median_spread(e['random sample']['l1'])} | {median_spread(e['projection']['features'])} | "
                     f"{median_spread(e['nearest training image']['features'])} | "
                     f"{median_spread(e['random sample']['features'])} | {r['label_accuracy']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="dcgan-mnist,stylegan-mnist", help="pretrained names or run folders, comma-separated")
    parser.add_argument("--n", type=int, default=50, help="held-out digits to project")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--distance", default="auto", help="auto, vgg or features (see gankit project)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    results = []
    for model in args.models.split(","):
        results.append(run(model, args))
        (Path(args.out) / f"{Path(model).name}.json").write_text(json.dumps(results[-1], indent=1))
    text = table(results)
    (Path(args.out) / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
