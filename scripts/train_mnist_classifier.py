"""Train the digit classifier behind the `mnist` feature extractor and write its shipped files.

    python scripts/train_mnist_classifier.py   # with gankit installed; minutes on 2 CPU cores

Trains `gankit.metrics.features.MnistClassifier` on the first 4000 images of the built-in
`mnist5k` (in its fixed shuffled order) at 32 px, and measures accuracy on the other 1000, which
it never sees. Writes gankit/metrics/weights/mnist_classifier.pt (a state dict, loadable with
weights_only=True) and mnist_classifier.json beside it (held-out accuracy, split, seed, epochs,
torch version). Deterministic: every random draw comes from one seeded generator and
deterministic algorithms are enforced, so a rerun on the same machine and torch version writes
the same weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time

import torch
import torch.nn.functional as F

from gankit.config import DataConfig
from gankit.data import load_dataset
from gankit.metrics.features import MNIST_RECORD, MNIST_SIZE, MNIST_WEIGHTS, MnistClassifier

N_TRAIN = 4000  # the rest of mnist5k (1000 images) is held out


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Light random affine per image (rotation up to 10 degrees, zoom 0.9-1.1, shift up to 10%),
    so the features do not hinge on the exact placement that GAN samples will not reproduce."""
    n = len(x)
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(10)
    scale = 1 + (torch.rand(n, generator=generator) * 2 - 1) * 0.1
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * 0.2  # grid units: 2 = full width
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)  # (n, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@torch.no_grad()
def accuracy(model: MnistClassifier, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    predictions = torch.cat([model(part).argmax(1) for part in x.split(500)])
    return (predictions == y).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)  # initial weights and dropout
    generator = torch.Generator().manual_seed(args.seed)  # batch order and augmentation

    data = load_dataset(DataConfig(source="mnist5k", size=MNIST_SIZE, channels=1), progress=False)
    assert data.labels is not None and len(data) == 5000
    x = data.batch(torch.arange(len(data)))  # (5000, 1, 32, 32) in [0, 1]
    x_train, y_train = x[:N_TRAIN], data.labels[:N_TRAIN]
    x_held, y_held = x[N_TRAIN:], data.labels[N_TRAIN:]

    model = MnistClassifier()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = N_TRAIN // args.batch  # drop the last partial batch: BN dislikes tiny ones
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr,
                                                   total_steps=args.epochs * steps_per_epoch)
    start = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(N_TRAIN, generator=generator)
        total = 0.0
        for step in range(steps_per_epoch):
            index = order[step * args.batch:(step + 1) * args.batch]
            logits = model(augment(x_train[index], generator))
            loss = F.cross_entropy(logits, y_train[index], label_smoothing=0.05)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
        print(f"epoch {epoch + 1}/{args.epochs}  loss {total / steps_per_epoch:.4f}  held-out "
              f"accuracy {accuracy(model, x_held, y_held):.4f}  {time.time() - start:.0f}s")

    held_out = accuracy(model, x_held, y_held)
    MNIST_WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), MNIST_WEIGHTS)
    record = {
        "held_out_accuracy": round(held_out, 4),
        "train_accuracy": round(accuracy(model, x_train, y_train), 4),
        "dataset": "mnist5k",
        "image_size": MNIST_SIZE,
        "split": {"train": [0, N_TRAIN], "held_out": [N_TRAIN, len(data)],
                  "note": "index ranges [start, stop) in mnist5k's fixed shuffled order"},
        "seed": args.seed,
        "epochs": args.epochs,
        "batch": args.batch,
        "lr": args.lr,
        "parameters": sum(p.numel() for p in model.parameters()),
        "torch_version": torch.__version__,
        "train_seconds": round(time.time() - start, 1),
        "sha256": hashlib.sha256(MNIST_WEIGHTS.read_bytes()).hexdigest(),
    }
    MNIST_RECORD.write_text(json.dumps(record, indent=2) + "\n")
    print(f"held-out accuracy {held_out:.4f}; wrote {MNIST_WEIGHTS} "
          f"({MNIST_WEIGHTS.stat().st_size // 1024} KB) and {MNIST_RECORD.name}")


if __name__ == "__main__":
    main()
