"""Scoring a trained run: KID, FID, precision/recall, density/coverage of its EMA generator
against real images."""

from __future__ import annotations

from pathlib import Path

import torch

from .evaluate import DEFAULT_METRICS, check_metric_names, compute_metrics
from .manifold import DC_NEIGHBOURS, PR_NEIGHBOURS


def evaluate_checkpoint(checkpoint: str | Path,
                        metrics: tuple[str, ...] | list[str] = DEFAULT_METRICS,
                        features: str | None = None, n: int = 2000, data: str | None = None,
                        inception_weights: str | Path | None = None, seed: int = 0,
                        device: str = "cpu", progress: bool = True, pr_k: int = PR_NEIGHBOURS,
                        dc_k: int = DC_NEIGHBOURS) -> dict:
    """{"checkpoint", "step", "features", "data", <metric keys>} for `checkpoint`'s EMA generator.

    data: real images to compare with (a built-in name or a folder), at the run's size; default:
    the run's training data. features: default mnist for digit data, else inception. A
    conditional generator draws its labels as KID during training does: at the real images' class
    frequencies when they carry the same classes, else uniformly. Noise inputs (StyleGAN) are drawn
    fresh for every sample, as StyleGAN2-ADA's metrics are, from `seed`. pr_k, dc_k: the k of
    the precision/recall and of the density/coverage balls.
    """
    from ..config import DataConfig
    from ..data import load_dataset
    from ..generator import load_generator
    from ..nn.equalized import per_sample_noise
    from . import default_features

    metrics = [m.strip() for m in metrics if m.strip()]
    check_metric_names(metrics)  # a typo fails at once, not after loading the run and its data
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

    # fresh noise inputs per sample (StyleGAN's), as the reference scores; `gankit sample` keeps them fixed
    noise = torch.Generator(device=generator.device).manual_seed(seed)

    def fakes(k: int) -> torch.Tensor:
        z = torch.randn(k, generator.latent_dim, generator=latents)
        labels = None if frequencies is None else torch.multinomial(frequencies, k, replacement=True, generator=latents)
        with per_sample_noise(generator.module, noise):
            return generator.generate(z, labels=labels)

    scores = compute_metrics(fakes, real, features, n=n, metrics=metrics,
                             device=device if device != "auto" else generator.device,
                             weights=inception_weights if features.startswith("inception") else None,
                             pr_k=pr_k, dc_k=dc_k, progress=progress)
    return {"checkpoint": str(checkpoint), "step": generator.step, "features": features,
            "data": data_config.source, **scores}
