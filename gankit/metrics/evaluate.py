"""KID, FID, precision/recall and density/coverage of generated images against a dataset:
feature extraction in batches, cached reals.

    scores = compute_metrics(G.sample, load_dataset(DataConfig("mnist5k")), "mnist", n=2000)
    scores[KID_MEAN], scores[FID]
    scores = compute_metrics(G.sample, real, "mnist", n=2000, metrics=("pr", "dc"))
    scores[PRECISION], scores[RECALL], scores[DENSITY], scores[COVERAGE]

The real side's features are cached on disk, so evaluating every few thousand steps extracts
them once: one .npy per (dataset name, image content, extractor name and weights, size, n) under
$GANKIT_CACHE/metrics (default ~/.cache/gankit/metrics). Files are written atomically; a file that
cannot be read is rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from ..data import ImageData
from ..errors import GankitError
from .features import load_feature_extractor
from .manifold import (DC_NEIGHBOURS, PR_NEIGHBOURS, check_neighbours, density_coverage,
                       precision_recall)
from .maths import KID_SEED, KID_SUBSET_SIZE, KID_SUBSETS, fid, kid

METRICS = ("kid", "fid", "pr", "dc")  # pr: precision and recall; dc: density and coverage
DEFAULT_METRICS = ("kid", "fid")
# Result keys beside maths.KID_MEAN, KID_STD, FID and manifold.PRECISION ... DC_K: how many
# images were used.
N_REAL = "n_real"
N_FAKE = "n_fake"
CACHE_FORMAT = 1  # part of every cache key: bump when what is stored changes
REAL_SUBSET_SEED = 0  # fixed: the same n reals are scored in every run, whatever the run's seed
RANGE_SLACK = 1e-3  # fake pixels may stray this far outside [0, 1] (float rounding)

Sampler = Callable[[int], torch.Tensor]  # sample(n) -> (n, C, H, W) in [0, 1]


def metrics_cache_dir() -> Path:
    return Path(os.environ.get("GANKIT_CACHE", "~/.cache/gankit")).expanduser() / "metrics"


def check_metric_names(metrics: Sequence[str]) -> None:
    """Each name is one of METRICS, and there is at least one (checked before any slow work)."""
    unknown = [name for name in metrics if name not in METRICS]
    if unknown or not metrics:
        raise GankitError(f"unknown metric {unknown[0] if unknown else '(none)'}: "
                          f"choose from {', '.join(METRICS)}")


def compute_metrics(
    fake: torch.Tensor | Sampler,
    real: ImageData,
    extractor_name: str = "mnist",
    n: int | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    batch_size: int = 250,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None = None,
    *,
    extractor: nn.Module | None = None,
    weights: str | Path | None = None,
    kid_subsets: int = KID_SUBSETS,
    kid_subset_size: int = KID_SUBSET_SIZE,
    kid_seed: int = KID_SEED,
    pr_k: int = PR_NEIGHBOURS,
    dc_k: int = DC_NEIGHBOURS,
    progress: bool = True,
) -> dict[str, float]:
    """KID, FID, precision/recall and/or density/coverage between `n` fake images and up to `n`
    images of `real`.

    fake: a tensor (N, C, H, W) in [0, 1] (its first n images are used; n=None: all of them) or
        a callable sample(k) -> (k, C, H, W) in [0, 1], called in batches of `batch_size`.
    real: the reference images; when it has more than n, a fixed random subset of n is used.
    extractor_name: a registered feature extractor (`FEATURE_EXTRACTORS`); names the cache.
    extractor: the loaded extractor for `extractor_name`, to skip loading it again (e.g. on every
        evaluation during training). It is moved to `device` and run in eval mode.
    weights: a weights file for the extractor (inception: --inception-weights).
    cache_dir: where real features are cached; None: $GANKIT_CACHE/metrics.
    pr_k, dc_k: the k of the k-nearest-neighbour balls of "pr" and of "dc" (see `manifold`).
    Returns {KID_MEAN, KID_STD} for "kid", {FID} for "fid", {PRECISION, RECALL, PR_K} for "pr",
    {DENSITY, COVERAGE, DC_K} for "dc", and N_REAL, N_FAKE.
    """
    check_metric_names(metrics)
    if isinstance(fake, torch.Tensor):
        n = len(fake) if n is None else n
        if fake.ndim != 4 or fake.shape[1] not in (1, 3) or len(fake) < n:
            raise GankitError(f"fake images of shape {tuple(fake.shape)} cannot give {n} samples:"
                              " pass (N, C, H, W) with C = 1 or 3 and N at least n")
    elif n is None:
        raise GankitError("give the number of samples n when fake images come from a sampler")
    if n < 2:
        raise GankitError(f"n={n} samples are too few for KID or FID: use at least a few hundred")
    n_real = min(len(real), n)  # as real_subset picks them: known before any feature is extracted
    if "pr" in metrics:
        check_neighbours(pr_k, n_real, n, "pr")
    if "dc" in metrics:
        check_neighbours(dc_k, n_real, n, "dc")
    if extractor is None:
        extractor = load_feature_extractor(extractor_name, weights)

    cache_dir = Path(cache_dir) if cache_dir is not None else metrics_cache_dir()
    was_training = extractor.training
    extractor.to(device).eval()
    try:
        real_features = cached_real_features(real, extractor, extractor_name, n, batch_size,
                                             device, cache_dir, progress)
        fake_features = extract(extractor, fake_batches(fake, n, batch_size), n, device,
                                progress, "features of fakes")
    finally:
        extractor.train(was_training)  # a user's module goes back to the mode it came in

    scores: dict[str, float] = {N_REAL: len(real_features), N_FAKE: len(fake_features)}
    if "kid" in metrics:
        scores.update(kid(fake_features, real_features, kid_subsets, kid_subset_size, kid_seed))
    if "fid" in metrics:
        scores.update(fid(fake_features, real_features))
    # k-NN distances on `device` in float64, which MPS lacks: there they run on the CPU.
    knn_device = "cpu" if torch.device(device).type == "mps" else device
    if "pr" in metrics:
        scores.update(precision_recall(real_features, fake_features, pr_k, device=knn_device))
    if "dc" in metrics:
        scores.update(density_coverage(real_features, fake_features, dc_k, device=knn_device))
    return scores


# --------------------------------------------------------------------------------------------
# feature extraction


def fake_batches(fake: torch.Tensor | Sampler, n: int, batch_size: int
                 ) -> Iterator[torch.Tensor]:
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        batch = fake[start:start + size] if isinstance(fake, torch.Tensor) else fake(size)
        assert batch.ndim == 4 and len(batch) == size, \
            f"sample({size}) returned shape {tuple(batch.shape)}, expected ({size}, C, H, W)"
        low, high = batch.min().item(), batch.max().item()
        if low < -RANGE_SLACK or high > 1 + RANGE_SLACK:
            raise GankitError(f"fake images must be floats in [0, 1], got values in [{low:.3g}, "
                              f"{high:.3g}]: map tanh outputs in [-1, 1] with (x + 1) / 2")
        yield batch.float()


def extract(extractor: nn.Module, batches: Iterator[torch.Tensor], total: int,
            device: str | torch.device, progress: bool, desc: str) -> np.ndarray:
    """Features (total, D) float32 of every batch (B, C, H, W)."""
    parts = []
    with torch.no_grad(), tqdm(total=total, desc=desc, unit="img", leave=False,
                               disable=not progress) as bar:
        for batch in batches:
            features = extractor(batch.to(device))
            if features.ndim != 2 or len(features) != len(batch):
                raise GankitError(f"the feature extractor returned shape {tuple(features.shape)} "
                                  f"for {len(batch)} images: it must return (B, D) features")
            parts.append(features.float().cpu().numpy())
            bar.update(len(batch))
    return np.concatenate(parts)


# --------------------------------------------------------------------------------------------
# the real side, cached


def real_subset(real: ImageData, n: int) -> torch.Tensor:
    """Indices of the reals to score: all of them, or a fixed random n (not the first n, which
    in a folder sorted by path may be one class)."""
    if len(real) <= n:
        return torch.arange(len(real))
    return torch.randperm(len(real), generator=torch.Generator().manual_seed(REAL_SUBSET_SEED))[:n]


def real_batches(real: ImageData, indices: torch.Tensor, batch_size: int
                 ) -> Iterator[torch.Tensor]:
    for part in indices.split(batch_size):
        yield real.batch(part)  # (B, C, size, size) in [0, 1]; centre crops, no generator


def cache_key(real: ImageData, indices: torch.Tensor, extractor: nn.Module,
              batch_size: int) -> str:
    """A digest of the images that will be scored and of the extractor's weights, so a changed
    dataset, a held-out split, a retrained classifier or other Inception weights never hit a
    stale file."""
    digest = hashlib.sha256(f"{CACHE_FORMAT}".encode())
    for batch in real_batches(real, indices, batch_size):
        digest.update(str(tuple(batch.shape)).encode())
        digest.update(batch.numpy().tobytes())
    for name, tensor in extractor.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()[:24]


def cached_real_features(real: ImageData, extractor: nn.Module, extractor_name: str, n: int,
                         batch_size: int, device: str | torch.device, cache_dir: Path,
                         progress: bool) -> np.ndarray:
    indices = real_subset(real, n)
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{Path(real.name).name}-{extractor_name}")[:60]
    path = cache_dir / (f"{label}-{real.size}px-n{len(indices)}-"
                        f"{cache_key(real, indices, extractor, batch_size)}.npy")
    features = load_features(path, len(indices))
    if features is None:
        features = extract(extractor, real_batches(real, indices, batch_size), len(indices),
                           device, progress, f"features of {real.name}")
        save_features(path, features)
    return features


def load_features(path: Path, rows: int) -> np.ndarray | None:
    """The features in `path`, or None when it is absent or damaged (then it is rebuilt)."""
    if not path.is_file():
        return None
    try:
        features = np.load(path, allow_pickle=False)
        if features.ndim != 2 or len(features) != rows or not np.isfinite(features).all():
            raise ValueError(f"holds an array of shape {features.shape}, expected ({rows}, D)")
        return features
    except Exception as err:  # torn copies, full disks, foreign files: all mean "extract again"
        warnings.warn(f"ignoring the unreadable metrics cache {path} ({type(err).__name__}: "
                      f"{err}); extracting the real features again", stacklevel=3)
        return None


def save_features(path: Path, features: np.ndarray) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as file:  # a file object: np.save would append .npy to a name
            np.save(file, features)
        os.replace(tmp, path)  # readers see the old file or the whole new one, never half of one
    except OSError as err:
        tmp.unlink(missing_ok=True)
        warnings.warn(f"could not write the metrics cache {path} ({err}); the real features will "
                      "be extracted again next time", stacklevel=3)
