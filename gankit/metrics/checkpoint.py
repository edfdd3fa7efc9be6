"""Scoring a trained run: KID and/or FID of its EMA generator against real images."""

from __future__ import annotations

from pathlib import Path

import torch

from .evaluate import METRICS, compute_metrics


def evaluate_checkpoint(checkpoint: str | Path, metrics: tuple[str, ...] | list[str] = METRICS,
                        features: str | None = None, n: int = 2000, data: str | None = None,
                        inception_weights: str | Path | None = None, seed: int = 0,
                        device: str = "cpu", progress: bool = True) -> dict:
    """{"checkpoint", "step", "features", "data", <metric keys>} for `checkpoint`'s EMA generator.

    data: real images to compare with (a built-in name or a folder), at the run's size; default:
    the run's training data. features: default mnist for digit data, else inception. A
    conditional generator draws its labels as KID during training does: at the real images' class
    frequencies when they carry the same classes, else uniformly.
    """
    from ..config import DataConfig
    from ..data import load_dataset
    from ..generator import load_generator
    from . import default_features

    metrics = [m.strip() for m in metrics if m.strip()]  # compute_metrics names unknown ones
    generator = load_generator(checkpoint, device=device)
    data_config = generator.config.data
    if data:  # other images at the run's size: the run's labels, boxes and limit belong to its own data
        data_config = DataConfig(source=data, size=data_config.size, channels=data_config.channels,
                                 crop=data_config.crop, background=data_config.background)
    real = load_dataset(data_config, progress=progress)
    features = features or default_features(data_config.source)
    latents = torch.Generator().manual_seed(seed)
    frequencies = None
    if generator.num_classes:
        same_classes = real.labels is not None and int(real.labels.max()) < generator.num_classes
        frequencies = (torch.bincount(real.labels, minlength=generator.num_classes).float() if same_classes
                       else torch.ones(generator.num_classes))

    def fakes(k: int) -> torch.Tensor:
        z = torch.randn(k, generator.latent_dim, generator=latents)
        labels = None if frequencies is None else torch.multinomial(frequencies, k, replacement=True, generator=latents)
        return generator.generate(z, labels=labels)

    scores = compute_metrics(fakes, real, features, n=n, metrics=metrics,
                             device=device if device != "auto" else generator.device,
                             weights=inception_weights if features.startswith("inception") else None,
                             progress=progress)
    return {"checkpoint": str(checkpoint), "step": generator.step, "features": features,
            "data": data_config.source, **scores}
