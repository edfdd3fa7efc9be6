"""gankit.metrics.memorisation: nearest() against brute force, copy flags, `gankit nearest`.

GANKIT_CACHE and the torch hub folder point into tmp folders, so nothing here reads or writes the
home caches or needs a network.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.errors import GankitError
from gankit.metrics import FEATURE_EXTRACTORS, INCEPTION_ENV
from gankit.metrics.memorisation import (FLAGGED, MEDIAN_GENERATED, MEDIAN_TRAIN, RATIO, THRESHOLD,
                                         check_memorisation, memorisation_report, nearest,
                                         pool_pixels, side_by_side, training_images)
from helpers import one_line_error, run_cli as run

TINY = ["--data", "digits", "--size", "16", "--batch", "8", "--no-progress",
        "--set", "model.width=8", "--set", "model.latent_dim=8", "--sample-every", "2",
        "--checkpoint-every", "2"]


@pytest.fixture(autouse=True)
def private_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "gankit-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(INCEPTION_ENV, raising=False)


def brute_force(queries, pool, k, metric, exclude=None):
    """Every distance at once, in float64, then a full sort."""
    q, p = queries.flatten(1).double(), pool.flatten(1).double()
    if metric == "l1":
        d = (q[:, None] - p[None]).abs().mean(-1)
    else:
        d = (q[:, None] - p[None]).pow(2).sum(-1).sqrt()
    if exclude is not None:
        d[torch.arange(len(q)), exclude] = float("inf")
    distances, indices = d.sort(dim=1, stable=True)  # ties: lower index first, as nearest()
    return distances[:, :k], indices[:, :k]


def random_images(n, seed, low=0.0, high=1.0, shape=(1, 6, 6)):
    g = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(n, *shape, generator=g)


# --------------------------------------------------------------------------------------------
# nearest


def random_features(n, seed):
    return torch.randn(n, 16, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("metric, make", [("l1", random_images), ("features", random_features)])
def test_nearest_finds_exact_copies_and_matches_brute_force(metric, make):
    pool = make(60, 0)
    copies = torch.tensor([7, 3, 42])
    distances, indices = nearest(pool[copies], pool, k=2, metric=metric)
    assert torch.equal(indices[:, 0], copies)
    assert distances.dtype == torch.float64 and (distances[:, 0].abs() < 1e-6).all()
    assert (distances[:, 1] > 0.01).all()

    queries = make(13, 1)
    distances, indices = nearest(queries, pool, k=4, metric=metric)
    want_d, want_i = brute_force(queries, pool, 4, metric)
    assert distances.shape == indices.shape == (13, 4)
    assert torch.equal(indices, want_i)
    assert torch.allclose(distances, want_d, rtol=1e-5, atol=1e-6)


def test_l1_is_the_mean_absolute_difference_and_reads_uint8_as_k_over_255():
    pool8 = torch.randint(0, 256, (40, 3, 4, 4), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))
    queries = random_images(5, 1, shape=(3, 4, 4))
    from8 = nearest(queries, pool8, k=3)
    from_float = nearest(queries, pool8.float() / 255, k=3)
    assert torch.equal(from8[1], from_float[1]) and torch.allclose(from8[0], from_float[0])
    black, white = torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)
    assert nearest(black, white, k=1)[0].item() == pytest.approx(1.0)  # distances lie in [0, 1]


@pytest.mark.parametrize("metric", ["l1", "features"])
def test_chunking_does_not_change_the_result(metric):
    pool = random_images(70, 2) if metric == "l1" else torch.randn(70, 8)
    queries = pool[:23] + 0.05
    whole = nearest(queries, pool, k=5, metric=metric, chunk=10_000)
    for chunk in (1, 3, 16):
        parts = nearest(queries, pool, k=5, metric=metric, chunk=chunk)
        assert torch.equal(parts[1], whole[1])
        assert torch.allclose(parts[0], whole[0], rtol=1e-6, atol=1e-9)


def test_ties_go_to_the_lower_index_whatever_the_chunk():
    pool = torch.zeros(9, 1, 2, 2)  # all equal: every neighbour ties
    for chunk in (1, 2, 4, 100):
        assert nearest(pool[:1], pool, k=3, chunk=chunk)[1].tolist() == [[0, 1, 2]]


def test_self_exclusion_skips_only_the_query_itself():
    pool = random_images(50, 3)
    pool[20] = pool[11]  # a real duplicate in the data must still be found, at distance 0
    own = torch.arange(50)
    distances, indices = nearest(pool, pool, k=3, exclude=own, chunk=7)
    assert not (indices == own[:, None]).any()
    assert indices[11, 0] == 20 and indices[20, 0] == 11 and distances[11, 0] == 0
    want_d, want_i = brute_force(pool, pool, 3, "l1", exclude=own)
    assert torch.equal(indices, want_i) and torch.allclose(distances, want_d, atol=1e-6)
    # a subset of the pool as queries, each excluding its own pool index
    subset = torch.tensor([4, 11, 33])
    _, sub = nearest(pool[subset], pool, k=1, exclude=subset)
    assert sub[:, 0].tolist() == [want_i[4, 0].item(), 20, want_i[33, 0].item()]


def test_nearest_rejects_impossible_k_and_unknown_metrics():
    pool = random_images(5, 4)
    for k in (0, 6):
        with pytest.raises(GankitError, match="use k between 1 and 5"):
            nearest(pool, pool, k=k)
    with pytest.raises(GankitError, match="use k between 1 and 4"):
        nearest(pool, pool, k=5, exclude=torch.arange(5))
    with pytest.raises(GankitError, match="unknown distance"):
        nearest(pool, pool, k=1, metric="l2")


# --------------------------------------------------------------------------------------------
# the report


def train_to_train(train):
    return nearest(train, train, k=1, exclude=torch.arange(len(train)))[0][:, 0]


def test_report_flags_planted_copies_and_not_noise_far_from_the_data():
    train = random_images(300, 5, high=0.6, shape=(1, 8, 8))
    far = random_images(6, 6, low=0.7, high=1.0, shape=(1, 8, 8))
    near_copy = (train[9] + 0.002 * torch.randn(1, 8, 8)).clamp(0, 1)
    generated = torch.cat([far[:3], train[[0, 5]], near_copy[None], far[3:]])  # copies at 3, 4, 5
    report = memorisation_report(nearest(generated, train, k=1)[0][:, 0], train_to_train(train),
                                 quantile=0.01)
    assert report.flagged == [3, 4, 5]
    assert report.ratio > 1  # the far noise dominates the median
    summary = report.summary()
    assert summary[FLAGGED] == [3, 4, 5] and summary[THRESHOLD] == pytest.approx(report.threshold)
    json.dumps(summary)


def test_report_maths_and_the_false_alarm_rate_of_fresh_draws():
    train = random_images(400, 7, shape=(1, 4, 4))
    reference = train_to_train(train)
    fresh = random_images(400, 8, shape=(1, 4, 4))  # new draws from the data's distribution
    generated = nearest(fresh, train, k=1)[0][:, 0]
    report = memorisation_report(generated, reference, quantile=0.05)
    assert report.threshold == pytest.approx(np.quantile(reference.numpy(), 0.05))
    assert report.median_generated == pytest.approx(np.median(generated.numpy()))
    assert report.median_train == pytest.approx(np.median(reference.numpy()))
    assert report.ratio == pytest.approx(report.median_generated / report.median_train)
    assert 0.8 < report.ratio < 1.25
    # the quantile is the per-sample false-alarm rate for a G that does not copy: ~20 of 400
    assert 5 <= len(report.flagged) <= 40, len(report.flagged)


def test_report_with_duplicated_data_still_flags_exact_copies_and_stays_valid_json():
    reference = torch.tensor([0.0, 0.0, 0.0, 0.2])  # data that is mostly duplicates
    report = memorisation_report(torch.tensor([0.0, 0.3]), reference, quantile=0.01)
    assert report.threshold == 0 and report.flagged == [0]
    assert report.summary()[RATIO] is None  # median_train 0: no finite ratio, and no NaN in JSON
    with pytest.raises(GankitError, match="strictly between 0 and 1"):
        memorisation_report(torch.tensor([0.1]), reference, quantile=1.0)


def test_picture_has_one_row_per_sample_and_frames_flagged_ones():
    samples, pool = random_images(3, 9, shape=(1, 8, 8)), random_images(20, 10, shape=(1, 8, 8))
    neighbours = torch.tensor([[0, 1], [2, 3], [4, 5]])
    plain = side_by_side(samples, neighbours, pool, flagged=[])
    assert plain.size == (3 * 10 + 2, 3 * 10 + 2) and plain.mode == "L"
    framed = np.asarray(side_by_side(samples, neighbours, pool, flagged=[1]))
    assert framed.shape == (32, 32, 3)
    top = 2 + 1 * 10 - 1  # the frame lies in the padding just above row 1's sample
    assert tuple(framed[top, 5]) == (220, 0, 0) and tuple(framed[top - 10, 5]) != (220, 0, 0)


# --------------------------------------------------------------------------------------------
# gankit nearest, end to end


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 2-step run on 200 of the 16 px scikit-learn digits (few: quick feature extraction)."""
    runs = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANKIT_CACHE", str(runs / "cache"))
        try:
            from gankit.cli import main
            main(["train", *TINY, "--steps", "2", "--limit", "200", "--runs-dir", str(runs),
                  "--name", "t"])
        except SystemExit as exit_:
            assert exit_.code == 0
    return runs / "t"


def test_nearest_writes_pictures_and_prints_a_table_and_a_json_line(tiny_run, tmp_path, capsys):
    out = tmp_path / "near.png"
    code, text, err = run(["nearest", str(tiny_run), "--k", "3", "--n", "2", "--out", str(out),
                           "--reference", "150", "--no-progress"], capsys)
    assert code == 0, err
    result = json.loads(text.strip().splitlines()[-1])
    assert result["step"] == 2 and result["n"] == 2 and result["k"] == 3
    assert result["features"] == "mnist" and result["features_skipped"] is None
    for metric in ("l1", "features"):
        summary = result["distances"][metric]
        assert summary[MEDIAN_GENERATED] > 0 and summary[MEDIAN_TRAIN] > 0
        assert summary["n_reference"] == 150 and len(summary["nearest"]) == 2
        assert any(line.startswith(metric) for line in text.splitlines())
    # rows = n samples, columns = the sample and its k neighbours: 16 px tiles, 2 px padding
    for picture in (out, tmp_path / "near-features.png"):
        assert Image.open(picture).size == (4 * 18 + 2, 2 * 18 + 2)
    assert result["pictures"] == {"l1": str(out), "features": str(tmp_path / "near-features.png")}


def test_nearest_without_features_or_with_an_extractor_that_cannot_load(tiny_run, tmp_path, capsys,
                                                                        monkeypatch):
    out = tmp_path / "near.png"
    args = ["nearest", str(tiny_run), "--k", "1", "--n", "3", "--out", str(out), "--reference",
            "50", "--no-progress"]
    code, text, err = run([*args, "--features", "none"], capsys)
    assert code == 0, err
    result = json.loads(text.strip().splitlines()[-1])
    assert list(result["distances"]) == ["l1"] and result["features"] is None
    assert Image.open(out).size == (2 * 18 + 2, 3 * 18 + 2)

    def unloadable(weights=None):
        raise GankitError("the weights are not on this machine: pass --inception-weights PATH")

    monkeypatch.setattr(FEATURE_EXTRACTORS, "_entries", {**FEATURE_EXTRACTORS._entries,
                                                         "offline": unloadable})
    with pytest.warns(UserWarning, match="feature distances skipped, pixel L1 only: the weights"):
        code, text, err = run([*args, "--features", "offline"], capsys)
    assert code == 0, err
    result = json.loads(text.strip().splitlines()[-1])
    assert list(result["distances"]) == ["l1"]
    assert "not on this machine" in result["features_skipped"]


def test_check_flags_a_generator_that_copies_a_training_image(tiny_run, tmp_path, monkeypatch,
                                                              capsys):
    import gankit.api

    real_generator = gankit.api.load_generator(tiny_run)
    copied = pool_pixels(training_images(real_generator.config))[[17]].float() / 255

    def copying_sample(n, seed=0):  # row 1 is training image 17, the others G's own
        own = gankit.api.LoadedGenerator.sample(real_generator, n, seed)
        return torch.cat([own[:1], copied, own[2:]])

    monkeypatch.setattr(real_generator, "sample", copying_sample)
    monkeypatch.setattr(gankit.api, "load_generator", lambda path, device="cpu": real_generator)
    result = check_memorisation(tiny_run, n=4, k=2, out=tmp_path / "near.png", n_reference=100)
    for metric in ("l1", "features"):
        assert result.reports[metric].flagged == [1], metric
        assert result.neighbours[metric][1, 0] == 17 and result.distances[metric][1, 0] < 1e-4
    picture = np.asarray(Image.open(tmp_path / "near.png"))
    assert picture.shape == (4 * 18 + 2, 3 * 18 + 2, 3)  # RGB for the red frame
    assert tuple(picture[2 + 18 - 1, 5]) == (220, 0, 0)  # the frame just above row 1's sample

    code, text, err = run(["nearest", str(tiny_run), "--n", "4", "--out", str(tmp_path / "c.png"),
                           "--reference", "100", "--no-progress"], capsys)
    assert code == 0, err
    assert "likely copies, by picture row from 0 (framed in red): l1 1; features 1" in text
    assert json.loads(text.strip().splitlines()[-1])["distances"]["l1"][FLAGGED] == [1]


@pytest.mark.parametrize("args, expected", [
    (["--k", "0"], "--k 0: use at least 1"),
    (["--n", "0"], "--n 0: use at least 1"),
    (["--k", "5000"], "only 200 training images"),
    (["--quantile", "1.5"], "strictly between 0 and 1"),
    (["--out", "{tmp}/near.gif2"], "ending in .png"),
    (["--features", "nope"], "unknown feature extractor 'nope'"),
])
def test_bad_input_gets_one_clear_line(tiny_run, tmp_path, capsys, args, expected):
    argv = ["nearest", str(tiny_run), "--out", str(tmp_path / "x.png"), "--no-progress",
            *[a.replace("{tmp}", str(tmp_path)) for a in args]]
    line = one_line_error(*run(argv, capsys)[::2])
    assert expected in line, line
    assert not (tmp_path / "x.png").exists()


def test_missing_checkpoint_is_one_line(tmp_path, capsys):
    code, _, err = run(["nearest", str(tmp_path / "missing.pt")], capsys)
    assert "does not exist" in one_line_error(code, err)
