"""gankit.style_transfer: the losses' maths, VGG19 loading offline, and the optimisation itself on
scikit-image's photos with a randomly initialised VGG19 (no pretrained weights can be fetched
here; the random network runs every code path that the ImageNet one does).

The torch hub folder points into tmp_path, so nothing reads or writes the home cache, and the
network probe is patched wherever weights are looked for.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image
from skimage import data as photos

from gankit.cli import main
from gankit.errors import GankitError
from gankit.style_transfer import (CONTENT, CONTENT_LAYER, RANDOM, STYLE, STYLE_LAYERS, TOTAL, TV,
                                   VGG19_ENV, VGG19_FILE, VGG19_URL, StyleTransferConfig,
                                   VGG19Features, content_loss, find_vgg19_weights, gram_matrix,
                                   load_image, load_vgg19, prepare_image, style_loss, stylize,
                                   total_variation, vgg19_hub_path, vgg19_layer_names)

from helpers import run_cli as run

TINY = dict(size=64, steps=6, weights=RANDOM)  # ~1 s per run on 2 CPU cores


@pytest.fixture(autouse=True)
def private_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(VGG19_ENV, raising=False)
    assert torch.hub.get_dir().startswith(str(tmp_path)), "torch.hub.set_dir was called elsewhere"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # These tensors are tiny: a second thread only adds contention on a busy CI machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def random_vgg():
    return load_vgg19(RANDOM, seed=0)


# --------------------------------------------------------------------------------------------
# Losses


def test_gram_matrix_matches_a_direct_sum():
    f = torch.randn(2, 5, 4, 3, dtype=torch.float64)
    b, c, h, w = f.shape
    expected = torch.zeros(b, c, c, dtype=torch.float64)
    for n in range(b):
        for i in range(c):
            for j in range(c):
                expected[n, i, j] = sum(f[n, i, y, x] * f[n, j, y, x]
                                        for y in range(h) for x in range(w)) / (c * h * w)
    assert torch.allclose(gram_matrix(f), expected)


def test_gram_matrix_ignores_image_size_and_layout():
    f = torch.rand(1, 8, 5, 7)
    # every position repeated 2x2: the same statistics on 4x the pixels
    bigger = f.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    assert torch.allclose(gram_matrix(bigger), gram_matrix(f), atol=1e-6)
    shuffled = f.flatten(2)[..., torch.randperm(35)].view_as(f)  # where things are is not style
    assert torch.allclose(gram_matrix(shuffled), gram_matrix(f), atol=1e-6)


def test_total_variation():
    assert total_variation(torch.full((1, 3, 9, 7), 0.3)).item() == 0.0
    stripes = torch.tensor([[0.0, 1.0, 0.0]]).expand(4, 3).reshape(1, 1, 4, 3)
    # down: all 0; right: every difference is +-1
    assert total_variation(stripes).item() == pytest.approx(1.0)
    noise = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert total_variation(noise) > 3 * total_variation(prepare_image(photos.astronaut(), 32))


def test_content_and_style_loss_of_identical_features_are_zero():
    features = {name: torch.rand(1, 4, 6, 6) for name in STYLE_LAYERS + (CONTENT_LAYER,)}
    grams = {name: gram_matrix(features[name]) for name in STYLE_LAYERS}
    assert content_loss(features[CONTENT_LAYER], features[CONTENT_LAYER].clone()).item() == 0.0
    assert style_loss(features, grams).item() == 0.0
    other = {name: value + 0.1 for name, value in features.items()}
    assert content_loss(other[CONTENT_LAYER], features[CONTENT_LAYER]) > 0
    assert style_loss(other, grams) > 0
    # per-layer weights: weighting one layer alone gives that layer's loss
    only = {name: float(name == "relu3_1") for name in STYLE_LAYERS}
    single = nn.functional.mse_loss(gram_matrix(other["relu3_1"]), grams["relu3_1"])
    assert torch.allclose(style_loss(other, grams, only), single)


# --------------------------------------------------------------------------------------------
# VGG19


def test_layer_names_and_state_dict_match_torchvision_vgg19():
    from torchvision.models import vgg19

    names = vgg19_layer_names()
    assert len(names) == 37 and names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert names.index("conv4_2") == 21 and names.index("relu5_1") == 29
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        reference = vgg19().features
    ours = VGG19Features().body
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in reference.state_dict().items()}


def test_features_at_named_layers(random_vgg):
    images = torch.rand(2, 3, 48, 40)
    out = random_vgg(images)
    assert list(out) == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"]
    assert out["relu1_1"].shape == (2, 64, 48, 40) and out["relu5_1"].shape == (2, 512, 3, 2)
    assert len(random_vgg.body) == 30  # nothing after relu5_1 is run
    assert not any(p.requires_grad for p in random_vgg.parameters())
    pair = VGG19Features(layers=("conv1_1", "relu1_1"))(images)
    assert torch.equal(pair["relu1_1"], pair["conv1_1"].clamp(min=0))  # "relu" = after the ReLU
    assert (pair["conv1_1"] < 0).any()  # ... and "conv" before it


def test_average_pooling_and_seeded_initialisation():
    avg = VGG19Features(pooling="avg", seed=3)
    assert not any(isinstance(m, nn.MaxPool2d) for m in avg.body)
    assert sum(isinstance(m, nn.AvgPool2d) for m in avg.body) == 5
    same, other = VGG19Features(seed=3), VGG19Features(seed=4)
    assert torch.equal(avg.body[0].weight, same.body[0].weight)
    assert not torch.equal(same.body[0].weight, other.body[0].weight)
    with pytest.raises(GankitError, match="max or avg"):
        VGG19Features(pooling="median")
    with pytest.raises(GankitError, match="no layer 'conv6_1'"):
        VGG19Features(layers=("conv6_1",))


def test_without_weights_or_network_fails_at_once_naming_the_path(tmp_path, offline):
    expected = tmp_path / "torch" / "hub" / "checkpoints" / VGG19_FILE
    assert vgg19_hub_path() == expected
    started = time.perf_counter()
    with pytest.raises(GankitError) as err:
        load_vgg19()
    assert time.perf_counter() - started < 2
    message = str(err.value)
    assert str(expected) in message and VGG19_URL in message and "\n" not in message


def test_weights_from_a_local_file_the_hub_cache_or_the_environment(tmp_path, offline,
                                                                    monkeypatch):
    trained = VGG19Features(seed=7).body.state_dict()  # stands in for the ImageNet weights
    path = tmp_path / "features.pth"
    torch.save(trained, path)
    model = load_vgg19(path)
    assert model.pretrained and str(path) in model.description
    assert torch.equal(model.body[28].weight, trained["28.weight"])  # conv5_1

    cached = vgg19_hub_path()
    cached.parent.mkdir(parents=True)
    path.rename(cached)
    assert find_vgg19_weights() == cached
    monkeypatch.setenv(VGG19_ENV, str(cached))
    assert load_vgg19().pretrained
    monkeypatch.setenv(VGG19_ENV, str(tmp_path / "nowhere.pth"))
    with pytest.raises(GankitError, match=VGG19_ENV):
        load_vgg19()
    with pytest.raises(GankitError, match="does not exist"):
        load_vgg19(tmp_path / "missing.pth")


def test_whole_vgg19_state_dicts_load_and_others_are_refused(tmp_path):
    # torchvision's vgg19-dcbb9e9d.pth is the whole model's state dict: features.* and classifier.*
    trained = VGG19Features(seed=5).body.state_dict()
    whole = {f"features.{k}": v for k, v in trained.items()}
    whole["classifier.0.weight"] = torch.zeros(2, 2)  # the classifier is not needed
    model = VGG19Features()
    model.load_vgg19_state(whole, "vgg19.pth")
    assert model.pretrained and torch.equal(model.body[0].weight, trained["0.weight"])
    with pytest.raises(GankitError, match="not a VGG19 state dict"):
        VGG19Features().load_vgg19_state({"0.weight": torch.zeros(3)}, "bad.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(GankitError, match="cannot read"):
        load_vgg19(junk)


# --------------------------------------------------------------------------------------------
# Images


def test_images_of_any_mode_become_rgb_with_the_shorter_side_resized(tmp_path):
    assert prepare_image(photos.camera(), 32).shape == (1, 3, 32, 32)  # grey (H, W) array
    chelsea = prepare_image(photos.chelsea(), 40)  # 300 x 451 RGB
    assert chelsea.shape == (1, 3, 40, 60) and 0 <= chelsea.min() and chelsea.max() <= 1
    rgba = Image.new("RGBA", (20, 10), (255, 0, 0, 0))  # fully transparent: white
    assert torch.allclose(prepare_image(rgba, 10), torch.ones(1, 3, 10, 20))
    path = tmp_path / "palette.png"
    Image.fromarray(photos.coffee()).convert("P").save(path)
    assert load_image(path).mode == "RGB"
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(GankitError, match="cannot read"):
        load_image(tmp_path / "broken.png")
    with pytest.raises(GankitError, match="does not exist"):
        load_image(tmp_path / "missing.png")


# --------------------------------------------------------------------------------------------
# The optimisation


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_every_loss_term_falls_from_noise(optimizer, random_vgg):
    config = StyleTransferConfig(**TINY, optimizer=optimizer, init="noise", lr=0.05)
    result = stylize(photos.astronaut(), photos.chelsea(), config, extractor=random_vgg)
    first, last = result.history[0], result.history[-1]
    assert len(result.history) == config.steps
    for term in (CONTENT, STYLE, TV, TOTAL):
        assert last[term] < 0.8 * first[term], (term, first[term], last[term])
    assert result.image.shape == (1, 3, 64, 64)
    assert 0 <= result.image.min() and result.image.max() <= 1
    assert "random" in result.extractor and set(result.final) == {CONTENT, STYLE, TV, TOTAL}


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_from_the_content_image_the_style_loss_falls(optimizer, random_vgg):
    config = StyleTransferConfig(**TINY, optimizer=optimizer, init="content", lr=0.05)
    seen = []
    result = stylize(photos.rocket(), photos.coffee(), config, extractor=random_vgg,
                     callback=lambda step, terms: seen.append((step, terms)))
    assert result.history[0][CONTENT] == 0.0  # it starts as the content image
    assert result.history[-1][STYLE] < 0.5 * result.history[0][STYLE]
    assert result.image.shape == (1, 3, 64, 96)  # rocket is 427 x 640: the short side is 64
    assert [step for step, _ in seen] == list(range(config.steps))
    assert [terms for _, terms in seen] == result.history


def test_the_seed_makes_runs_repeat(random_vgg):
    config = StyleTransferConfig(**{**TINY, "steps": 3}, init="noise", seed=11)
    first = stylize(photos.astronaut(), photos.coffee(), config, extractor=random_vgg)
    again = stylize(photos.astronaut(), photos.coffee(), config, extractor=random_vgg)
    assert torch.equal(first.image, again.image) and first.history == again.history
    config.seed = 12
    other = stylize(photos.astronaut(), photos.coffee(), config, extractor=random_vgg)
    assert not torch.equal(first.image, other.image)


def test_bad_settings_are_user_errors():
    for bad, match in (({"optimizer": "sgd"}, "lbfgs, adam"), ({"init": "zeros"}, "content"),
                       ({"size": 8}, "at least 16"), ({"steps": 0}, "at least 1"),
                       ({"style_weight": -1.0}, "style-weight")):
        with pytest.raises(GankitError, match=match):
            StyleTransferConfig(**bad).validate()


# --------------------------------------------------------------------------------------------
# Command line


@pytest.fixture
def pictures(tmp_path):
    content, style = tmp_path / "astronaut.png", tmp_path / "brick.jpg"
    Image.fromarray(photos.astronaut()).resize((96, 96)).save(content)
    Image.fromarray(photos.brick()).resize((80, 80)).save(style)  # greyscale
    return content, style


def test_cli_stylize_end_to_end(tmp_path, pictures, capsys):
    content, style = pictures
    out = tmp_path / "out" / "result.png"
    code, stdout, err = run(["stylize", str(content), str(style), "--out", str(out), "--size", "32",
                             "--steps", "3", "--random-weights", "--optimizer", "adam",
                             "--no-progress"], capsys)
    assert code == 0, err
    assert Image.open(out).size == (32, 32) and Image.open(out).mode == "RGB"
    assert "randomly initialised VGG19" in stdout and "final losses: content" in stdout


def test_cli_stylize_errors_are_one_line(tmp_path, pictures, capsys, offline):
    content, style = pictures
    out = str(tmp_path / "out.png")
    code, _, err = run(["stylize", str(tmp_path / "missing.jpg"), str(style), "--out", out], capsys)
    assert code == 2 and "missing.jpg does not exist" in err and err.count("\n") == 1
    (tmp_path / "text.png").write_text("hello")
    code, _, err = run(["stylize", str(content), str(tmp_path / "text.png"), "--out", out], capsys)
    assert code == 2 and "cannot read" in err and err.count("\n") == 1
    code, _, err = run(["stylize", str(content), str(style), "--out", out, "--steps", "1"], capsys)
    assert code == 2 and str(vgg19_hub_path()) in err and err.count("\n") == 1
    code, _, err = run(["stylize", str(content), str(style), "--out", out, "--optimizer", "sgd"],
                       capsys)
    assert code == 2 and "--optimizer sgd" in err
    assert not (tmp_path / "out.png").exists()


def test_cli_stylize_dry_run_checks_everything_and_writes_nothing(tmp_path, pictures, capsys, offline,
                                                                  monkeypatch):
    """--dry-run reads both pictures, resolves the options and says where the weights would come
    from (without them: that a real run downloads them, or offline the real run's one-line error),
    optimising, downloading and writing nothing."""
    from gankit import weights

    content, style = pictures
    out = tmp_path / "out.png"
    code, _, err = run(["stylize", str(content), str(style), "--out", str(out), "--dry-run"], capsys)
    assert code == 2 and str(vgg19_hub_path()) in err and err.count("\n") == 1  # offline, no weights
    monkeypatch.setattr(weights, "network_reachable", lambda *args, **kwargs: True)
    monkeypatch.setattr(weights, "download", lambda *args, **kwargs: pytest.fail("a dry run downloaded"))
    code, stdout, err = run(["stylize", str(content), str(style), "--out", str(out), "--size", "24",
                             "--dry-run"], capsys)
    assert code == 0, err
    width, height = Image.open(content).size
    scale = 24 / min(width, height)
    assert f"content: {width}x{height} -> {round(width * scale)}x{round(height * scale)}" in stdout
    assert "size: 24" in stdout and "not on this machine; a real run downloads them from " + VGG19_URL in stdout
    cached = vgg19_hub_path()
    cached.parent.mkdir(parents=True)
    torch.save(VGG19Features(seed=1).body.state_dict(), cached)
    code, stdout, _ = run(["stylize", str(content), str(style), "--out", str(out), "--dry-run"], capsys)
    assert code == 0 and f"VGG19 ImageNet weights from {cached}" in stdout
    code, stdout, _ = run(["stylize", str(content), str(style), "--out", str(out), "--dry-run", "--random-weights"], capsys)
    assert code == 0 and "seeded random VGG19" in stdout
    (tmp_path / "text.png").write_text("hello")
    code, _, err = run(["stylize", str(content), str(tmp_path / "text.png"), "--out", str(out), "--dry-run"], capsys)
    assert code == 2 and "cannot read" in err and err.count("\n") == 1
    before = sorted(tmp_path.rglob("*"))
    run(["stylize", str(content), str(style), "--out", str(out), "--dry-run"], capsys)
    assert not out.exists() and sorted(tmp_path.rglob("*")) == before  # nothing written


def test_cli_help_quotes_the_config_defaults():
    import re

    import typer

    from gankit.cli import app

    command = typer.main.get_command(app).commands["stylize"]
    defaults = StyleTransferConfig()
    quoted = {param.name: re.search(r"\(default: ([^)]*)\)", param.help or "")
              for param in command.params}
    checked = 0
    for name, match in quoted.items():
        if match and hasattr(defaults, name) and name != "weights":
            value = getattr(defaults, name)
            said = match.group(1)
            assert (float(said) == value) if isinstance(value, float) else said == str(value), name
            checked += 1
    assert checked == 11
