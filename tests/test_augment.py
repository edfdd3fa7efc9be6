"""Augmentations and the ADA controller."""

import pytest
import torch

from gankit import train
from gankit.augment import COLOUR, GEOMETRIC, MASK, MODE_OPS, AdaController, AugmentPipe, build_augmentation
from gankit.config import AugmentConfig
from gankit.training import checkpoint as ckpt

ALL_OPS = list(GEOMETRIC) + list(COLOUR) + list(MASK)


def images(n=8, channels=3, size=16, value_range=(0.0, 1.0)):
    g = torch.Generator().manual_seed(0)
    low, high = value_range
    return torch.rand(n, channels, size, size, generator=g) * (high - low) + low


@pytest.mark.parametrize("mode", ["ada", "fixed", "none"])
def test_p_zero_is_the_identity_and_draws_no_randomness(mode):
    pipe, _ = build_augmentation(AugmentConfig(mode=mode, p=0.0), (0.0, 1.0))
    x = images()
    state = torch.get_rng_state()
    assert pipe(x) is x
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("value_range", [(0.0, 1.0), (-1.0, 1.0)])
@pytest.mark.parametrize("op", ALL_OPS)
def test_every_op_keeps_shape_and_range_and_is_differentiable(op, value_range):
    torch.manual_seed(0)
    pipe = AugmentPipe({op: 1.0}, value_range, p=1.0)
    x = images(value_range=value_range).requires_grad_()
    y = pipe(x)
    assert y.shape == x.shape
    assert y.min() >= value_range[0] - 1e-6 and y.max() <= value_range[1] + 1e-6
    if op != "saturation" or x.shape[1] == 3:
        assert not torch.equal(y, x), f"{op} at p=1 changed nothing"
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_geometric_ops_compose_into_one_resampling_of_the_right_kind():
    x = images(n=64, channels=1, size=8)
    torch.manual_seed(0)
    out = AugmentPipe({"xflip": 1.0}, (0.0, 1.0), p=1.0)(x)
    flipped = torch.isclose(out, x.flip(-1), atol=1e-5).flatten(1).all(1)
    kept = torch.equal(out[~flipped], x[~flipped])
    # once selected, a sample is mirrored with probability 1/2: otherwise flips would leak at p >= 0.5
    assert kept and 0.3 < flipped.float().mean() < 0.7
    torch.manual_seed(3)
    shifted = AugmentPipe({"translate": 1.0}, (0.0, 1.0), p=1.0)(x)
    # an integer translation only moves pixels (reflection at the border): values stay values
    assert all(torch.isclose(v, x).any() for v in shifted.flatten()[:20])


def test_only_the_selected_samples_change():
    torch.manual_seed(0)
    pipe = AugmentPipe({"brightness": 1.0}, (0.0, 1.0), p=0.5)
    x = images(n=400, channels=1, size=8)
    y = pipe(x)
    changed = (y != x).flatten(1).any(1)
    assert 0.4 < changed.float().mean() < 0.6
    assert torch.equal(y[~changed], x[~changed])


def test_channels_last_layout_is_kept():
    pipe, _ = build_augmentation(AugmentConfig(mode="fixed", p=0.8), (0.0, 1.0))
    x = images().contiguous(memory_format=torch.channels_last)
    assert pipe(x).is_contiguous(memory_format=torch.channels_last)


def test_diffaug_transforms_every_image():
    torch.manual_seed(0)
    pipe, controller = build_augmentation(AugmentConfig(mode="diffaug"), (0.0, 1.0))
    assert controller is None and float(pipe.p) == 1.0
    assert set(pipe.ops["colour"]) | set(pipe.ops["mask"]) == {"brightness", "saturation", "contrast", "cutout"}
    x = images(n=32)
    assert (pipe(x) != x).flatten(1).any(1).all()


def test_unknown_op_is_a_user_error():
    from gankit.errors import GankitError

    with pytest.raises(GankitError, match="unknown augmentation 'spin'"):
        build_augmentation(AugmentConfig(mode="ada", ops={"spin": 1}), (0.0, 1.0))


def test_controller_raises_p_when_d_is_overconfident_and_lowers_it_otherwise():
    pipe = AugmentPipe(MODE_OPS["ada"], (0.0, 1.0), p=0.3)
    ada = AdaController(pipe, target=0.6, speed_images=1000, interval=2, p_max=0.7)
    ada.observe(torch.tensor(0.9), batch=50)
    ada.maybe_update(step=1)  # not an update step: nothing moves
    assert float(pipe.p) == pytest.approx(0.3)
    ada.observe(torch.tensor(0.9), batch=50)
    ada.maybe_update(step=2)  # r_t = 0.9 > 0.6: p += 100 / 1000
    assert float(pipe.p) == pytest.approx(0.4) and ada.last_r_t == pytest.approx(0.9)
    for step in (4, 6):
        ada.observe(torch.tensor(0.1), batch=100)
        ada.maybe_update(step)
    assert float(pipe.p) == pytest.approx(0.2)  # r_t = 0.1 < 0.6: down by 0.1 twice


def test_controller_respects_the_clamp():
    pipe = AugmentPipe(MODE_OPS["ada"], (0.0, 1.0), p=0.65)
    ada = AdaController(pipe, target=0.6, speed_images=100, interval=1, p_max=0.7)
    for step in range(1, 5):
        ada.observe(1.0, batch=100)
        ada.maybe_update(step)
    assert float(pipe.p) == pytest.approx(0.7)
    for step in range(5, 15):
        ada.observe(-1.0, batch=100)
        ada.maybe_update(step)
    assert float(pipe.p) == 0.0


def test_resume_restores_p_and_the_controller_exactly(tmp_path):
    options = {"data": {"source": "digits", "size": 16}, "model": {"latent_dim": 8, "width": 8},
               "batch": 8, "progress": False, "grid_size": 4, "checkpoint_every": 5,
               "runs_dir": str(tmp_path / "runs"),
               # a fast controller, updated every 2 steps, with a target that makes p rise at once
               "augment": {"mode": "ada", "speed_kimg": 0.1, "interval": 2, "target": -0.99}}
    straight = ckpt.load_checkpoint(train(options, steps=10, name="straight").run_dir)
    first = train(options, steps=5, name="split")  # stops between two controller updates
    mid = ckpt.load_checkpoint(first.run_dir)
    assert float(mid["augment"]["p"]) > 0 and mid["augment"]["controller"]["count"] == 8
    split = ckpt.load_checkpoint(train(resume=first.run_dir, steps=10).run_dir)
    assert torch.equal(straight["augment"]["p"], split["augment"]["p"])
    assert straight["augment"]["controller"] == split["augment"]["controller"]
    for key in straight["G_ema"]:
        assert torch.equal(straight["G_ema"][key], split["G_ema"][key]), key


def test_augmentation_runs_in_fp32_under_bf16_autocast_and_keeps_the_dtype():
    pipe, _ = build_augmentation(AugmentConfig(mode="fixed", p=0.9), (0.0, 1.0))
    x = images().to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = pipe(x)
    assert y.dtype == torch.bfloat16 and y.shape == x.shape


def test_bad_augmentation_options_fail_before_anything_is_written(tmp_path):
    from gankit.errors import GankitError

    base = {"data": {"source": "digits", "size": 16}, "steps": 1, "runs_dir": str(tmp_path / "runs")}
    with pytest.raises(GankitError, match="unknown augmentation 'spin'"):
        train(base, augment={"ops": {"spin": 1}})
    with pytest.raises(GankitError, match="must be a number >= 0"):
        train(base, augment={"ops": {"cutout": "abc"}})
    assert not (tmp_path / "runs").exists()
