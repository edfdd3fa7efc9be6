"""Perceptual path length (gankit.metrics.path_length): analytic values on linear stand-ins, the
1%/99% outlier filter against an independent numpy computation, slerp in z, t = 0 for "end",
determinism without touching the global RNG, one-line errors, and `gankit eval --metrics ppl`.

Everything is tiny (a few hundred pairs of 4x4 images, a 16 px StyleGAN trained for one step).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from gankit import latent
from gankit.errors import GankitError
from gankit.metrics import PPL, PPL_PAIRS, PPL_SAMPLING, PPL_SPACE, perceptual_path_length
from gankit.metrics.path_length import filtered_mean, path_distances, path_endpoints

from helpers import one_line_error, run_cli, tiny_options

SIZE, W_DIM, FEATURES = 4, 4, 5

# --------------------------------------------------------------------------------------------
# Stand-ins: w = z / |z| (on the unit sphere), image = 0.5 + A w. Each row of A has norm
# `row_norm` < 0.5, so images stay inside (0, 1) and are never clipped: the image is exactly
# linear in w, and for a lerp in w  img(t + eps) - img(t) = eps A (w1 - w0).


def matrix(seed: int, rows: int, cols: int, row_norm: float | None = None) -> torch.Tensor:
    m = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return m if row_norm is None else m / m.norm(dim=1, keepdim=True) * row_norm


class LinearStyleG(nn.Module):
    """A style generator whose synthesis is linear in w; a conditional one shifts z by its class
    before normalising, so a pair given two classes would land on other w."""

    output_range = (0.0, 1.0)
    latent_dim, w_dim, num_ws = W_DIM, W_DIM, 3

    def __init__(self, scale: float = 1.0, num_classes: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.A = nn.Parameter(matrix(1, SIZE * SIZE, W_DIM, 0.2 * scale).float())  # (P, w_dim)
        self.register_buffer("class_shift", matrix(2, max(num_classes, 1), W_DIM).float())
        self.register_buffer("w_avg", torch.zeros(W_DIM))

    def mapping(self, z, labels=None):
        if self.num_classes:
            z = z + self.class_shift[labels]
        return z / z.norm(dim=1, keepdim=True)

    def synthesis(self, ws):
        assert ws.shape[1:] == (self.num_ws, self.w_dim)
        return (0.5 + ws.mean(1) @ self.A.T).view(-1, 1, SIZE, SIZE)

    def forward(self, z, labels=None):
        return self.synthesis(latent.broadcast_ws(self.mapping(z, labels), self.num_ws))


class LinearPlainG(nn.Module):
    """No mapping: image = 0.5 + A z / |z|."""

    output_range = (0.0, 1.0)
    latent_dim, num_classes = W_DIM, 0

    def __init__(self):
        super().__init__()
        self.A = nn.Parameter(matrix(1, SIZE * SIZE, W_DIM, 0.2).float())

    def forward(self, z, labels=None):
        return (0.5 + (z / z.norm(dim=1, keepdim=True)) @ self.A.T).view(-1, 1, SIZE, SIZE)


class LinearFeatures(nn.Module):
    """f(x) = F (x - 0.5) over the flattened image: affine, so f(x1) - f(x0) = F (x1 - x0).
    Centred, so its float32 features are small numbers whose rounding stays small next to
    eps-sized differences (uncentred, features ~8 round to ~1e-6: 1% noise per pair)."""

    def __init__(self, pixels: int = SIZE * SIZE):
        super().__init__()
        self.F = nn.Parameter(matrix(3, FEATURES, pixels).float())

    def forward(self, images):
        return (images.flatten(1) - 0.5) @ self.F.T


def image64(G, z: torch.Tensor) -> torch.Tensor:
    """The stand-in's (unclipped) image in float64, flattened: (B, P)."""
    A = G.A.detach().double()
    return 0.5 + (z / z.norm(dim=1, keepdim=True)) @ A.T


def numpy_filtered_mean(d: np.ndarray) -> tuple[float, int]:
    """The 1%/99% filter from its definition: numpy's "lower" 1st percentile is the sorted value at
    floor(0.01 (n - 1)), its "higher" 99th the one at ceil(0.99 (n - 1)); both kept."""
    s = np.sort(d)
    low, high = s[math.floor(0.01 * (len(d) - 1))], s[math.ceil(0.99 * (len(d) - 1))]
    kept = [x for x in d if low <= x <= high]
    return sum(kept) / len(kept), len(kept)


# --------------------------------------------------------------------------------------------
# The maths


@pytest.mark.parametrize("num_classes", [0, 3])
@pytest.mark.parametrize("sampling", ["end", "full"])
def test_w_space_matches_the_analytic_value(sampling, num_classes):
    G, f = LinearStyleG(num_classes=num_classes), LinearFeatures()
    n = 300
    z0, z1, t, labels = path_endpoints(W_DIM, n, sampling, seed=5, num_classes=num_classes)
    w0, w1 = G.mapping(z0, labels).double(), G.mapping(z1, labels).double()  # one class per pair
    F, A = f.F.detach().double(), G.A.detach().double()
    expected = ((w1 - w0) @ (F @ A).T).square().sum(1).numpy()  # ||F A (w1 - w0)||^2

    distances = path_distances(G, f, n, "w", sampling, seed=5, batch_size=64)
    # float32 images round each pixel to ~3e-8, next to eps-sized steps of ~1e-5: each pair is
    # off by ~0.1% (more for the shortest steps), and the noise averages out over pairs
    np.testing.assert_allclose(distances, expected, rtol=1e-2, atol=1e-3 * expected.mean())
    assert distances.mean() == pytest.approx(expected.mean(), rel=1e-3)

    result = perceptual_path_length(G, f, n=n, space="auto", sampling=sampling, seed=5, batch_size=64)
    assert result[PPL_SPACE] == "w" and result[PPL_SAMPLING] == sampling
    assert (result[PPL], result[PPL_PAIRS]) == pytest.approx(numpy_filtered_mean(distances), rel=1e-12)
    assert result[PPL_PAIRS] == 296  # n = 300: the 2 below the 3rd smallest and the 2 above the 298th go
    assert result[PPL] == pytest.approx(numpy_filtered_mean(expected)[0], rel=1e-3)


def test_the_filter_keeps_the_1st_to_99th_percentile_inclusive():
    rng = np.random.default_rng(0)
    d = rng.exponential(size=1000)
    d[:5] = 1e9  # outliers above ...
    d[5:25] = 0.0  # ... and 20 ties at the low cut-off (the 10th smallest value)
    mean, kept = filtered_mean(d)
    assert (mean, kept) == pytest.approx(numpy_filtered_mean(d), rel=1e-12)
    assert mean < 10 and kept == 1000 - 9  # the 9 largest go, the 0.0 ties all stay (inclusive)
    assert filtered_mean(np.array([3.0, 5.0])) == (4.0, 2)  # too few pairs to drop any
    assert math.isnan(filtered_mean(np.array([1.0, np.nan, 2.0]))[0])


def test_a_rougher_generator_scores_higher():
    f = LinearFeatures()
    smooth = perceptual_path_length(LinearStyleG(scale=1.0), f, n=200, seed=1)[PPL]
    rough = perceptual_path_length(LinearStyleG(scale=2.0), f, n=200, seed=1)[PPL]
    assert rough == pytest.approx(4 * smooth, rel=1e-2)  # A twice as large: d / eps^2 four times


@pytest.mark.parametrize("make_G, space", [(LinearPlainG, "auto"), (LinearStyleG, "z")])
def test_z_space_walks_gankit_slerp_from_t_0(make_G, space):
    G, f = make_G(), LinearFeatures()
    n, eps = 100, 1e-4
    z0, z1, t, _ = path_endpoints(W_DIM, n, "end", seed=2)
    assert torch.equal(t, torch.zeros(n))  # "end": every step starts at z0
    z0, z1, t = z0.double(), z1.double(), t.double().unsqueeze(1)
    F = f.F.detach().double()
    step = image64(G, latent.slerp(z0, z1, t + eps)) - image64(G, latent.slerp(z0, z1, t))
    expected = (step @ F.T).square().sum(1).numpy() / eps ** 2

    result = perceptual_path_length(G, f, n=n, space=space, seed=2)
    assert result[PPL_SPACE] == "z"
    np.testing.assert_allclose(path_distances(G, f, n, "z", seed=2), expected, rtol=1e-2,
                               atol=1e-3 * expected.mean())
    assert result[PPL] == pytest.approx(expected.mean(), rel=1e-3)  # n = 100: nothing filtered
    # a straight line in z would give another value: the path really is the great circle
    line = image64(G, latent.lerp(z0, z1, t + eps)) - image64(G, latent.lerp(z0, z1, t))
    assert (line @ F.T).square().sum(1).mean().item() / eps ** 2 != pytest.approx(result[PPL], rel=0.05)


def test_full_sampling_draws_t_in_0_1_with_the_same_latents_as_end():
    z0, z1, t, _ = path_endpoints(W_DIM, 500, "full", seed=3)
    z0_end, z1_end, _, _ = path_endpoints(W_DIM, 500, "end", seed=3)
    assert 0 <= t.min() and t.max() < 1 and 0.4 < t.mean() < 0.6
    assert torch.equal(z0, z0_end) and torch.equal(z1, z1_end)


# --------------------------------------------------------------------------------------------
# Determinism and side effects


def tiny_stylegan(num_classes: int = 0) -> nn.Module:
    from gankit.variants import DataSpec, get_recipe

    recipe = get_recipe("stylegan")
    torch.manual_seed(0)
    G, _ = recipe.make(recipe.tiny, DataSpec(size=16, channels=1, num_classes=num_classes))
    return G


def test_same_seed_same_value_global_rng_and_modes_untouched(one_thread):
    G, f = tiny_stylegan(num_classes=2), LinearFeatures(pixels=16 * 16)
    G.train()  # training mode would draw fresh noise and mix styles from the global RNG
    before = torch.get_rng_state()
    first = path_distances(G, f, 40, "w", "full", seed=7, batch_size=8)
    assert torch.equal(torch.get_rng_state(), before)
    assert G.training and f.training  # each back in the mode it came in
    assert np.array_equal(first, path_distances(G, f, 40, "w", "full", seed=7, batch_size=8))
    # the latents do not depend on the batch size (only float rounding of the convolutions does)
    np.testing.assert_allclose(first, path_distances(G, f, 40, "w", "full", seed=7, batch_size=40),
                               rtol=1e-2, atol=1e-6 * first.max())
    assert not np.allclose(first, path_distances(G, f, 40, "w", "full", seed=8, batch_size=8))
    assert (first >= 0).all() and first.max() > 0


# --------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("G, options, message", [
    (LinearPlainG(), {"space": "w"}, "--ppl-space w needs a StyleGAN-style generator"),
    (LinearStyleG(), {"space": "x"}, "--ppl-space x: use one of auto, w, z"),
    (LinearStyleG(), {"sampling": "middle"}, "--ppl-sampling middle: use end"),
    (LinearStyleG(), {"epsilon": 0.0}, "epsilon=0: the step along the path must be a small positive"),
    (LinearStyleG(), {"epsilon": -1e-4}, "epsilon=-0.0001"),
    (LinearStyleG(), {"n": 1}, "n=1 pairs are too few for perceptual path length: use at least 2"),
    (LinearStyleG(), {"batch_size": 0}, "batch_size=0: use at least 1"),
])
def test_bad_options_are_one_line_errors(G, options, message):
    with pytest.raises(GankitError) as error:
        perceptual_path_length(G, LinearFeatures(), **options)
    assert message in str(error.value) and "\n" not in str(error.value)


# --------------------------------------------------------------------------------------------
# gankit eval


@pytest.fixture
def stylegan_run(tmp_path, monkeypatch, one_thread):
    from gankit import train

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "gankit-cache"))
    return train(tiny_options(tmp_path / "runs", "stylegan"), steps=1).run_dir


def test_eval_prints_ppl_without_loading_real_images(stylegan_run, capsys, monkeypatch):
    import gankit.data

    def no_reals(*args, **kwargs):
        raise AssertionError("ppl alone must not load the real images")

    monkeypatch.setattr(gankit.data, "load_dataset", no_reals)
    code, out, err = run_cli(["eval", stylegan_run, "--metrics", "ppl", "--features", "mnist",
                              "--n", "20", "--no-progress"], capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result[PPL_SPACE] == "w" and result[PPL_SAMPLING] == "end" and result[PPL_PAIRS] == 20
    assert math.isfinite(result[PPL]) and result[PPL] >= 0
    table = {line.split()[0]: line.split()[1:] for line in lines[1:-2]}
    assert float(table[PPL][0]) == pytest.approx(result[PPL], rel=1e-5)
    assert PPL_SPACE not in table and "kid_mean" not in table
    assert lines[-2].startswith("ppl: perceptual path length in w space, end sampling")
    assert "20 of 20 pairs" in lines[-2]


@pytest.mark.filterwarnings("ignore:KID subset size")  # n = 20: KID on subsets of 20, as asked
def test_eval_ppl_with_kid_and_options(stylegan_run, capsys):
    code, out, err = run_cli(["eval", stylegan_run, "--metrics", "kid,ppl", "--features", "mnist",
                              "--n", "20", "--ppl-space", "z", "--ppl-sampling", "full",
                              "--no-progress"], capsys)
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result[PPL_SPACE] == "z" and result[PPL_SAMPLING] == "full"
    assert "kid_mean" in result and math.isfinite(result[PPL])


def test_eval_rejects_bad_ppl_options_before_loading_the_run(tmp_path, capsys):
    code, _, err = run_cli(["eval", tmp_path / "no-such-run", "--metrics", "ppl",
                            "--ppl-sampling", "middle"], capsys)
    assert "--ppl-sampling middle" in one_line_error(code, err)
    code, _, err = run_cli(["eval", tmp_path / "no-such-run", "--metrics", "kid,pll"], capsys)
    assert "unknown metric pll: choose from kid, fid, pr, dc, ppl" in one_line_error(code, err)
