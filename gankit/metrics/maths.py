"""KID and FID: pure maths on feature arrays, no models and no I/O.

Inputs are feature arrays (N, D), numpy or torch (torch tensors are moved to the CPU); every
computation runs in float64 numpy, so results do not depend on the device or on float32 rounding.
The formulas are those of torch-fidelity (KID: its `mmd2` and `kernel_poly`, with the same subset
draws for the same seed) and pytorch-fid (FID: `calculate_frechet_distance`); the tests check the
agreement with torch-fidelity to 1e-6 relative.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ..errors import GankitError

# Result keys, shared by every caller (CLI table, training logs, JSON lines).
KID_MEAN = "kid_mean"
KID_STD = "kid_std"
FID = "fid"

# torch-fidelity's defaults, so numbers are comparable with papers that use it.
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
KID_SEED = 2020
FID_EPS = 1e-6  # diagonal offset that makes an ill-conditioned covariance product square-rootable
FID_MAX_IMAG = 1e-3  # largest imaginary part of sqrtm's diagonal that is still rounding noise


def as_features(x) -> np.ndarray:
    """numpy or torch (N, D) -> float64 numpy (N, D)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    assert x.ndim == 2, f"features must be (N, D), got shape {x.shape}"
    return x


# --------------------------------------------------------------------------------------------
# KID: Kernel Inception Distance (Binkowski et al. 2018), unbiased MMD^2 averaged over subsets


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / d + 1)^3 for every pair of rows: (m, D), (n, D) -> (m, n)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    """Unbiased MMD^2 from the three (m, m) kernel matrices of two samples of size m.

    MMD^2 = sum_{i!=j} k(x_i, x_j) / m(m-1) + sum_{i!=j} k(y_i, y_j) / m(m-1)
            - 2 sum_{i,j} k(x_i, y_j) / m^2
    Dropping the diagonals of K_xx and K_yy removes the bias, so the estimate can be slightly
    negative when the distributions match.
    """
    m = k_xx.shape[0]
    assert k_xx.shape == k_xy.shape == k_yy.shape == (m, m)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.sum() / (m * m))


def kid(x, y, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE,
        seed: int = KID_SEED) -> dict[str, float]:
    """KID between feature sets x (N1, D) and y (N2, D): {KID_MEAN, KID_STD} over `subsets` draws.

    Each draw takes `subset_size` rows of x and of y without replacement. When either set is
    smaller than `subset_size`, the subset size shrinks to the smaller count, with a warning.
    """
    x, y = as_features(x), as_features(y)
    assert x.shape[1] == y.shape[1], f"feature sizes differ: {x.shape} vs {y.shape}"
    assert subsets >= 1 and subset_size >= 2, (subsets, subset_size)
    smallest = min(len(x), len(y))
    if smallest < 2:
        raise GankitError(f"KID needs at least 2 samples on each side, got {len(x)} and {len(y)}: "
                          "raise the number of samples (--n)")
    if smallest < subset_size:
        warnings.warn(f"KID subset size {subset_size} is larger than the samples ({len(x)} and "
                      f"{len(y)}); using subsets of {smallest} (raise --n for a steadier KID)",
                      stacklevel=2)
        subset_size = smallest
    # The legacy RandomState and this draw order are torch-fidelity's: the same seed picks the
    # same subsets, so the numbers match its output exactly.
    rng = np.random.RandomState(seed)
    values = np.empty(subsets)
    for i in range(subsets):
        xs = x[rng.choice(len(x), subset_size, replace=False)]
        ys = y[rng.choice(len(y), subset_size, replace=False)]
        values[i] = mmd2_unbiased(polynomial_kernel(xs, xs), polynomial_kernel(xs, ys),
                                  polynomial_kernel(ys, ys))
    return {KID_MEAN: float(values.mean()), KID_STD: float(values.std())}


# --------------------------------------------------------------------------------------------
# FID: Frechet distance between Gaussians fitted to the features (Heusel et al. 2017)


def gaussian_stats(x) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D)."""
    x = as_features(x)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr((sigma1 sigma2)^(1/2)).

    Tr((sigma1 sigma2)^(1/2)) is the sum of the square roots of the eigenvalues of sigma1 sigma2
    (real and non-negative in exact arithmetic), as torch-fidelity computes it: unlike a matrix
    square root (sqrtm) it stays stable when there are fewer samples than feature dimensions.
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    assert mu1.shape == mu2.shape and sigma1.shape == sigma2.shape == (len(mu1), len(mu1))
    diff = mu1 - mu2
    eigenvalues = np.linalg.eigvals(sigma1 @ sigma2)
    trace_sqrt = np.sqrt(eigenvalues.astype(complex)).real.sum()  # tiny negative rounding -> 0
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def fid(x, y) -> dict[str, float]:
    """FID between feature sets x (N1, D) and y (N2, D): {FID}."""
    return {FID: frechet_distance(*gaussian_stats(x), *gaussian_stats(y))}
