"""Metrics: KID and FID (pure maths in `maths`), precision/recall and density/coverage (pure
maths in `manifold`), feature extractors (`features`), and their computation against a dataset
with cached real features (`evaluate`); perceptual path length, which needs the generator and no
real images (`path_length`).

    from gankit.metrics import compute_metrics, KID_MEAN, PRECISION
    scores = compute_metrics(G.sample, real_data, "mnist", n=2000, metrics=("kid", "pr", "dc"))
    perceptual_path_length(G, "mnist", n=2000)[PPL]
"""

from .evaluate import (DEFAULT_METRICS, METRICS, N_FAKE, N_REAL, compute_metrics,
                       metrics_cache_dir)
from .features import (FEATURE_EXTRACTORS, INCEPTION_ENV, INCEPTION_FILE, INCEPTION_URL,
                       MnistFeatures, load_feature_extractor, register_feature_extractor)
from .manifold import (COVERAGE, DC_K, DENSITY, PR_K, PRECISION, RECALL, density_coverage,
                       precision_recall)
from .maths import FID, KID_MEAN, KID_STD, fid, frechet_distance, gaussian_stats, kid
from .path_length import PPL, PPL_PAIRS, PPL_SAMPLING, PPL_SPACE, perceptual_path_length
from ..errors import GankitError

DIGIT_DATASETS = ("mnist5k", "digits", "mnist")


def default_features(source: str) -> str:
    """The digit classifier's features for digit datasets, Inception's for everything else."""
    return "mnist" if source in DIGIT_DATASETS else "inception"


def check_eval_config(cfg) -> None:
    """The eval section (KID during training): each error names the fix."""
    if cfg.every is not None and cfg.every < 1:
        raise GankitError(f"eval.every={cfg.every} must be at least 1 (or unset)")
    if cfg.n < 2 or not 0.0 < cfg.holdout < 1.0:
        raise GankitError("eval.n must be at least 2 and eval.holdout in (0, 1) (0.1 is usual)")

__all__ = [
    "DIGIT_DATASETS", "check_eval_config", "default_features", "FEATURE_EXTRACTORS", "FID", "INCEPTION_ENV", "INCEPTION_FILE", "INCEPTION_URL", "KID_MEAN",
    "KID_STD", "METRICS", "MnistFeatures", "N_FAKE", "N_REAL", "compute_metrics", "fid",
    "frechet_distance", "gaussian_stats", "kid", "load_feature_extractor", "metrics_cache_dir",
    "register_feature_extractor", "COVERAGE", "DC_K", "DEFAULT_METRICS", "DENSITY", "PRECISION",
    "PR_K", "RECALL", "density_coverage", "precision_recall", "PPL", "PPL_PAIRS", "PPL_SAMPLING",
    "PPL_SPACE", "perceptual_path_length",
]
