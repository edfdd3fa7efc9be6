"""Projection of real images into a generator's latent space (StyleGAN2-ADA's projector)."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from gankit import load_generator, train
from gankit.errors import GankitError
from gankit.latent import load_ws
from gankit.projection import learning_rate, noise_regularisation, project

from helpers import one_line_error, run_cli, tiny_options


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {recipe: train(tiny_options(root, recipe), steps=2, name=recipe).run_dir for recipe in ("stylegan", "dcgan")}


def test_the_learning_rate_schedule_is_the_references():
    steps = 1000
    rates = [learning_rate(s, steps, 0.1) for s in range(steps)]
    assert rates[0] == 0.0 and rates[25] == pytest.approx(0.05)  # linear warm-up over 5%
    assert rates[300] == pytest.approx(0.1)  # flat in the middle
    assert rates[875] == pytest.approx(0.1 * (0.5 - 0.5 * math.cos(0.5 * math.pi)))  # cosine over the last 25%
    assert max(rates) == pytest.approx(0.1)


def test_noise_regularisation_is_zero_for_white_noise_and_large_for_a_drawing():
    torch.manual_seed(0)
    white = torch.randn(1, 1, 32, 32)
    smooth = torch.nn.functional.interpolate(torch.randn(1, 1, 4, 4), size=32, mode="bilinear")
    smooth = (smooth - smooth.mean()) / smooth.std()
    assert noise_regularisation([white]) < 0.01 < noise_regularisation([smooth])


def test_a_generated_image_is_found_again_in_z(runs):
    """The target is G's own image of a known z: the search (from z = 0) brings the pixel
    distance down by far, and the reconstruction is close to the target."""
    G = load_generator(runs["dcgan"])
    target = G.sample(1, seed=3)
    result = project(G.module, target, steps=150, distance="features", seed=0)
    assert result.space == "z" and result.latents.shape == (1, G.latent_dim)
    losses = result.losses[0]
    assert losses[-1] < 0.2 * losses[0]
    assert (result.images - target).abs().mean() < 0.6 * (G.sample(1, seed=4) - target).abs().mean()
    assert result.trajectory.shape[1:] == (1, 1, 16, 16) and len(result.trajectory) >= 2


def test_projection_in_w_keeps_the_noise_white_and_the_callers_generator_untouched(runs):
    G = load_generator(runs["stylegan"])
    before = {k: v.clone() for k, v in G.module.state_dict().items()}
    targets = G.sample(2, seed=5)
    result = project(G.module, targets, steps=30, distance="features", seed=0, w_avg_samples=500)
    assert result.space == "w" and result.latents.shape == (2, G.module.num_ws, G.module.w_dim)
    assert len(result.noise) == 2 and result.noise[0]
    for maps in result.noise:
        for m in maps.values():
            assert abs(float(m.mean())) < 1e-4 and abs(float(m.square().mean()) - 1) < 1e-3
    for key, value in G.module.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(len(losses) == 30 for losses in result.losses)
    assert torch.equal(load_ws(G.module, {"ws": result.latents.numpy()}), result.latents)


def test_cli_project_writes_latents_reconstructions_and_the_search(runs, tmp_path, capsys):
    G = load_generator(runs["stylegan"])
    picture = tmp_path / "digit.png"
    Image.fromarray((G.sample(1, seed=7)[0, 0].numpy() * 255).astype(np.uint8)).resize((40, 40)).save(picture)
    code, out, err = run_cli(["project", runs["stylegan"], picture, "--out", tmp_path / "proj", "--steps", "8",
                              "--no-progress", "--distance", "features"], capsys)
    assert code == 0, err
    with np.load(tmp_path / "proj" / "digit.npz") as f:
        assert f["ws"].shape == (1, G.module.num_ws, G.module.w_dim)
    assert (tmp_path / "proj" / "digit-compare.png").is_file() and (tmp_path / "proj" / "digit-projection.gif").is_file()
    # the latent file works where latents are taken: gankit edit
    code, _, err = run_cli(["directions", runs["stylegan"], "--k", "2", "--n", "100", "--out", tmp_path / "d.png",
                            "--save", tmp_path / "d.npz"], capsys)
    assert code == 0, err
    code, _, err = run_cli(["edit", runs["stylegan"], "--directions", tmp_path / "d.npz", "--latent",
                            tmp_path / "proj" / "digit.npz", "--out", tmp_path / "e.png"], capsys)
    assert code == 0, err


@pytest.mark.parametrize("recipe", ["stylegan", "dcgan"])
def test_projected_latents_are_drawn_again_and_walked_between(runs, tmp_path, capsys, recipe):
    """`sample --latents` draws a projected photo as `project` reconstructed it (a style G with
    the photo's own noise maps, bit for bit); `interpolate --through` walks from one projected
    photo to the other and back, its keyframes being their latents."""
    from gankit.latent import render_files, walk_through_files
    from gankit.visualize import to_unit_range

    G = load_generator(runs[recipe])
    files = []
    for seed in (7, 8):
        picture = tmp_path / f"digit{seed}.png"
        Image.fromarray((G.sample(1, seed=seed)[0, 0].numpy() * 255).astype(np.uint8)).save(picture)
        files.append(picture)
    code, _, err = run_cli(["project", runs[recipe], *files, "--out", tmp_path / "proj", "--steps", "20",
                            "--no-progress", "--distance", "features", "--video", "none"], capsys)
    assert code == 0, err
    latents = [tmp_path / "proj" / f"digit{seed}.npz" for seed in (7, 8)]
    drawn = render_files(G.module, latents)
    assert drawn.shape == (2, 1, 16, 16)
    with np.load(latents[0]) as f, torch.no_grad():
        if recipe == "stylegan":  # drawn with the photo's noise maps, not G's fixed ones
            assert any(k.startswith("noise") for k in f.files)
            first = to_unit_range(G.module.synthesis(torch.from_numpy(f["ws"])), G.module.output_range)
            assert not torch.allclose(first, drawn[:1], atol=1e-4)
        else:
            first = G.generate(torch.from_numpy(f["z"]))
            assert torch.allclose(first, drawn[:1], atol=1e-6)
    walk = walk_through_files(G.module, latents, frames_per_segment=4)
    assert walk.shape == (8, 1, 16, 16)
    assert torch.allclose(walk[0], first[0], atol=1e-5)  # the walk starts at the first latent (G's noise)
    assert not torch.allclose(walk[4], walk[0], atol=1e-4)  # and passes through the second
    code, out, err = run_cli(["sample", runs[recipe], "--latents", latents[0], "--latents", latents[1],
                              "--out", tmp_path / "again.npz"], capsys)
    assert code == 0 and "wrote 2 samples" in out, err
    with np.load(tmp_path / "again.npz") as f:
        assert np.abs(f["images"][..., 0] / 255.0 - drawn[:, 0].numpy()).max() <= 1 / 255 + 1e-6
    code, out, err = run_cli(["interpolate", runs[recipe], "--through", latents[0], "--through", latents[1],
                              "--frames", "4", "--out", tmp_path / "walk.gif"], capsys)
    assert code == 0 and "wrote 8 frames (2 keyframes)" in out, err
    if recipe == "stylegan":  # one photo's coarse styles with the other's fine ones
        code, out, err = run_cli(["mix", runs[recipe], "--row-latents", latents[0], "--col-latents", latents[1],
                                  "--crossover", "1", "--out", tmp_path / "mix.png"], capsys)
        assert code == 0 and "1 x 1 style-mixing grid" in out, err
        ws = [G.style_ws([path]) for path in latents]
        cell = G.module.synthesis(torch.cat([ws[0][:, :1], ws[1][:, 1:]], 1))
        picture = np.asarray(Image.open(tmp_path / "mix.png").convert("L"), dtype=np.float32) / 255
        expected = to_unit_range(cell, G.module.output_range)[0, 0].detach().numpy()
        size, pad = expected.shape[-1], 2  # 2 x 2 pictures (blank, column; row, cell), 2 px apart
        found = picture[size + 2 * pad:2 * size + 2 * pad, size + 2 * pad:2 * size + 2 * pad]
        assert picture.shape == (2 * size + 3 * pad,) * 2 and np.abs(found - expected).max() <= 1 / 255 + 1e-4
    code, _, err = run_cli(["interpolate", runs[recipe], "--through", latents[0], "--out", tmp_path / "w.gif"], capsys)
    assert "at least two latents" in one_line_error(code, err)
    code, _, err = run_cli(["sample", runs[recipe], "--latents", tmp_path / "digit7.png", "--out", tmp_path / "x.png"], capsys)
    assert "cannot read latents" in one_line_error(code, err)


def test_bad_input_is_one_line_and_writes_nothing(runs, tmp_path, capsys):
    (tmp_path / "text.png").write_text("not an image")
    cases = [
        (["project", runs["dcgan"], tmp_path / "missing.png", "--out", tmp_path / "o"], "does not exist"),
        (["project", runs["dcgan"], tmp_path / "text.png", "--out", tmp_path / "o"], "cannot read"),
        (["project", runs["dcgan"], tmp_path / "text.png", "--out", tmp_path / "no" / "o"], "does not exist; create it"),
        (["project", runs["dcgan"], tmp_path / "text.png", "--out", tmp_path / "o", "--video", ".avi"], "--video .avi"),
    ]
    for argv, message in cases:
        code, _, err = run_cli(argv + ["--no-progress"], capsys)
        assert message in one_line_error(code, err), argv
    assert not (tmp_path / "o").exists()
    G = load_generator(runs["dcgan"])
    with pytest.raises(GankitError, match=r"the images are \(3, 16, 16\) but the model draws \(1, 16, 16\)"):
        project(G.module, torch.rand(1, 3, 16, 16), steps=1)
    with pytest.raises(GankitError, match="--steps 0"):
        project(G.module, torch.rand(1, 1, 16, 16), steps=0)
