"""gankit.metrics: KID/FID maths against torch-fidelity, extractors, offline Inception, real cache.

GANKIT_CACHE and the torch hub folder point into tmp_path, so the tests never read or write the
home caches, and nothing here needs a network.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
import torch.nn as nn

from gankit.config import DataConfig
from gankit.data import ImageData, load_dataset
from gankit.errors import GankitError
from gankit.metrics import (FEATURE_EXTRACTORS, FID, INCEPTION_ENV, INCEPTION_FILE, KID_MEAN,
                            KID_STD, N_FAKE, N_REAL, compute_metrics, fid, frechet_distance,
                            gaussian_stats, kid, load_feature_extractor,
                            register_feature_extractor)
from gankit import weights
from gankit.metrics import features as features_module
from gankit.metrics.features import MNIST_RECORD, MNIST_WEIGHTS
from gankit.weights import PROBE_TIMEOUT

metric_kid = pytest.importorskip("torch_fidelity.metric_kid")
metric_fid = pytest.importorskip("torch_fidelity.metric_fid")


@pytest.fixture(autouse=True)
def private_caches(tmp_path, monkeypatch):
    """A private GANKIT_CACHE and torch hub folder, no Inception env var, no proxy."""
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "gankit-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for name in (INCEPTION_ENV, "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert torch.hub.get_dir().startswith(str(tmp_path)), "torch.hub.set_dir was called elsewhere"


def gaussian(rng, n, d, shift=0.0):
    return rng.normal(size=(n, d)) + shift


# --------------------------------------------------------------------------------------------
# KID


def test_kid_of_a_set_against_itself_is_near_zero():
    rng = np.random.default_rng(0)
    x = gaussian(rng, 300, 16)
    itself = kid(x, x, subsets=20, subset_size=100)[KID_MEAN]
    shifted = kid(x, x + 0.5, subsets=20, subset_size=100)[KID_MEAN]
    # Overlapping subsets make the unbiased estimate slightly negative, never clearly positive.
    assert -0.1 * shifted < itself < 0.01 * shifted


def test_kid_is_unbiased_on_two_samples_of_one_distribution():
    rng = np.random.default_rng(1)
    repeats = 40

    def kid_once(shift):  # one subset of the whole sample: independent repeats
        return kid(gaussian(rng, 100, 8), gaussian(rng, 100, 8, shift), subsets=1,
                   subset_size=100)[KID_MEAN]

    same = np.array([kid_once(0.0) for _ in range(repeats)])
    standard_error = same.std() / np.sqrt(repeats)
    # The biased (V-statistic) estimator would sit about 0.15 above zero here, 25 errors away.
    assert abs(same.mean()) < 3 * standard_error
    shifted = np.array([kid_once(0.3) for _ in range(repeats)])
    assert shifted.mean() > 10 * standard_error and (shifted > 0).mean() > 0.9


def test_kid_shrinks_the_subset_size_with_a_warning():
    rng = np.random.default_rng(2)
    x, y = gaussian(rng, 60, 8), gaussian(rng, 50, 8)
    with pytest.warns(UserWarning, match="using subsets of 50"):
        shrunk = kid(x, y, subsets=10, subset_size=1000)
    assert shrunk == kid(x, y, subsets=10, subset_size=50)  # same draws as asking for 50


def test_kid_is_deterministic_for_a_seed():
    rng = np.random.default_rng(3)
    x, y = gaussian(rng, 200, 8), gaussian(rng, 200, 8, 0.2)
    assert kid(x, y, 10, 50, seed=5) == kid(x, y, 10, 50, seed=5)
    assert kid(x, y, 10, 50, seed=5) != kid(x, y, 10, 50, seed=6)


def test_kid_agrees_with_torch_fidelity():
    rng = np.random.default_rng(4)
    x, y = gaussian(rng, 400, 32), gaussian(rng, 300, 32, 0.3) * 1.2
    ours = kid(x, y, subsets=15, subset_size=200, seed=7)
    theirs = metric_kid.kid_features_to_metric(
        torch.from_numpy(x), torch.from_numpy(y), kid_subsets=15, kid_subset_size=200,
        rng_seed=7, verbose=False)
    assert ours[KID_MEAN] == pytest.approx(theirs[metric_kid.KEY_METRIC_KID_MEAN], rel=1e-6)
    assert ours[KID_STD] == pytest.approx(theirs[metric_kid.KEY_METRIC_KID_STD], rel=1e-6)
    assert ours[KID_MEAN] > 10 * ours[KID_STD]  # a clearly non-zero value, so rel is meaningful


# --------------------------------------------------------------------------------------------
# FID


def test_fid_of_identical_sets_is_zero():
    x = gaussian(np.random.default_rng(5), 500, 16)
    assert abs(fid(x, x)[FID]) < 1e-6


def test_fid_grows_as_the_squared_mean_shift_when_covariances_match():
    x = gaussian(np.random.default_rng(6), 500, 16)
    for size in (0.1, 0.5, 2.0):
        delta = np.full(16, size)
        assert fid(x, x + delta)[FID] == pytest.approx(delta @ delta, rel=1e-6, abs=1e-6)


def test_fid_agrees_with_torch_fidelity():
    rng = np.random.default_rng(7)
    x = gaussian(rng, 600, 32)
    y = gaussian(rng, 500, 32, 0.2) @ (np.eye(32) + 0.1 * rng.normal(size=(32, 32)))
    ours = fid(x, y)[FID]
    stats = [metric_fid.fid_features_to_statistics(torch.from_numpy(f)) for f in (x, y)]
    theirs = metric_fid.fid_statistics_to_metric(*stats, verbose=False)[metric_fid.KEY_METRIC_FID]
    assert ours == pytest.approx(theirs, rel=1e-6)
    assert ours > 1.0


def test_fid_survives_singular_covariances():
    """Fewer samples than dimensions: singular covariances, handled by the diagonal offset."""
    rng = np.random.default_rng(8)
    x, y = gaussian(rng, 10, 32), gaussian(rng, 10, 32, 1.0)
    value = frechet_distance(*gaussian_stats(x), *gaussian_stats(y))
    assert np.isfinite(value) and value > 0


# --------------------------------------------------------------------------------------------
# the mnist extractor


@pytest.fixture(scope="module")
def held_out_digits():
    """300 held-out mnist5k digits at 32 px (never seen in training) and their labels."""
    record = json.loads(MNIST_RECORD.read_text())
    start, _ = record["split"]["held_out"]
    data = load_dataset(DataConfig(source="mnist5k", size=record["image_size"], channels=1),
                        progress=False)
    index = torch.arange(start, start + 300)
    return data.batch(index), data.labels[index], record


def test_mnist_extractor_classifies_held_out_digits(held_out_digits):
    images, labels, record = held_out_digits
    assert MNIST_WEIGHTS.stat().st_size < 500_000  # a small shipped file
    extractor = load_feature_extractor("mnist")
    accuracy = (extractor.predict_digits(images) == labels).float().mean().item()
    assert accuracy >= record["held_out_accuracy"] - 0.02
    with torch.no_grad():
        assert extractor(images[:8]).shape == (8, 128)


def test_mnist_extractor_takes_any_size_and_rgb(held_out_digits):
    images, labels, _ = held_out_digits
    extractor = load_feature_extractor("mnist")
    grey = extractor.predict_digits(images)
    assert torch.equal(extractor.predict_digits(images.expand(-1, 3, -1, -1)), grey)
    at_28 = torch.nn.functional.interpolate(images, size=28, mode="bilinear", antialias=True)
    assert (extractor.predict_digits(at_28) == labels).float().mean() > 0.95


def test_mnist_extractor_explains_a_bad_weights_file(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a state dict")
    with pytest.raises(GankitError, match="train_mnist_classifier"):
        load_feature_extractor("mnist", weights=bad)


# --------------------------------------------------------------------------------------------
# the inception extractor


def test_inception_names_match_torch_fidelity():
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    assert features_module.INCEPTION_URL == URL_INCEPTION_V3
    assert URL_INCEPTION_V3.endswith("/" + INCEPTION_FILE)


def test_inception_without_weights_or_network_fails_at_once(offline):
    start = time.monotonic()
    with pytest.raises(GankitError) as error:
        load_feature_extractor("inception")
    assert time.monotonic() - start < 5
    message = str(error.value)
    assert "\n" not in message
    assert INCEPTION_FILE in message and str(features_module.hub_weights_path().parent) in message
    assert "--inception-weights" in message and INCEPTION_ENV in message


def test_the_real_network_check_returns_quickly():
    start = time.monotonic()
    weights.network_reachable(features_module.INCEPTION_URL)  # True or False, depending on this machine
    # An address that never answers (TEST-NET-1, RFC 5737): the probe must give up on time.
    assert weights.network_reachable("https://192.0.2.1/", timeout=0.5) is False
    assert time.monotonic() - start < PROBE_TIMEOUT + 0.5 + 1.0


def test_inception_weights_that_do_not_exist_are_named(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(GankitError, match="nowhere.pth does not exist"):
        load_feature_extractor("inception", weights=missing)
    monkeypatch.setenv(INCEPTION_ENV, str(missing))
    with pytest.raises(GankitError, match=f"{INCEPTION_ENV} .*nowhere.pth does not exist"):
        load_feature_extractor("inception")


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory):
    """A weights file from a randomly initialised torch-fidelity Inception (the real weights
    cannot be downloaded here). torch-fidelity always loads weights in its constructor, so its
    loading is stubbed out for this one construction."""
    from torch_fidelity import feature_extractor_inceptionv3 as tf_inception

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tf_inception, "load_state_dict_from_url", lambda *args, **kwargs: {})
        patch.setattr(tf_inception.FeatureExtractorInceptionV3, "load_state_dict",
                      lambda self, state: None)
        net = tf_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path_factory.mktemp("inception") / INCEPTION_FILE
    torch.save(net.state_dict(), path)
    return path


def test_inception_extracts_2048_features_from_a_weights_file(random_inception_weights,
                                                              monkeypatch):
    grey = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        at_75 = load_feature_extractor("inception75", weights=random_inception_weights)(grey)
        monkeypatch.setenv(INCEPTION_ENV, str(random_inception_weights))  # the env var route
        at_299 = load_feature_extractor("inception")(grey.expand(-1, 3, -1, -1))
    for features in (at_75, at_299):
        assert features.shape == (2, 2048) and torch.isfinite(features).all()
    assert not torch.allclose(at_75, at_299)  # the two input sizes really differ


def test_inception_rejects_a_file_of_other_weights():
    with pytest.raises(GankitError, match="is not the FID Inception weights file"):
        load_feature_extractor("inception", weights=MNIST_WEIGHTS)


# --------------------------------------------------------------------------------------------
# registration and compute_metrics


class CountingProjection(nn.Module):
    """A fixed random projection of the pixels to 16 features that counts the images it sees."""

    def __init__(self, pixels: int):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.register_buffer("weight", torch.randn(pixels, 16, generator=generator))
        self.seen = 0

    def forward(self, images):
        self.seen += len(images)
        return images.flatten(1) @ self.weight  # (B, 16)


@pytest.fixture
def registry(monkeypatch):
    """Registrations made by a test are forgotten after it."""
    monkeypatch.setattr(FEATURE_EXTRACTORS, "_entries", dict(FEATURE_EXTRACTORS._entries))
    return FEATURE_EXTRACTORS


def toy_images(seed: int, n: int = 150, size: int = 8) -> ImageData:
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (n, 1, size, size), generator=generator, dtype=torch.uint8)
    return ImageData(pixels, None, None, "toy", size, 1)


def test_user_extractors_register_by_name_and_reject_duplicates(registry):
    module = CountingProjection(64)
    register_feature_extractor("projection", module)
    assert load_feature_extractor("projection") is module
    register_feature_extractor("projection-factory", lambda: CountingProjection(64))
    assert isinstance(load_feature_extractor("projection-factory"), CountingProjection)
    with pytest.raises(ValueError, match="already registered"):
        register_feature_extractor("projection", CountingProjection(64))
    with pytest.raises(ValueError, match="already registered"):
        register_feature_extractor("mnist", CountingProjection(64))
    with pytest.raises(TypeError, match="wrong type"):
        register_feature_extractor("not-callable", 42)
    with pytest.raises(GankitError, match="unknown feature extractor 'nope'"):
        load_feature_extractor("nope")


def test_compute_metrics_matches_the_maths_and_caches_the_reals(registry, tmp_path):
    extractor = CountingProjection(64)
    register_feature_extractor("projection", extractor)
    real, fake = toy_images(0), toy_images(1).batch(torch.arange(120))
    options = dict(n=120, batch_size=50, progress=False, kid_subsets=5, kid_subset_size=60)

    first = compute_metrics(fake, real, "projection", **options)
    assert extractor.seen == 120 + 120  # reals (a fixed subset of 120 of 150) and fakes
    with torch.no_grad():
        real_features = extractor(real.batch(torch.randperm(150, generator=torch.Generator()
                                                            .manual_seed(0))[:120]))
        fake_features = extractor(fake)
    assert first[N_REAL] == first[N_FAKE] == 120
    assert first[KID_MEAN] == pytest.approx(
        kid(fake_features, real_features, 5, 60)[KID_MEAN], rel=1e-9)
    assert first[FID] == pytest.approx(fid(fake_features, real_features)[FID], rel=1e-9)

    extractor.seen = 0
    second = compute_metrics(fake, real, "projection", **options)
    assert extractor.seen == 120  # only the fakes: the real features came from the cache
    assert second == first

    cached = list((tmp_path / "gankit-cache" / "metrics").glob("toy-projection-8px-n120-*.npy"))
    assert len(cached) == 1
    cached[0].write_bytes(b"damaged")
    extractor.seen = 0
    with pytest.warns(UserWarning, match="unreadable metrics cache"):
        third = compute_metrics(fake, real, "projection", **options)
    assert extractor.seen == 240 and third == first  # rebuilt, then reused:
    extractor.seen = 0
    compute_metrics(fake, real, "projection", **options)
    assert extractor.seen == 120

    extractor.seen = 0
    compute_metrics(fake, toy_images(2), "projection", **options)  # other reals: a new entry
    assert extractor.seen == 240


def test_compute_metrics_takes_a_sampler(registry):
    register_feature_extractor("projection", CountingProjection(64))
    generator = torch.Generator().manual_seed(3)
    calls = []

    def sample(k):
        calls.append(k)
        return torch.rand(k, 1, 8, 8, generator=generator)

    scores = compute_metrics(sample, toy_images(0), "projection", n=130, metrics=("kid",),
                             batch_size=50, progress=False, kid_subsets=3, kid_subset_size=60)
    assert calls == [50, 50, 30]
    assert set(scores) == {KID_MEAN, KID_STD, N_REAL, N_FAKE} and scores[N_REAL] == 130


def test_compute_metrics_rejects_fakes_outside_0_1_and_unknown_metrics(registry):
    register_feature_extractor("projection", CountingProjection(64))
    tanh_range = torch.rand(100, 1, 8, 8) * 2 - 1
    with pytest.raises(GankitError, match=r"\(x \+ 1\) / 2"):
        compute_metrics(tanh_range, toy_images(0), "projection", progress=False)
    with pytest.raises(GankitError, match="unknown metric is"):
        compute_metrics(torch.rand(100, 1, 8, 8), toy_images(0), "projection", metrics=("is",))


def test_features_module_colon_name_loads_a_users_extractor(tmp_path, monkeypatch):
    from gankit.errors import GankitError
    from gankit.metrics import load_feature_extractor

    (tmp_path / "my_features.py").write_text(
        "import torch\n"
        "class Pooled(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        return torch.nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)\n"
        "def pooled():\n"
        "    return Pooled()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    extractor = load_feature_extractor("my_features:pooled")
    assert extractor(torch.rand(3, 1, 8, 8)).shape == (3, 4)
    with pytest.raises(GankitError, match="defines no callable"):
        load_feature_extractor("my_features:nothing")
    with pytest.raises(GankitError, match="cannot import"):
        load_feature_extractor("no_such_module_xyz:thing")
