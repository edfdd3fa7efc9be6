"""Precision/recall and density/coverage (gankit.metrics.manifold): against torch-fidelity's prc
and a brute-force reference of the formulas, hand-made sets with known answers, chunk-size
independence, one-line errors, and `compute_metrics` / `gankit eval` reporting them.

All feature sets are tiny (at most a few hundred rows), so everything here runs in seconds.
"""

from __future__ import annotations

import inspect
import json
import re

import numpy as np
import pytest
import torch
import torch.nn as nn

from gankit.data import ImageData
from gankit.errors import GankitError
from gankit.metrics import (COVERAGE, DC_K, DENSITY, FEATURE_EXTRACTORS, KID_MEAN, N_FAKE,
                            N_REAL, PR_K, PRECISION, RECALL, compute_metrics, density_coverage,
                            precision_recall, register_feature_extractor)
from gankit.metrics.manifold import DC_NEIGHBOURS, PR_NEIGHBOURS, kth_neighbour_distances

from helpers import one_line_error, run_cli

metric_prc = pytest.importorskip("torch_fidelity.metric_prc")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "gankit-cache"))


def reference(real: np.ndarray, fake: np.ndarray, k: int) -> dict:
    """The four metrics straight from their formulas, on full distance matrices (differences,
    not the |x|^2 - 2xy + |y|^2 form), radii as the references take them: the (k+1)-th smallest
    of each row of the self-distance matrix, whose smallest is the point's own 0. Closed balls
    for precision/recall (Kynkaanniemi et al., torch-fidelity), open for density/coverage (prdc)."""
    def distances(a, b):  # (len(a), len(b))
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    real_radii = np.sort(distances(real, real), axis=1)[:, k]  # (N,)
    fake_radii = np.sort(distances(fake, fake), axis=1)[:, k]  # (M,)
    d = distances(real, fake)  # (N, M)
    return {PRECISION: (d <= real_radii[:, None]).any(0).mean(),
            RECALL: (d <= fake_radii[None, :]).any(1).mean(),
            DENSITY: (d < real_radii[:, None]).sum() / (k * len(fake)),
            COVERAGE: (d.min(1) < real_radii).mean()}


def both(real, fake, k: int, chunk: int = 2048) -> dict:
    return {**precision_recall(real, fake, k, chunk), **density_coverage(real, fake, k, chunk)}


def defaults(real, fake) -> dict:
    """Each metric at its default k: 3 for precision/recall, 5 for density/coverage."""
    return {**precision_recall(real, fake), **density_coverage(real, fake)}


def clusters(rng, centres: np.ndarray, per: int) -> np.ndarray:
    """`per` unit-Gaussian points around each centre: (len(centres) * per, D)."""
    return np.concatenate([c + rng.normal(size=(per, centres.shape[1])) for c in centres])


# --------------------------------------------------------------------------------------------
# agreement with the references


@pytest.mark.parametrize("k", [1, 3, 5])
def test_precision_recall_agree_with_torch_fidelity(k):
    rng = np.random.default_rng(k)
    real, fake = rng.normal(size=(120, 8)), rng.normal(size=(90, 8)) * 1.3 + 0.3
    ours = precision_recall(real, fake, k)
    assert ours[PR_K] == k
    assert 0.1 < ours[PRECISION] < 0.95 and ours[RECALL] > 0.3  # not a trivial 0 or 1
    for theirs_fn in (metric_prc.calculate_precision_recall_full,
                      metric_prc.calculate_precision_recall_part):
        # Convention: their features_1 is generated, features_2 real; small batches make the
        # "part" variant chunk its distances too.
        precision, recall = theirs_fn(torch.from_numpy(fake), torch.from_numpy(real),
                                      neighborhood=k, batch_size=32)
        # torch-fidelity averages its booleans in float32: compare the counts it implies exactly,
        # and the shares to float32 rounding.
        assert ours[PRECISION] * len(fake) == pytest.approx(round(precision * len(fake)), abs=1e-9)
        assert ours[RECALL] * len(real) == pytest.approx(round(recall * len(real)), abs=1e-9)
        assert ours[PRECISION] == pytest.approx(precision, abs=1e-6)
        assert ours[RECALL] == pytest.approx(recall, abs=1e-6)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_all_four_agree_with_the_brute_force_formulas(k):
    rng = np.random.default_rng(10 + k)
    real, fake = rng.normal(size=(80, 6)), rng.normal(size=(70, 6)) * 0.8 + 0.4
    ours, expected = both(real, fake, k), reference(real, fake, k)
    for key in (PRECISION, RECALL, DENSITY, COVERAGE):
        assert ours[key] == pytest.approx(expected[key], abs=1e-9), key
    assert 0 < ours[DENSITY] and 0 < ours[COVERAGE] < 1


def test_radii_leave_the_point_itself_out_but_count_its_duplicates():
    x = torch.tensor([[0.0], [1.0], [3.0], [3.0], [7.0]])
    # distances to the others: 0 -> 1 3 3 7; 1 -> 1 2 2 6; 3 -> 0 2 3 4 (twice); 7 -> 4 4 6 7
    assert kth_neighbour_distances(x, 1).tolist() == [1.0, 1.0, 0.0, 0.0, 4.0]
    assert kth_neighbour_distances(x, 2).tolist() == [3.0, 2.0, 2.0, 2.0, 4.0]


def test_a_fake_on_a_ball_s_edge_counts_for_precision_recall_but_not_density_coverage():
    # On a line, k=1: every real ball has radius 2; the fake at 6 sits exactly on the edge of the
    # ball of the real at 4. Integer features give exact distances, so the tie is real.
    real = np.array([[0.0], [2.0], [4.0]])
    fake = np.array([[6.0], [8.0]])  # fake balls: radius 2 as well
    ours = both(real, fake, k=1)
    assert ours[PRECISION] == 0.5  # closed ball: d <= r (Kynkaanniemi et al., torch-fidelity)
    assert ours[RECALL] == pytest.approx(1 / 3)  # the real at 4, on the edge of the fake's ball
    assert ours[DENSITY] == 0.0 and ours[COVERAGE] == 0.0  # open ball: d < r (prdc)
    precision, recall = metric_prc.calculate_precision_recall_full(
        torch.from_numpy(fake), torch.from_numpy(real), neighborhood=1)
    assert (precision, recall) == pytest.approx((0.5, 1 / 3), abs=1e-6)


# --------------------------------------------------------------------------------------------
# hand-made sets whose answers are known


def test_identical_sets_score_one():
    # Integer coordinates: exact distances, so "identical" holds bit for bit; no ties between a
    # point's k-th and (k+1)-th neighbour, so each open ball holds exactly k fakes.
    real = np.random.default_rng(0).integers(0, 10_000, size=(60, 3)).astype(float)
    radii = np.sort(np.sqrt(((real[:, None] - real[None]) ** 2).sum(-1)), axis=1)
    assert (radii[:, DC_NEIGHBOURS] < radii[:, DC_NEIGHBOURS + 1]).all()
    ours = both(real, real.copy(), PR_NEIGHBOURS)
    assert ours[PRECISION] == ours[RECALL] == ours[COVERAGE] == 1.0
    dc = density_coverage(real, real.copy())
    assert dc[DENSITY] == 1.0 and dc[COVERAGE] == 1.0  # the open ball holds its centre + k - 1


def test_a_fake_set_far_away_scores_zero():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(50, 4))
    far = rng.normal(size=(40, 4)) + 100.0
    ours = both(real, far, 3)
    assert ours[PRECISION] == ours[RECALL] == ours[DENSITY] == ours[COVERAGE] == 0.0
    near = both(real, rng.normal(size=(40, 4)), 3)  # the same test can fail: fakes like the reals
    assert near[PRECISION] > 0.5 and near[RECALL] > 0.5 and near[COVERAGE] > 0.5


def test_missing_modes_lower_recall_and_coverage_while_off_data_fakes_lower_precision_and_density():
    rng = np.random.default_rng(2)
    centres = np.eye(4, 8) * 100.0  # four well-separated clusters of reals
    real = clusters(rng, centres, 50)  # (200, 8)
    # The thresholds hold for seeds 0 to 4: at 50 points a cluster in 8-d, precision of perfect
    # fakes is only about 0.85 (the k-NN balls underestimate the manifold).

    # Diversity failure: good fakes, but only from two of the four clusters.
    collapsed = defaults(real, clusters(rng, centres[:2], 50))
    assert collapsed[RECALL] <= 0.5 and collapsed[COVERAGE] <= 0.5  # two clusters unreachable
    assert collapsed[RECALL] > 0.3 and collapsed[COVERAGE] > 0.4  # ... the other two reached
    assert collapsed[PRECISION] > 0.7 and collapsed[DENSITY] > 0.75  # fidelity intact

    # Fidelity failure: every cluster reached, but half the fakes lie off the data.
    junk = clusters(rng, np.full((1, 8), 50.0), 200)
    sloppy = defaults(real, np.concatenate([clusters(rng, centres, 50), junk]))
    assert sloppy[PRECISION] <= 0.5 and sloppy[DENSITY] < 0.65  # junk lies in no real ball
    assert sloppy[RECALL] > 0.7 and sloppy[COVERAGE] > 0.9  # diversity intact

    # The two failures read apart.
    assert collapsed[PRECISION] - collapsed[RECALL] > 0.3
    assert sloppy[RECALL] - sloppy[PRECISION] > 0.3
    assert collapsed[DENSITY] - collapsed[COVERAGE] > 0.3
    assert sloppy[COVERAGE] - sloppy[DENSITY] > 0.3


# --------------------------------------------------------------------------------------------
# bounded memory: the chunk size changes nothing


def test_the_chunk_size_does_not_change_the_result():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(45, 5)), rng.normal(size=(35, 5)) + 0.2
    whole = both(real, fake, 3, chunk=4096)
    for chunk in (1, 3, 16, 34):  # 34: a last block of one row on the fake side
        assert both(real, fake, 3, chunk=chunk) == whole, chunk
    assert 0 < whole[PRECISION] < 1 and 0 < whole[COVERAGE] < 1


def test_torch_and_numpy_inputs_give_the_same_result():
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(40, 5)), rng.normal(size=(30, 5))
    assert both(real, fake, 3) == both(torch.from_numpy(real), torch.from_numpy(fake), 3)


# --------------------------------------------------------------------------------------------
# errors: one clear line


@pytest.mark.parametrize("call, match", [
    (lambda r, f: precision_recall(r[:3], f, 3), r"precision and recall with k=3 need more than 3"),
    (lambda r, f: precision_recall(r, f[:3], 3), r"got 20 real and 3 fake: raise .*--n.*--pr-k"),
    (lambda r, f: density_coverage(r[:5], f, 5), r"density and coverage with k=5 need more "
                                                 r"than 5 real samples.*--dc-k"),
    (lambda r, f: precision_recall(r[:0], f, 3), r"got 0 real and 20 fake"),
    (lambda r, f: density_coverage(r, f[:0], 5), r"need at least one fake sample, got 0"),
    (lambda r, f: precision_recall(r, f, 0), r"need k of at least 1, got k=0"),
])
def test_bad_input_is_one_clear_error(call, match):
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(20, 4)), rng.normal(size=(20, 4))
    with pytest.raises(GankitError, match=match) as error:
        call(real, fake)
    assert "\n" not in str(error.value)


def test_density_coverage_need_only_one_fake():
    rng = np.random.default_rng(6)
    real = rng.normal(size=(20, 4))
    scores = density_coverage(real, real[:1], 5)  # a copy of one real: inside its own ball
    assert scores[COVERAGE] >= 1 / 20 and scores[DENSITY] >= 1 / 5


# --------------------------------------------------------------------------------------------
# compute_metrics and `gankit eval`


class Projection(nn.Module):
    """A fixed random projection of the pixels to 16 features that counts the images it sees."""

    def __init__(self, pixels: int = 64):
        super().__init__()
        self.register_buffer("weight", torch.randn(pixels, 16,
                                                   generator=torch.Generator().manual_seed(0)))
        self.seen = 0

    def forward(self, images):
        self.seen += len(images)
        return images.flatten(1) @ self.weight  # (B, 16)


@pytest.fixture
def projection(monkeypatch):
    """A registered "projection" extractor, forgotten after the test."""
    monkeypatch.setattr(FEATURE_EXTRACTORS, "_entries", dict(FEATURE_EXTRACTORS._entries))
    extractor = Projection()
    register_feature_extractor("projection", extractor)
    return extractor


def toy_images(seed: int, n: int = 100) -> ImageData:
    pixels = torch.randint(0, 256, (n, 1, 8, 8), generator=torch.Generator().manual_seed(seed),
                           dtype=torch.uint8)
    return ImageData(pixels, None, None, "toy", 8, 1)


def test_compute_metrics_reports_them_on_request_only(projection):
    real, fake = toy_images(0), toy_images(1).batch(torch.arange(80))
    options = dict(n=80, batch_size=40, progress=False, kid_subsets=3, kid_subset_size=40)
    default = compute_metrics(fake, real, "projection", **options)
    assert PRECISION not in default and DENSITY not in default and KID_MEAN in default

    scores = compute_metrics(fake, real, "projection", metrics=("kid", "pr", "dc"), **options)
    assert set(scores) == {KID_MEAN, "kid_std", PRECISION, RECALL, PR_K, DENSITY, COVERAGE, DC_K,
                           N_REAL, N_FAKE}
    assert scores[PR_K] == PR_NEIGHBOURS == 3 and scores[DC_K] == DC_NEIGHBOURS == 5
    assert scores[N_REAL] == scores[N_FAKE] == 80
    with torch.no_grad():  # the same reals as compute_metrics scores: a fixed subset of 80
        real_features = projection(real.batch(torch.randperm(
            100, generator=torch.Generator().manual_seed(0))[:80]))
        fake_features = projection(fake)
    expected = defaults(real_features, fake_features)
    for key in (PRECISION, RECALL, DENSITY, COVERAGE):
        assert scores[key] == pytest.approx(expected[key], abs=1e-9), key

    other_k = compute_metrics(fake, real, "projection", metrics=("pr", "dc"), pr_k=1, dc_k=2,
                              **options)
    assert other_k[PR_K] == 1 and other_k[DC_K] == 2
    assert other_k[DENSITY] == pytest.approx(
        density_coverage(real_features, fake_features, 2)[DENSITY], abs=1e-9)


def test_compute_metrics_checks_k_and_names_before_extracting(projection):
    fake = toy_images(1).batch(torch.arange(10))
    with pytest.raises(GankitError, match="unknown metric prc: choose from kid, fid, pr, dc"):
        compute_metrics(fake, toy_images(0), "projection", metrics=("kid", "prc"), progress=False)
    with pytest.raises(GankitError, match=r"k=5 need more than 5 real samples .*got 4 real"):
        compute_metrics(fake, toy_images(0, n=4), "projection", metrics=("dc",), progress=False)
    with pytest.raises(GankitError, match="k=12 need more than 12 real and fake"):
        compute_metrics(fake, toy_images(0), "projection", metrics=("pr",), pr_k=12,
                        progress=False)
    assert projection.seen == 0  # no feature was extracted before the errors


def test_eval_command_defaults_match_the_maths():
    from gankit.cli.evaluate import evaluate
    from gankit.metrics.evaluate import DEFAULT_METRICS

    options = inspect.signature(evaluate).parameters
    assert options["pr_k"].default.default == PR_NEIGHBOURS
    assert options["dc_k"].default.default == DC_NEIGHBOURS
    assert options["metrics"].default.default == ",".join(DEFAULT_METRICS) == "kid,fid"
    assert re.search(r"\bpr\b.*\bdc\b", options["metrics"].default.help)


def test_eval_command_rejects_an_unknown_metric_before_loading_the_run(tmp_path, capsys):
    code, _, err = run_cli(["eval", tmp_path / "no-such-run", "--metrics", "kid,prc"], capsys)
    line = one_line_error(code, err)
    assert "unknown metric prc" in line and "pr, dc" in line  # not "no checkpoint found"


def test_eval_command_prints_them_with_their_k(tmp_path, capsys, one_thread):
    runs = tmp_path / "runs"
    train = ["train", "--data", "digits", "--size", "16", "--batch", "8", "--no-progress",
             "--set", "model.width=8", "--set", "model.latent_dim=8", "--steps", "1",
             "--runs-dir", runs, "--name", "e"]
    assert run_cli(train, capsys)[0] == 0
    code, out, err = run_cli(["eval", runs / "e", "--metrics", "kid,fid,pr,dc", "--features",
                              "mnist", "--n", "30", "--dc-k", "4", "--no-progress"], capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result[PR_K] == 3 and result[DC_K] == 4 and result[N_REAL] == result[N_FAKE] == 30
    for key in (PRECISION, RECALL, DENSITY, COVERAGE):
        assert 0 <= result[key] <= (30 / 4 if key == DENSITY else 1), key
    table = {line.split()[0]: line.split()[1:] for line in lines[1:-3]}
    assert table[PRECISION][1] == table[RECALL][1] == "3"
    assert table[DENSITY][1] == table[COVERAGE][1] == "4"
    assert float(table[COVERAGE][0]) == pytest.approx(result[COVERAGE], rel=1e-5)
    assert len(table["kid_mean"]) == 1 and "fid" in table  # KID and FID carry no k
    assert lines[-3].startswith("fidelity") and "precision, density" in lines[-3]
    assert lines[-2].startswith("diversity") and "recall, coverage" in lines[-2]
