"""Neural style transfer on pictures that scikit-image ships: the astronaut painted with the
texture of another photo, a side-by-side picture for the docs and the numbers behind it.

Uses torchvision's ImageNet VGG19 when its weights are on this machine (--weights, or torch.hub's
cache) and otherwise a seeded *random* VGG19, saying which in its output, the JSON and the
picture's caption: random filters still match colour and texture statistics, but what they make is
not real (Gatys et al.) style transfer. Nothing is downloaded.

    nice -n 10 python benchmarks/style_transfer.py            # ~3-5 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from skimage import data as photos

from gankit.errors import GankitError
from gankit.style_transfer import (CONTENT, RANDOM, STYLE, TOTAL, TV, StyleTransferConfig,
                                   load_vgg19, prepare_image, stylize, vgg19_hub_path)
from gankit.visualize import save_image_atomic, to_uint8_hwc

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "brick", "grass", "gravel", "camera")


def pick_extractor(weights: str | None, pooling: str, seed: int):
    """The ImageNet VGG19 if a weights file is here (no download), else the random one."""
    if weights or vgg19_hub_path().is_file():
        try:
            return load_vgg19(weights, pooling=pooling, seed=seed)
        except GankitError as err:
            print(f"note: {err}; falling back to a random VGG19")
    return load_vgg19(RANDOM, pooling=pooling, seed=seed)


def side_by_side(images: list[torch.Tensor], captions: list[str], footer: str,
                 height: int) -> Image.Image:
    """(1, 3, h, w) images in [0, 1] -> one picture, each scaled to `height`, a caption under
    each and a footer line under all."""
    tiles = []
    for image in images:
        tile = Image.fromarray(to_uint8_hwc(image)[0])
        tiles.append(tile.resize((round(tile.width * height / tile.height), height),
                                 Image.Resampling.LANCZOS))
    gap, line = 6, 14
    canvas = Image.new("RGB", (sum(t.width for t in tiles) + gap * (len(tiles) - 1),
                               height + 2 * line + 4), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for tile, text in zip(tiles, captions):
        canvas.paste(tile, (x, 0))
        draw.text((x + 3, height + 2), text, fill="black")
        x += tile.width + gap
    draw.text((3, height + line + 2), footer, fill="black")
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", default="astronaut", choices=PHOTOS)
    parser.add_argument("--style", default="coffee", choices=PHOTOS)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--optimizer", default="lbfgs", choices=("lbfgs", "adam"))
    parser.add_argument("--init", default="content", choices=("content", "noise"))
    parser.add_argument("--style-weight", type=float, default=None, help="[default: the config's]")
    parser.add_argument("--content-weight", type=float, default=None)
    parser.add_argument("--tv-weight", type=float, default=None)
    parser.add_argument("--pooling", default="max", choices=("max", "avg"))
    parser.add_argument("--weights", default=None,
                        help="VGG19 state-dict file [default: the hub cache]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads [default: torch's]")
    parser.add_argument("--picture", default=str(ROOT / "docs" / "style-transfer-example.png"))
    parser.add_argument("--json",
                        default=str(ROOT / "benchmarks" / "results" / "style_transfer.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    weights = {k: v for k, v in (("style_weight", args.style_weight),
                                 ("content_weight", args.content_weight),
                                 ("tv_weight", args.tv_weight)) if v is not None}
    config = StyleTransferConfig(size=args.size, steps=args.steps, optimizer=args.optimizer,
                                 init=args.init, pooling=args.pooling, seed=args.seed,
                                 progress=True, **weights)
    extractor = pick_extractor(args.weights, args.pooling, args.seed)
    print(f"features: {extractor.description}")
    content, style = getattr(photos, args.content)(), getattr(photos, args.style)()
    result = stylize(content, style, config, extractor=extractor)

    kind = "ImageNet VGG19" if extractor.pretrained else "random VGG19: not real style transfer"
    picture = side_by_side(
        [prepare_image(content, args.size), prepare_image(style, args.size), result.image],
        [f"content: {args.content}", f"style: {args.style}", "result"],
        f"{kind}; {args.steps} {args.optimizer} steps", args.size)
    save_image_atomic(picture, Path(args.picture))

    first, final = result.history[0], result.final
    where = Path(args.picture).resolve()
    picture_name = str(where.relative_to(ROOT)) if where.is_relative_to(ROOT) else str(where)
    record = {
        "features": extractor.description, "pretrained_vgg19": extractor.pretrained,
        "content": f"skimage.data.{args.content}", "style": f"skimage.data.{args.style}",
        "size": list(result.image.shape[-2:]), "steps": args.steps, "optimizer": args.optimizer,
        "init": args.init, "pooling": args.pooling, "seed": args.seed,
        "content_weight": config.content_weight, "style_weight": config.style_weight,
        "tv_weight": config.tv_weight, "seconds": round(result.seconds, 1),
        "seconds_per_step": round(result.seconds / args.steps, 3),
        "first": {k: first[k] for k in (CONTENT, STYLE, TV, TOTAL)},
        "final": {k: final[k] for k in (CONTENT, STYLE, TV, TOTAL)},
        "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__, "picture": picture_name,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    print(f"{args.steps} {args.optimizer} steps at {tuple(record['size'])} in "
          f"{result.seconds:.1f} s ({record['seconds_per_step']} s/step)")
    print(f"{'term':<8}{'first':>12}{'final':>12}")
    for key in (CONTENT, STYLE, TV, TOTAL):
        print(f"{key:<8}{first[key]:>12.4g}{final[key]:>12.4g}")
    print(f"wrote {args.picture} and {args.json}")


if __name__ == "__main__":
    main()
