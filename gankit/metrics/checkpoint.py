"""Scoring a trained run: KID, FID, precision/recall, density/coverage of its EMA generator
against real images, and its perceptual path length (which needs no real images)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import GankitError
from .evaluate import DEFAULT_METRICS, METRICS, compute_metrics
from .features import load_feature_extractor
from .manifold import DC_NEIGHBOURS, PR_NEIGHBOURS
from .path_length import PPL, check_ppl_options, perceptual_path_length

EVAL_METRICS = (*METRICS, PPL)  # what `gankit eval --metrics` takes


def check_eval_metrics(metrics: list[str]) -> None:
    """Each name is one of EVAL_METRICS, and there is at least one (checked before any slow work)."""
    unknown = [name for name in metrics if name not in EVAL_METRICS]
    if unknown or not metrics:
        raise GankitError(f"unknown metric {unknown[0] if unknown else '(none)'}: "
                          f"choose from {', '.join(EVAL_METRICS)}")


def evaluate_checkpoint(checkpoint: str | Path,
                        metrics: tuple[str, ...] | list[str] = DEFAULT_METRICS,
                        features: str | None = None, n: int = 2000, data: str | None = None,
                        inception_weights: str | Path | None = None, seed: int = 0,
                        device: str = "cpu", progress: bool = True, pr_k: int = PR_NEIGHBOURS,
                        dc_k: int = DC_NEIGHBOURS, ppl_space: str = "auto",
                        ppl_sampling: str = "end") -> dict:
    """{"checkpoint", "step", "features", "data", <metric keys>} for `checkpoint`'s EMA generator.

    data: real images to compare with (a built-in name or a folder), at the run's size; default:
    the run's training data. features: default mnist for digit data, else inception. A
    conditional generator draws its labels as KID during training does: at the real images' class
    frequencies when they carry the same classes, else uniformly. Noise inputs (StyleGAN) are drawn
    fresh for every sample, as StyleGAN2-ADA's metrics are, from `seed`. pr_k, dc_k: the k of
    the precision/recall and of the density/coverage balls.

    "ppl" (`path_length.perceptual_path_length`) walks n pairs of latents from `seed` in
    `ppl_space` ("auto", "w", "z") with `ppl_sampling` ("end", "full"), with G's fixed noise
    inputs; it needs no real images, so `metrics=["ppl"]` alone loads none.
    """
    from ..config import DataConfig
    from ..generator import load_generator
    from . import default_features

    metrics = [m.strip() for m in metrics if m.strip()]
    check_eval_metrics(metrics)  # a typo fails at once, not after loading the run and its data
    if PPL in metrics:
        check_ppl_options(ppl_space, ppl_sampling, n=n)
    generator = load_generator(checkpoint, device=device)
    data_config = generator.config.data
    if data:  # other images at the run's size: the run's labels, boxes and limit belong to its own data
        data_config = DataConfig(source=data, size=data_config.size, channels=data_config.channels,
                                 crop=data_config.crop, background=data_config.background)
    features = features or default_features(data_config.source)
    extractor = load_feature_extractor(
        features, inception_weights if features.startswith("inception") else None)
    scores = {}
    against_reals = [m for m in metrics if m != PPL]
    if against_reals:
        scores.update(_against_reals(generator, data_config, extractor, features, against_reals, n,
                                     seed, device, progress, pr_k, dc_k))
    if PPL in metrics:
        scores.update(perceptual_path_length(
            generator.module, extractor, n=n, space=ppl_space, sampling=ppl_sampling, seed=seed,
            device=device if device != "auto" else generator.device, progress=progress))
    return {"checkpoint": str(checkpoint), "step": generator.step, "features": features,
            "data": data_config.source, **scores}


def _against_reals(generator, data_config, extractor: torch.nn.Module, features: str,
                   metrics: list[str], n: int, seed: int, device: str, progress: bool, pr_k: int,
                   dc_k: int) -> dict:
    """compute_metrics of the generator's fakes against the real images of `data_config`."""
    from ..data import load_dataset
    from ..nn.equalized import per_sample_noise

    real = load_dataset(data_config, progress=progress)
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

    return compute_metrics(fakes, real, features, n=n, metrics=metrics,
                           device=device if device != "auto" else generator.device,
                           extractor=extractor, pr_k=pr_k, dc_k=dc_k, progress=progress)
