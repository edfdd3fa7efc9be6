"""How well does projection put images into a trained generator?

Digit models (trained on `mnist5k`): projects `--n` held-out digits (the last 500 of mnist5k,
which the shipped `dcgan-mnist` and `stylegan-mnist` models and the digit classifier never saw).
Face models (trained on `faces100`): the shipped `dcgan-faces100` saw all 100 faces, so there is
no unseen face to project; it projects `--n` of its training faces, and its "nearest training
image" is the nearest *other* face (what the model would give if it had learnt a face it had
not seen from its neighbours). Faces have no feature network offline: pixels only.

Reports per model, as medians over the images with the spread (quartiles):

- the reconstruction error: pixel L1 (mean absolute difference, images in [0, 1]) and, for
  digits, the distance of the digit classifier's features;
- the same errors of two references: the nearest training image (by L1, over the images the
  model was trained on: what a perfect memoriser would give) and a random sample of the model
  (what no projection gives);
- for digits, the share of reconstructions the digit classifier reads as the target's digit.

Writes a JSON per model, a table, and a picture per model (targets; reconstructions; nearest
training images).

    python benchmarks/projection.py --n 50 --steps 1000   # dcgan-mnist, stylegan-mnist, dcgan-faces100
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
    source = generator.config.data.source
    data = load_dataset(DataConfig(source=source, size=generator.config.data.size,
                                   channels=generator.config.data.channels), progress=False)
    digits = source == "mnist5k"
    if digits:  # unseen digits against the ones the model was trained on
        held = data.subset(torch.arange(len(data) - HELD_OUT, len(data)))
        train = data.subset(torch.arange(len(data) - HELD_OUT))
    else:  # a model that saw every image: its own training images, against the nearest other one
        held = train = data
    pick = torch.randperm(len(held), generator=torch.Generator().manual_seed(args.seed))[:args.n]
    targets = pool_pixels(held)[pick].float() / 255  # (n, C, S, S)
    features = "mnist" if digits else None
    start = time.perf_counter()
    result = project(generator.module, targets, steps=args.steps, distance=args.distance, features=features,
                     seed=args.seed)
    seconds = time.perf_counter() - start
    extractor = load_feature_extractor("mnist").eval() if digits else None
    pool = pool_pixels(train)
    # the closest training image of each target, by L1 (for faces: not the target itself)
    _, nearest_index = nearest(targets, pool, 1, exclude=None if digits else pick)
    nearest_images = pool[nearest_index[:, 0]].float() / 255
    random_images = generator.sample(args.n, seed=args.seed + 1)

    def errors(images: torch.Tensor) -> dict:
        with torch.no_grad():
            out = {"l1": (images - targets).abs().flatten(1).mean(1).tolist()}
            if extractor is not None:
                out["features"] = (extractor(images) - extractor(targets)).norm(dim=1).tolist()
        return out

    rows = {name: errors(images) for name, images in
            (("projection", result.images), ("nearest training image", nearest_images), ("random sample", random_images))}
    read = None
    if digits:
        with torch.no_grad():
            read = (extractor.predict_digits(result.images) == held.labels[pick]).float().mean().item()
    name = Path(model).name
    save_grid(torch.cat([targets[:8], result.images[:8], nearest_images[:8]]), Path(args.out) / f"{name}.png", nrow=min(8, args.n))
    return {"model": model, "space": result.space, "n": args.n, "steps": args.steps, "seconds": round(seconds, 1),
            "data": source, "targets": "held-out" if digits else "training images (nearest: another one)",
            "distance": result.distance, "label_accuracy": read, "errors": rows}


def table(results: list[dict]) -> str:
    lines = ["| model | space | images | steps | pixel L1: projection | nearest training image | random sample "
             "| feature distance: projection | nearest | random | read as the target's digit |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        e = r["errors"]

        def cell(row: str, key: str) -> str:
            return median_spread(e[row][key]) if key in e[row] else "-"

        read = f"{r['label_accuracy']:.2f}" if r.get("label_accuracy") is not None else "-"
        lines.append(f"| {r['model']} | {r['space']} | {r['n']} | {r['steps']} | "
                     f"{cell('projection', 'l1')} | {cell('nearest training image', 'l1')} | "
                     f"{cell('random sample', 'l1')} | {cell('projection', 'features')} | "
                     f"{cell('nearest training image', 'features')} | {cell('random sample', 'features')} | {read} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="dcgan-mnist,stylegan-mnist,dcgan-faces100",
                        help="pretrained names or run folders (trained on mnist5k or faces100), comma-separated")
    parser.add_argument("--n", type=int, default=50, help="images to project per model")
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
