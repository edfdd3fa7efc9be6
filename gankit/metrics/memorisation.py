"""Has G memorised its training images? Nearest training images of generated samples.

    result = check_memorisation("runs/my-run", n=16, k=3, out="nearest.png")
    result.reports["l1"].flagged           # rows whose sample sits unusually close to a train image

Two distances, as Generative Deep Learning (Foster) checks its GANs: the mean absolute pixel
difference ("l1", images in [0, 1]) and the Euclidean distance of feature vectors ("features",
from a registered extractor). A distance alone means little: a digit is always near some digit.
So each generated sample's nearest-train distance is set against the same distance for training
images themselves (each one to its nearest *other* training image), and a sample is flagged when
it is closer to the training set than almost any training image is (see `memorisation_report`).

`nearest` and `memorisation_report` are pure maths on tensors; `check_memorisation` does the I/O
(checkpoint, dataset, feature extractor, the side-by-side picture).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from PIL import Image, ImageDraw

from ..errors import GankitError

if TYPE_CHECKING:
    from ..config import TrainConfig
    from ..data import ImageData

METRICS = ("l1", "features")
PIXEL_L1, FEATURES = METRICS

# Result keys of `MemorisationReport.summary()`, shared by the CLI table and its JSON line.
MEDIAN_GENERATED = "median_generated"  # median over samples of the nearest-train distance
MEDIAN_TRAIN = "median_train"  # median over train images of the distance to the nearest other one
RATIO = "ratio"  # MEDIAN_GENERATED / MEDIAN_TRAIN: well below 1 means G stays close to its data
QUANTILE = "quantile"
THRESHOLD = "threshold"
FLAGGED = "flagged"  # sample indices (rows of the picture) at or below THRESHOLD
NEAREST = "nearest"  # each sample's nearest-train distance
N_REFERENCE = "n_reference"  # how many train images gave the train-to-train distances

DEFAULT_QUANTILE = 0.01  # a sample that is a fresh draw from the data is flagged 1% of the time
DEFAULT_REFERENCE = 2000  # train images whose nearest neighbour sets the baseline: ~10 s on a CPU
CHUNK = 2048  # rows of each side per distance block: blocks of at most 2048 x 2048 distances
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
FLAG_COLOUR = (220, 0, 0)  # the frame around a flagged sample in the picture


# --------------------------------------------------------------------------------------------
# pure maths


def _unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels 0..255 -> floats in [0, 1]; floats stay as they are."""
    return x.float().div_(255) if x.dtype == torch.uint8 else x.float()


def nearest(queries: torch.Tensor, pool: torch.Tensor, k: int, metric: str = PIXEL_L1, *,
            exclude: torch.Tensor | None = None, chunk: int = CHUNK,
            device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest pool items of every query, nearest first: (distances (Q, k) float64,
    indices (Q, k) int64 into the pool), on the CPU.

    metric "l1": queries (Q, C, H, W) and pool (P, C, H, W) are images, floats in [0, 1] or uint8
        0..255 (read as k/255, a block at a time, so a dataset's pixels never all exist as floats);
        the distance is the mean absolute pixel difference, in [0, 1].
    metric "features": queries (Q, D) and pool (P, D) are feature vectors; the distance is
        Euclidean, computed in float64 so that near-identical vectors do not cancel to noise.
    exclude: (Q,) the pool index each query must not match, e.g. itself when the queries are pool
        items (train-to-train); -1 excludes nothing.
    Memory stays bounded by `chunk` rows of each side: blocks of chunk x chunk distances, and
    each block is merged into the running k best. Ties go to the lower pool index.
    """
    if metric not in METRICS:
        raise GankitError(f"unknown distance {metric!r}: choose from {', '.join(METRICS)}")
    available = len(pool) - (1 if exclude is not None else 0)
    if not 1 <= k <= available:
        raise GankitError(f"k={k} nearest neighbours cannot be found among {available} training "
                          f"images: use k between 1 and {max(available, 1)}")
    assert queries.shape[1:] == pool.shape[1:], \
        f"queries {tuple(queries.shape)} and pool {tuple(pool.shape)} differ per item"
    assert metric == PIXEL_L1 or queries.ndim == 2, f"features must be (N, D), got {queries.shape}"
    assert exclude is None or exclude.shape == (len(queries),), exclude.shape
    assert chunk >= 1

    def prepare(block: torch.Tensor) -> torch.Tensor:  # (B, ...) -> (B, D) on the device
        block = block.to(device).flatten(1)
        return _unit(block) if metric == PIXEL_L1 else block.double()

    all_distances, all_indices = [], []
    for q_start in range(0, len(queries), chunk):
        q = prepare(queries[q_start:q_start + chunk])  # (Qc, D)
        best_d = torch.full((len(q), k), math.inf, dtype=torch.float64, device=device)
        best_i = torch.full((len(q), k), -1, dtype=torch.long, device=device)
        skip = None if exclude is None else exclude[q_start:q_start + chunk].to(device)
        for p_start in range(0, len(pool), chunk):
            p = prepare(pool[p_start:p_start + chunk])  # (Pc, D)
            if metric == PIXEL_L1:
                d = torch.cdist(q, p, p=1.0).double().div_(q.shape[1])  # sum |x - y| / D
            else:
                d = torch.cdist(q, p, p=2.0)  # float64; mm form for large blocks, clamped at 0
            if skip is not None:
                local = skip - p_start
                rows = torch.nonzero((local >= 0) & (local < len(p))).squeeze(1)
                d[rows, local[rows]] = math.inf
            index = torch.arange(p_start, p_start + len(p), device=device).expand(len(q), -1)
            # The running best come first and hold lower indices: a stable sort keeps ties in
            # pool order, so the chunk size never changes which of two equal neighbours wins.
            d, order = torch.sort(torch.cat([best_d, d], 1), dim=1, stable=True)
            best_d = d[:, :k]
            best_i = torch.cat([best_i, index], 1).gather(1, order[:, :k])
        all_distances.append(best_d.cpu())
        all_indices.append(best_i.cpu())
    return torch.cat(all_distances), torch.cat(all_indices)


@dataclass
class MemorisationReport:
    """Generated-to-train nearest distances against train-to-train ones, for one distance."""

    metric: str  # "l1" or "features"
    nearest: torch.Tensor  # (G,) each generated sample's distance to its nearest train image
    reference: torch.Tensor  # (R,) each of R train images' distance to its nearest other one
    quantile: float
    threshold: float  # the `quantile` quantile of `reference`
    median_generated: float
    median_train: float
    ratio: float  # median_generated / median_train (inf when median_train is 0 and the other not)
    flagged: list[int] = field(default_factory=list)  # samples with nearest <= threshold

    def summary(self) -> dict:
        """The report under the result-key constants; non-finite numbers as None (valid JSON)."""
        def number(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {MEDIAN_GENERATED: number(self.median_generated),
                MEDIAN_TRAIN: number(self.median_train), RATIO: number(self.ratio),
                QUANTILE: self.quantile, THRESHOLD: number(self.threshold),
                FLAGGED: self.flagged, N_REFERENCE: len(self.reference),
                NEAREST: [round(x, 6) for x in self.nearest.tolist()]}


def memorisation_report(generated: torch.Tensor, reference: torch.Tensor,
                        quantile: float = DEFAULT_QUANTILE, metric: str = PIXEL_L1
                        ) -> MemorisationReport:
    """Flag generated samples that sit closer to the training set than training images do.

    generated: (G,) each sample's distance to its nearest training image.
    reference: (R,) each of R training images' distance to its nearest *other* training image,
        over the same whole training set (so both sides search a pool of the same size).
    The threshold is the `quantile` quantile of `reference`. Why: a training image is a draw
    from the data distribution, and `reference` is how far such a draw lies from the rest of the
    data. A generator that produces new draws from that distribution has nearest distances
    distributed like `reference`, so it has only a `quantile` chance per sample of landing at or
    below the threshold: `quantile` is the false-alarm rate (about quantile * G flags expected for
    a perfect, non-copying G), and a copy, at a distance near 0, is flagged whatever the data.
    "At or below" so that exact copies are still flagged when the data itself holds duplicates
    (threshold 0). The ratio of medians summarises the whole sample: near 1 is healthy, well
    below 1 means G stays close to its training images even where no single sample is a copy.
    """
    if not 0 < quantile < 1:
        raise GankitError(f"quantile {quantile} must lie strictly between 0 and 1, e.g. 0.01")
    generated, reference = generated.double().flatten(), reference.double().flatten()
    assert len(generated) >= 1 and len(reference) >= 1, (generated.shape, reference.shape)
    threshold = torch.quantile(reference, quantile).item()  # linear interpolation
    median_generated = torch.quantile(generated, 0.5).item()  # the true median, also for even G
    median_train = torch.quantile(reference, 0.5).item()
    if median_train > 0:
        ratio = median_generated / median_train
    else:
        ratio = 1.0 if median_generated == 0 else math.inf
    flagged = torch.nonzero(generated <= threshold).squeeze(1).tolist()
    return MemorisationReport(metric, generated, reference, quantile, threshold, median_generated,
                              median_train, ratio, flagged)


# --------------------------------------------------------------------------------------------
# the check of a checkpoint: I/O


@dataclass
class NearestResult:
    checkpoint: str
    step: int
    data: str  # the training data's source
    samples: torch.Tensor  # (n, C, H, W) in [0, 1]: `gankit sample --n n --seed seed` images
    k: int
    reports: dict[str, MemorisationReport]  # by metric: "l1", and "features" unless skipped
    neighbours: dict[str, torch.Tensor]  # by metric: (n, k) training-image indices, nearest first
    distances: dict[str, torch.Tensor]  # by metric: (n, k)
    features: str | None  # the feature extractor used; None when skipped or not asked for
    features_skipped: str | None  # why feature distances were not computed, when they were asked
    pictures: dict[str, Path]  # by metric: the side-by-side picture written

    def to_json(self) -> dict:
        return {"checkpoint": self.checkpoint, "step": self.step, "data": self.data,
                "n": len(self.samples), "k": self.k, "features": self.features,
                "features_skipped": self.features_skipped,
                "distances": {m: report.summary() for m, report in self.reports.items()},
                "pictures": {m: str(path) for m, path in self.pictures.items()}}


def training_images(config: TrainConfig, progress: bool = False) -> ImageData:
    """The images G was trained on: the run's data, less the held-out split when the run
    evaluated during training (api._prepare_eval holds out the same fixed split)."""
    from ..data import load_dataset

    data = load_dataset(config.data, progress=progress)
    if config.eval.every is not None:
        data, _ = data.split(config.eval.holdout, seed=0)
    return data


def pool_pixels(data: ImageData) -> torch.Tensor:
    """uint8 (N, C, size, size): the images as stored, centre crops for crop="random"."""
    if isinstance(data.images, torch.Tensor):
        return data.pixels()  # a mapped store's own pages when it is the whole set
    return torch.cat([data.batch(part).mul_(255).round_().to(torch.uint8)
                      for part in torch.arange(len(data)).split(1024)])


def side_by_side(samples: torch.Tensor, neighbours: torch.Tensor, pool: torch.Tensor,
                 flagged: list[int]) -> Image.Image:
    """One row per sample: the sample, then its k nearest training images; flagged samples in a
    red frame (drawn in the grid's padding, so no pixel of the image is hidden)."""
    from ..visualize import grid_image

    n, k = neighbours.shape
    rows = [torch.cat([samples[i:i + 1], _unit(pool[neighbours[i]])]) for i in range(n)]
    padding = 2
    picture = grid_image(torch.cat(rows), nrow=k + 1, padding=padding)  # (k+1) x n tiles
    if flagged:
        picture = picture.convert("RGB")
        draw = ImageDraw.Draw(picture)
        h, w = samples.shape[2:]
        for i in flagged:
            top = padding + i * (h + padding)
            draw.rectangle((padding - 1, top - 1, padding + w, top + h), outline=FLAG_COLOUR)
    return picture


def check_memorisation(checkpoint: str | Path, n: int = 16, k: int = 3,
                       features: str | None = "auto", out: str | Path = "nearest.png",
                       seed: int = 0, quantile: float = DEFAULT_QUANTILE,
                       n_reference: int = DEFAULT_REFERENCE, device: str = "cpu",
                       inception_weights: str | Path | None = None, batch_size: int = 250,
                       progress: bool = False, train: ImageData | None = None) -> NearestResult:
    """Find the k nearest training images of n samples of a checkpoint's EMA generator, by pixel
    L1 and by feature distance; report them against train-to-train distances; draw them.

    features: a registered extractor name, "auto" (mnist for digit data, else inception), or
        None / "none" for pixel L1 only. An extractor that cannot be loaded (e.g. Inception
        weights missing offline) skips the feature distances with a warning saying why.
    out: the picture of pixel-L1 neighbours; feature neighbours go beside it as <stem>-features.
    n_reference: training images (a fixed random subset) whose nearest *other* training image
        gives the baseline distances.
    inception_weights: a local FID Inception weights file, used by the inception extractors
        only; default the run's own eval.inception_weights.
    train: the images the run was trained on, where the caller has them (a run built with its
        data given directly, as the benchmarks do); default: loaded from the run's config.
    """
    from ..api import load_generator
    from . import default_features
    from ..visualize import save_image_atomic
    from .evaluate import (cached_real_features, extract, fake_batches, metrics_cache_dir,
                           real_subset)
    from .features import FEATURE_EXTRACTORS, load_feature_extractor

    # Every option is checked before the slow work starts.
    for name, value in (("n", n), ("k", k), ("reference", n_reference)):
        if value < 1:
            raise GankitError(f"--{name} {value}: use at least 1")
    if not 0 < quantile < 1:
        raise GankitError(f"--quantile {quantile} must lie strictly between 0 and 1, e.g. 0.01")
    out = Path(out)
    if out.suffix.lower() not in PICTURE_SUFFIXES:
        raise GankitError(f"--out {out}: name a picture file ending in .png (or .jpg, .webp)")
    if features is not None and features != "none" and features != "auto" \
            and ":" not in features and features not in FEATURE_EXTRACTORS:
        # A typo is an error, not a silent fall-back to pixels only.
        raise GankitError(f"unknown feature extractor '{features}': choose one of "
                          f"{', '.join(FEATURE_EXTRACTORS.names())}, or none")

    generator = load_generator(checkpoint, device=device)
    config = generator.config
    train = training_images(config, progress) if train is None else train
    pool = pool_pixels(train)  # uint8 (N, C, H, W)
    if k > len(train):
        raise GankitError(f"--k {k}: the run has only {len(train)} training images; use a "
                          "smaller --k")
    samples = generator.sample(n, seed=seed)  # (n, C, H, W) in [0, 1], as `gankit sample` draws
    assert samples.shape[1:] == pool.shape[1:], (samples.shape, pool.shape)
    work_device = generator.device if device == "auto" else torch.device(device)
    reference = real_subset(train, n_reference)  # fixed random train images, as eval picks reals

    inputs: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {
        PIXEL_L1: (samples, pool[reference], pool)}  # (generated, reference queries, pool)
    extractor_name, skipped = None, None
    if features not in (None, "none"):
        extractor_name = default_features(config.data.source) if features == "auto" else features
        weights = (inception_weights or config.eval.inception_weights
                   if extractor_name.startswith("inception") else None)  # as `gankit eval` does
        try:
            extractor = load_feature_extractor(extractor_name, weights)
        except GankitError as err:
            skipped, extractor_name = str(err), None
            warnings.warn(f"feature distances skipped, pixel L1 only: {err}", stacklevel=2)
        else:
            was_training = extractor.training
            extractor.to(work_device).eval()
            try:
                train_features = torch.from_numpy(cached_real_features(
                    train, extractor, extractor_name, len(train), batch_size, work_device,
                    metrics_cache_dir(), progress))  # (N, D), dataset order
                sample_features = torch.from_numpy(extract(
                    extractor, fake_batches(samples, n, batch_size), n, work_device, progress,
                    "features of samples"))  # (n, D)
            finally:
                extractor.train(was_training)
            inputs[FEATURES] = (sample_features, train_features[reference], train_features)

    reports, neighbours, distances, pictures = {}, {}, {}, {}
    for metric, (generated, queries, candidates) in inputs.items():
        distances[metric], neighbours[metric] = nearest(generated, candidates, k, metric,
                                                        device=work_device)
        # Each reference image against the whole training set, less itself: the same pool
        # size as the samples search, so the two distributions are comparable.
        baseline, _ = nearest(queries, candidates, 1, metric, exclude=reference,
                              device=work_device)
        reports[metric] = memorisation_report(distances[metric][:, 0], baseline[:, 0], quantile,
                                              metric)
        path = out if metric == PIXEL_L1 else out.with_name(f"{out.stem}-{metric}{out.suffix}")
        pictures[metric] = save_image_atomic(
            side_by_side(samples, neighbours[metric], pool, reports[metric].flagged), path)
    return NearestResult(str(checkpoint), generator.step, config.data.source, samples, k,
                         reports, neighbours, distances, extractor_name, skipped, pictures)


__all__ = [
    "FEATURES", "FLAGGED", "MEDIAN_GENERATED", "MEDIAN_TRAIN", "METRICS", "MemorisationReport",
    "NEAREST", "N_REFERENCE", "NearestResult", "PIXEL_L1", "QUANTILE", "RATIO", "THRESHOLD",
    "check_memorisation", "memorisation_report", "nearest",
]
