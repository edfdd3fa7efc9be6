"""Precision and recall (Kynkaanniemi et al. 2019), density and coverage (Naeem et al. 2020):
k-nearest-neighbour estimates of the real and the fake feature manifolds. Pure maths, no I/O.

With reals X (N, D) and fakes Y (M, D), the ball of a point is B(x, NND_k(x)), where NND_k(x) is
its distance to its k-th nearest *other* point of its own set, and manifold(X) is the union of
the balls of X:

    precision = 1/M      sum_j 1[Y_j in manifold(X)]               fidelity: fakes that look real
    recall    = 1/N      sum_i 1[X_i in manifold(Y)]               diversity: reals the fakes reach
    density   = 1/(k M)  sum_j sum_i 1[Y_j in B(X_i, NND_k(X_i))]  fidelity, counting overlaps
    coverage  = 1/N      sum_i 1[some Y_j in B(X_i, NND_k(X_i))]   diversity, from real balls only

Density and coverage are harder to fool (Naeem et al.): an outlier real's huge ball adds 1/k to
density for each fake inside it, where precision counts each such fake in full; and coverage
draws balls around reals only, so outlier fakes, whose huge balls swell recall, count for nothing.
Density is about 1 when fakes are drawn from the real distribution and exceeds 1 where fakes
crowd into dense regions.

"In" is each metric's reference code, so numbers are comparable with papers:
- precision, recall: a closed ball, d <= NND_k, as Kynkaanniemi et al.'s precision_recall.py
  (`distance_batch <= self.D`) and torch-fidelity 0.4's metric_prc.py (`dist <= dist_nn`);
- density, coverage: an open ball, d < NND_k, as Naeem et al.'s prdc.py (`distance_real_fake <
  radii`). So density is exactly 1 for two identical sets (without distance ties): each real
  ball holds its own copy and the k - 1 nearer neighbours, its k-th neighbour on the edge.
  (prdc's own precision and recall use d < NND_k too; we follow their authors and torch-fidelity.)
NND_k leaves the point itself out. The references take the (k+1)-th smallest of each row of the
full self-distance matrix (torch-fidelity `kthvalue(k + 1)`, prdc `get_kth_value(k + 1)`), whose
smallest is the point's own 0; here the point is excluded by index, the same in exact arithmetic,
duplicates included (a duplicate at distance 0 still counts as a neighbour).

Distances are Euclidean in float64 (`torch.cdist`), a block of `chunk` x `chunk` at a time, so
memory stays bounded whatever N and M are; integer-valued features give exact distances.
"""

from __future__ import annotations

import torch

from ..errors import GankitError
from .maths import as_features
from .memorisation import CHUNK, FEATURES, nearest

# Result keys, shared by every caller (CLI table, JSON lines), beside maths.KID_MEAN and FID.
PRECISION = "precision"
RECALL = "recall"
PR_K = "pr_k"  # the k of precision and recall's balls
DENSITY = "density"
COVERAGE = "coverage"
DC_K = "dc_k"  # the k of density and coverage's balls

PR_NEIGHBOURS = 3  # the paper's k and torch-fidelity's prc_neighborhood default
DC_NEIGHBOURS = 5  # Naeem et al.'s recommended k (their README and experiments)


def check_neighbours(k: int, n_real: int, n_fake: int, metric: str) -> None:
    """Can `metric` ("pr" or "dc") draw k-NN balls from n_real reals and n_fake fakes?

    Precision and recall draw balls around reals and around fakes, so both sides need more than
    k points; density and coverage draw them around reals only, and need at least one fake.
    """
    assert metric in ("pr", "dc"), metric
    name, flag = (("precision and recall", "--pr-k") if metric == "pr"
                  else ("density and coverage", "--dc-k"))
    if k < 1:
        raise GankitError(f"{name} need k of at least 1, got k={k} ({flag})")
    sides = "real and fake" if metric == "pr" else "real"
    if min((n_real, n_fake) if metric == "pr" else (n_real,)) <= k:
        raise GankitError(f"{name} with k={k} need more than {k} {sides} samples (a ball reaches "
                          f"a sample's {k} nearest others), got {n_real} real and {n_fake} fake: "
                          f"raise the number of samples (--n) or lower k ({flag})")
    if n_fake < 1:
        raise GankitError(f"{name} need at least one fake sample, got {n_fake}: raise the number "
                          "of samples (--n)")


def _as_tensor(x) -> torch.Tensor:
    """numpy or torch (N, D) -> float64 torch (N, D) on the CPU."""
    return torch.from_numpy(as_features(x))


def kth_neighbour_distances(x: torch.Tensor, k: int, chunk: int = CHUNK,
                            device: str | torch.device = "cpu") -> torch.Tensor:
    """NND_k: each row of x (N, D)'s distance to its k-th nearest other row, (N,) float64."""
    distances, _ = nearest(x, x, k, FEATURES, exclude=torch.arange(len(x)), chunk=chunk,
                           device=device)  # (N, k), nearest first, each row itself left out
    return distances[:, k - 1]


def _blocks(real: torch.Tensor, fake: torch.Tensor, chunk: int, device: str | torch.device):
    """Every (rows, columns, distances) block of the real-to-fake distance matrix, at most
    chunk x chunk: rows and columns are slices, distances (rows, columns) float64 on `device`."""
    for r in range(0, len(real), chunk):
        x = real[r:r + chunk].to(device)  # (Rc, D)
        for f in range(0, len(fake), chunk):
            yield (slice(r, r + len(x)), slice(f, f + chunk),
                   torch.cdist(x, fake[f:f + chunk].to(device)))  # (Rc, Fc)


def precision_recall(real, fake, k: int = PR_NEIGHBOURS, chunk: int = CHUNK,
                     device: str | torch.device = "cpu") -> dict[str, float]:
    """Improved precision and recall of fake features (M, D) against real ones (N, D):
    {PRECISION, RECALL, PR_K}; closed balls (d <= NND_k), as Kynkaanniemi et al. and torch-fidelity.

    precision: the share of fakes inside at least one real ball (low: samples off the data).
    recall: the share of reals inside at least one fake ball (low: modes of the data missed).
    """
    real, fake = _as_tensor(real), _as_tensor(fake)
    assert real.shape[1] == fake.shape[1], f"feature sizes differ: {real.shape} vs {fake.shape}"
    check_neighbours(k, len(real), len(fake), "pr")
    real_radii = kth_neighbour_distances(real, k, chunk, device).to(device)  # (N,)
    fake_radii = kth_neighbour_distances(fake, k, chunk, device).to(device)  # (M,)
    fake_inside = torch.zeros(len(fake), dtype=torch.bool, device=device)  # in some real ball
    real_inside = torch.zeros(len(real), dtype=torch.bool, device=device)  # in some fake ball
    for rows, columns, d in _blocks(real, fake, chunk, device):
        fake_inside[columns] |= (d <= real_radii[rows, None]).any(0)
        real_inside[rows] |= (d <= fake_radii[None, columns]).any(1)
    return {PRECISION: fake_inside.double().mean().item(),
            RECALL: real_inside.double().mean().item(), PR_K: k}


def density_coverage(real, fake, k: int = DC_NEIGHBOURS, chunk: int = CHUNK,
                     device: str | torch.device = "cpu") -> dict[str, float]:
    """Density and coverage of fake features (M, D) against real ones (N, D):
    {DENSITY, COVERAGE, DC_K}; open real balls (d < NND_k), as Naeem et al.'s prdc.

    density: real balls around the average fake, over k (about 1 for fakes like the reals; low:
        samples off the data; above 1: samples crowding where the data is dense).
    coverage: the share of reals whose ball holds at least one fake (low: modes missed).
    """
    real, fake = _as_tensor(real), _as_tensor(fake)
    assert real.shape[1] == fake.shape[1], f"feature sizes differ: {real.shape} vs {fake.shape}"
    check_neighbours(k, len(real), len(fake), "dc")
    real_radii = kth_neighbour_distances(real, k, chunk, device).to(device)  # (N,)
    inside = 0  # (fake, real ball) pairs with the fake strictly inside the ball
    covered = torch.zeros(len(real), dtype=torch.bool, device=device)  # ball holds some fake
    for rows, _, d in _blocks(real, fake, chunk, device):
        in_ball = d < real_radii[rows, None]  # (Rc, Fc)
        inside += int(in_ball.sum())
        covered[rows] |= in_ball.any(1)
    return {DENSITY: inside / (k * len(fake)), COVERAGE: covered.double().mean().item(), DC_K: k}


__all__ = [
    "COVERAGE", "DC_K", "DC_NEIGHBOURS", "DENSITY", "PRECISION", "PR_K", "PR_NEIGHBOURS",
    "RECALL", "check_neighbours", "density_coverage", "kth_neighbour_distances",
    "precision_recall",
]
