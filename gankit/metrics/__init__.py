"""Metrics: KID and FID (pure maths in `maths`), feature extractors (`features`), and their
computation against a dataset with cached real features (`evaluate`).

    from gankit.metrics import compute_metrics, KID_MEAN
    scores = compute_metrics(G.sample, real_data, "mnist", n=2000)
"""

from .evaluate import METRICS, N_FAKE, N_REAL, compute_metrics, metrics_cache_dir
from .features import (FEATURE_EXTRACTORS, INCEPTION_ENV, INCEPTION_FILE, INCEPTION_URL,
                       MnistFeatures, load_feature_extractor, register_feature_extractor)
from .maths import FID, KID_MEAN, KID_STD, fid, frechet_distance, gaussian_stats, kid

__all__ = [
    "FEATURE_EXTRACTORS", "FID", "INCEPTION_ENV", "INCEPTION_FILE", "INCEPTION_URL", "KID_MEAN",
    "KID_STD", "METRICS", "MnistFeatures", "N_FAKE", "N_REAL", "compute_metrics", "fid",
    "frechet_distance", "gaussian_stats", "kid", "load_feature_extractor", "metrics_cache_dir",
    "register_feature_extractor",
]
