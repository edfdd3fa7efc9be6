"""CycleGAN through the one training loop: the ResNet and PatchGAN nets, the cycle update with
its pools, the learning-rate schedule, exact resume, `gankit translate`, and a tiny unpaired
pair of domains made from shipped digits (B = the other half, inverted) on which it learns."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from gankit import load_generator, load_translator, train
from gankit.config import DataConfig
from gankit.resolve import complete_bounds, resolve_config
from gankit.data import DATASETS, load_unpaired
from gankit.errors import GankitError
from gankit.losses.cycle import cycle_loss, identity_loss
from gankit.models.cyclegan import CycleGANOptions, PatchDiscriminator, ResidualBlock, ResnetGenerator
from gankit.training import checkpoint as ckpt
from gankit.training.replay import ReplayBuffer
from gankit.training.schedule import linear_decay
from gankit.variants import DataSpec, get_recipe

from helpers import one_line_error, run_cli as run
from helpers import assert_same_tensors, metrics_rows, tiny_options, with_overrides

PAIR = {"source": "digits-a", "source_b": "digits-b", "size": 16}


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    pass


def tiny(tmp_path, **overrides):
    options = tiny_options(tmp_path / "runs", "cyclegan", data=dict(PAIR), batch=2)
    del options["grid_size"]  # the recipe's own: sheets of 8
    return with_overrides(options, **overrides)


# ---------------------------------------------------------------- the networks

@pytest.mark.parametrize("size, blocks", [(128, 6), (256, 9)])
def test_resnet_generator_follows_the_paper(size, blocks):
    with torch.device("meta"):  # structure only
        G = ResnetGenerator(size, 3, CycleGANOptions())
    layers = list(G.net)
    assert G.blocks == blocks and sum(isinstance(m, ResidualBlock) for m in layers) == blocks
    convs = [m for m in layers if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    # c7s1-64, d128, d256, (residual blocks), u128, u64, c7s1-3
    shapes = [(type(c).__name__, c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs]
    assert shapes == [("Conv2d", 3, 64, 7, 1), ("Conv2d", 64, 128, 3, 2), ("Conv2d", 128, 256, 3, 2),
                      ("ConvTranspose2d", 256, 128, 3, 2), ("ConvTranspose2d", 128, 64, 3, 2),
                      ("Conv2d", 64, 3, 7, 1)]
    # the 7x7 convs pad by reflection, not zeros; so do the residual blocks' 3x3 convs
    assert isinstance(layers[0], nn.ReflectionPad2d) and layers[0].padding == (3, 3, 3, 3)
    assert isinstance(layers[-3], nn.ReflectionPad2d) and convs[0].padding == convs[-1].padding == (0, 0)
    block = next(m for m in layers if isinstance(m, ResidualBlock))
    assert [type(m).__name__ for m in block.body] == ["ReflectionPad2d", "Conv2d", "InstanceNorm2d", "ReLU",
                                                      "ReflectionPad2d", "Conv2d", "InstanceNorm2d"]
    norms = [m for m in G.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 5 + 2 * blocks and isinstance(layers[-1], nn.Tanh)


def test_patchgan_sees_70x70_patches():
    D = PatchDiscriminator(256, 3)
    convs = D.convs()
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == \
        [(64, 4, 2), (128, 4, 2), (256, 4, 2), (512, 4, 1), (1, 4, 1)]
    layers = list(D.net)
    assert isinstance(layers[1], nn.LeakyReLU)  # C64 has no norm
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in layers) == 3
    assert all(m.negative_slope == 0.2 for m in layers if isinstance(m, nn.LeakyReLU))
    assert D.receptive_field == 70
    assert D(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)  # the paper's 30x30 patch grid

    # measured: the inputs one central logit depends on (without instance norm, which couples
    # every pixel of an image through its mean)
    torch.manual_seed(0)
    D = PatchDiscriminator(128, 1, width=4, norm="none")
    image = torch.randn(1, 1, 128, 128, requires_grad=True)
    logits = D(image)  # (1, 1, 14, 14)
    logits[0, 0, 7, 7].backward()
    rows, cols = torch.nonzero(image.grad[0, 0], as_tuple=True)
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


def test_sizes_and_options_the_nets_cannot_use_are_user_errors(tmp_path):
    with pytest.raises(GankitError, match="multiple of 4"):
        train(tiny(tmp_path, data={"size": 18}), steps=1)
    with pytest.raises(GankitError, match="too small for D's 3 stride-2 layers"):
        train(tiny(tmp_path, model={"d_layers": 3}), steps=1)
    with pytest.raises(GankitError, match="model.norm='batch'"):
        resolve_config(tiny(tmp_path, model={"norm": "batch"}))
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- losses, pools, schedule

def test_cycle_and_identity_losses_are_mean_l1():
    x, y = torch.zeros(2, 1, 2, 2), torch.full((2, 1, 2, 2), 0.5)
    y[0, 0, 0, 0] = -1.5
    assert float(cycle_loss(y, x)) == pytest.approx((7 * 0.5 + 1.5) / 8)
    assert float(identity_loss(x, x)) == 0.0


def test_pool_passes_fakes_while_filling_then_swaps_them():
    torch.manual_seed(0)
    pool = ReplayBuffer(size=4, fraction=1.0)
    first = torch.arange(3.0).view(3, 1, 1, 1)
    assert torch.equal(pool.exchange(first), first) and pool.count == 3  # filling: passed and kept
    out = pool.exchange(torch.tensor([3.0, 10.0, 11.0, 12.0]).view(4, 1, 1, 1))
    assert out[0].item() == 3.0 and pool.count == 4  # the last free slot took it
    assert all(o != n for o, n in zip(out[1:].flatten().tolist(), (10, 11, 12)))  # each one swapped
    # nothing lost or made up: each swapped-out fake went into the pool, each kept one came out
    assert sorted(out.flatten().tolist() + pool.images.flatten().tolist()) == [0, 1, 2, 3, 3, 10, 11, 12]
    # the share swapped follows `fraction`, one image at a time
    many = ReplayBuffer(size=50, fraction=0.5)
    many.exchange(torch.zeros(50, 1, 1, 1))
    swapped = sum(float(many.exchange(torch.full((1, 1, 1, 1), i + 1.0))) != i + 1 for i in range(2000))
    assert 0.4 < swapped / 2000 < 0.6


def test_linear_decay_values():
    assert [linear_decay(s, 100, 100) for s in (0, 99, 100, 150, 199, 200, 250)] == \
        pytest.approx([1.0, 1.0, 1.0, 0.5, 0.01, 0.0, 0.0])


@pytest.mark.parametrize("optim, data", [
    ({"decay_start": 4, "decay_length": 4}, {}),
    # 16 images a domain at batch 4: 4 steps an epoch, so epoch 1 is step 4
    ({"decay_start": 1, "decay_length": 1, "decay_unit": "epochs"}, {"limit": 16}),
])
def test_learning_rates_follow_the_schedule_in_the_loop(tmp_path, optim, data):
    result = train(tiny(tmp_path, optim=optim, data=data, batch=4), steps=8, name="lr")
    rows = metrics_rows(result.run_dir)
    expected = [2e-4 * f for f in (1, 1, 1, 1, 1, 0.75, 0.5, 0.25)]  # the rate of step k, logged after it
    assert [r["optim/lr_g"] for r in rows] == pytest.approx(expected)
    assert [r["optim/lr_d"] for r in rows] == pytest.approx(expected)
    state = ckpt.load_checkpoint(result.run_dir)
    assert state["opt_g"]["param_groups"][0]["initial_lr"] == 2e-4
    if optim.get("decay_unit") == "epochs":
        assert rows[-1]["progress/epoch"] == 2.0


def test_cyclegan_from_python_decays_over_the_second_half_as_the_command_line_does(tmp_path):
    """The recipe's schedule (lr_decay 0.5) is resolved where runs are built, not in the CLI."""
    state = ckpt.load_checkpoint(train(tiny(tmp_path), steps=6, name="py").run_dir)
    optim = state["config"]["optim"]
    assert (optim["decay_start"], optim["decay_length"], optim["decay_unit"]) == (3, 3, "steps")
    rows = metrics_rows(tmp_path / "runs" / "py")
    assert [r["optim/lr_g"] for r in rows] == pytest.approx([2e-4 * f for f in (1, 1, 1, 1, 2 / 3, 1 / 3)])
    epochs = ckpt.load_checkpoint(train(tiny(tmp_path, data={"limit": 8}), epochs=2, name="ep").run_dir)
    assert (epochs["config"]["optim"]["decay_start"], epochs["config"]["optim"]["decay_unit"]) == (1, "epochs")
    constant = ckpt.load_checkpoint(train(tiny(tmp_path, optim={"decay": 0}), steps=2, name="c").run_dir)
    assert constant["config"]["optim"]["decay_start"] is None


def test_a_time_budget_alone_says_the_recipes_decay_is_off(tmp_path):
    """CycleGAN's decay over the last half needs a run length; a budget alone keeps the rates
    constant, and says so instead of silently dropping the schedule."""
    with pytest.warns(UserWarning, match="--time-budget alone gives no run length"):
        config = complete_bounds(resolve_config(tiny(tmp_path, time_budget=60)))
    assert config.optim.decay_start is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # with a length as well: the schedule, no warning
        assert complete_bounds(resolve_config(tiny(tmp_path, time_budget=60, steps=10))).optim.decay_start == 5


def test_schedule_needs_both_ends(tmp_path):
    with pytest.raises(GankitError, match="give both"):
        resolve_config(tiny(tmp_path, optim={"decay_start": 5}))


def test_a_schedule_that_ends_early_warns(tmp_path):
    with pytest.warns(UserWarning, match="reach zero at step 2"):
        train(tiny(tmp_path, optim={"decay_start": 1, "decay_length": 1}), steps=3)


# ---------------------------------------------------------------- through the loop

def test_resume_mid_schedule_with_pools_is_bit_exact(tmp_path):
    options = tiny(tmp_path, replay={"size": 6}, optim={"decay_start": 2, "decay_length": 6},
                   checkpoint_every=4)
    straight = ckpt.load_checkpoint(train(options, steps=8, name="straight").run_dir)
    first = train(options, steps=4, name="split")
    assert ckpt.load_checkpoint(first.run_dir)["pools"]["a"]["count"] == 6  # full: swapping by then
    resumed = train(resume=first.run_dir, steps=8)
    split = ckpt.load_checkpoint(resumed.run_dir)
    for key in ("G", "D", "G_ema", "opt_g", "opt_d", "rng", "pools"):
        assert_same_tensors(straight[key], split[key], key)
    assert split["step"] == 8 and split["images_seen"] == 16
    assert split["opt_g"]["param_groups"][0]["lr"] == pytest.approx(2e-4 * 1 / 6)  # step 7 of 2 + 6
    # the recipe's defaults: no EMA (G_ema is G), one pool per discriminator, LSGAN, no augmentation
    assert_same_tensors(split["G"], split["G_ema"], "G_ema")
    assert set(split["pools"]) == {"a", "b"} and split["replay"] == {}
    assert split["config"]["loss"] == "lsgan" and split["config"]["augment"]["mode"] == "none"


def test_cycle_error_falls_and_translations_move_to_the_other_domain(tmp_path):
    """Domains: digits-a (white strokes on black) and digits-b (the other half of the digits,
    inverted). Trained on 200 of each; measured on 64 held-out images of each."""
    whole = load_unpaired(DataConfig(**PAIR), progress=False)
    a = whole.a.images[-64:].float() / 127.5 - 1  # never trained on: beyond the first 200
    b = whole.b.images[-64:].float() / 127.5 - 1

    def error(G):
        with torch.no_grad():
            return float(cycle_loss(G.b2a(G.a2b(a)), a) + cycle_loss(G.a2b(G.b2a(b)), b)) / 2

    options = tiny(tmp_path, data={"limit": 200}, model={"g_width": 8}, batch=4,
                   optim={"lr_g": 1e-3, "lr_d": 1e-3})
    config = resolve_config(options)
    torch.manual_seed(config.seed)  # the loop's initial weights
    untrained, _ = get_recipe("cyclegan").make(config.model, DataSpec(16, 1))
    result = train(options, steps=30, name="learn")
    G = load_translator(result.run_dir).module
    before, after = error(untrained), error(G)
    assert after < 0.65 * before, (before, after)
    with torch.no_grad():  # B is mostly white, A mostly black: each translation takes the other's
        assert abs(G.a2b(a).mean() - b.mean()) < abs(G.a2b(a).mean() - a.mean())
        assert abs(G.b2a(b).mean() - a.mean()) < abs(G.b2a(b).mean() - b.mean())
    rows = metrics_rows(result.run_dir)
    assert rows[-1]["loss/cycle"] < rows[0]["loss/cycle"]


def test_built_in_domains_are_disjoint_halves():
    cfg = DataConfig(source="digits-a", size=8)
    whole = DATASETS.get("digits")(cfg)
    a, b = DATASETS.get("digits-a")(cfg), DATASETS.get("digits-b")(cfg)
    assert len(a) + len(b) == len(whole)
    assert torch.equal(a.images, whole.images[:len(a)]) and torch.equal(b.images, 255 - whole.images[len(a):])
    assert len(DATASETS.get("digits-b")(DataConfig(source="digits-b", size=8, limit=5))) == 5


@pytest.mark.parametrize("overrides, message", [
    ({"update": "joint"}, "use --update cycle"),
    ({"data": {"source_b": None}}, "give domain B"),
    ({"eval": {"every": 5}}, "drop --eval-every"),
    ({"recipe": "dcgan", "data": PAIR}, "only translation recipes use"),
    ({"recipe": "dcgan", "update": "cycle"}, "use --update alternating"),
])
def test_combinations_that_cannot_work_are_refused(tmp_path, overrides, message):
    options = overrides if overrides.get("recipe") == "dcgan" else tiny(tmp_path, **overrides)
    with pytest.raises(GankitError, match=message):
        resolve_config(options)


# ---------------------------------------------------------------- the command line

def write_domain(folder, name, n):
    folder.mkdir(parents=True)
    images = DATASETS.get(name)(DataConfig(source=name, size=16, limit=n)).images
    for i, image in enumerate(images):
        Image.fromarray(image[0].numpy()).save(folder / f"{i:02d}.png")


def test_translate_train_and_apply_end_to_end(tmp_path, capsys):
    write_domain(tmp_path / "horses" / "trainA", "digits-a", 10)
    write_domain(tmp_path / "horses" / "trainB", "digits-b", 10)
    runs = str(tmp_path / "runs")
    code, out, err = run(["translate", "train", "--data", str(tmp_path / "horses"), "--size", "16", "--tiny",
                          "--steps", "4", "--batch", "2", "--name", "h2z", "--runs-dir", runs,
                          "--sample-every", "2", "--no-progress"], capsys)
    assert code == 0, err
    run_dir = tmp_path / "runs" / "h2z"
    assert "trained 4 steps" in out
    state = ckpt.load_checkpoint(run_dir)
    assert state["config"]["optim"]["decay_start"] == 2 and state["config"]["optim"]["decay_length"] == 2
    # the sample sheet: rows A, A->B, A->B->A, B, B->A, B->A->B of 8 images, 16 px with 2 px gaps
    sheet = Image.open(run_dir / "samples" / "step-00000004.png")
    assert sheet.size == (8 * 18 + 2, 6 * 18 + 2)

    # resume keeps the schedule (and warns that it has ended)
    with pytest.warns(UserWarning, match="reach zero at step 4"):
        code, out, err = run(["translate", "train", "--resume", str(run_dir), "--steps", "5", "--no-progress"], capsys)
    assert code == 0, err
    assert ckpt.load_checkpoint(run_dir)["config"]["optim"] == state["config"]["optim"]

    single = tmp_path / "one.png"
    code, out, err = run(["translate", "apply", str(run_dir), "--direction", "a2b",
                          str(tmp_path / "horses" / "trainA" / "03.png"), str(single)], capsys)
    assert code == 0, err
    assert Image.open(single).size == (16, 16) and "translated 1 image(s) a2b" in out
    code, out, err = run(["translate", "apply", str(run_dir), "--direction", "b2a",
                          str(tmp_path / "horses" / "trainB"), str(tmp_path / "zebras")], capsys)
    assert code == 0, err
    written = sorted(p.name for p in (tmp_path / "zebras").iterdir())
    assert written == [f"{i:02d}.png" for i in range(10)]
    # what apply writes is the checkpoint's generator on the same pixels
    translator = load_translator(run_dir)
    x = torch.from_numpy(np.array(Image.open(tmp_path / "horses" / "trainB" / "00.png")))[None, None] / 255
    expected = (translator.translate(x, "b2a")[0, 0] * 255).round().to(torch.uint8).numpy()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "zebras" / "00.png")), expected)


def test_translate_errors_are_one_line(tmp_path, capsys):
    write_domain(tmp_path / "A", "digits-a", 4)
    (tmp_path / "empty").mkdir()
    (tmp_path / "root" / "trainA").mkdir(parents=True)
    common = ["--size", "16", "--tiny", "--steps", "1", "--no-progress", "--runs-dir", str(tmp_path / "runs")]
    cases = [
        (["--a", str(tmp_path / "A"), "--b", str(tmp_path / "missing")], "does not exist"),
        (["--a", str(tmp_path / "A"), "--b", str(tmp_path / "empty")], "no image files"),
        (["--a", str(tmp_path / "A")], "give both domains"),
        (["--data", str(tmp_path / "root")], "trainB"),
        (["--a", str(tmp_path / "A"), "--b", str(tmp_path / "A"), "--decay", "2"], "--decay 2"),
    ]
    for args, expected in cases:
        code, _, err = run(["translate", "train", *args, *common], capsys)
        assert expected in one_line_error(code, err), (args, err)
    assert not (tmp_path / "runs").exists()

    cycle_run = train(tiny(tmp_path), steps=1, name="c").run_dir
    gan_run = train({"data": {"source": "digits", "size": 16}, "model": {"latent_dim": 8, "width": 8},
                     "batch": 4, "progress": False, "runs_dir": str(tmp_path / "runs")}, steps=1, name="g").run_dir
    picture = str(tmp_path / "A" / "00.png")
    cases = [
        ([str(cycle_run), "--direction", "sideways", picture, str(tmp_path / "o.png")], "use a2b"),
        ([str(gan_run), "--direction", "a2b", picture, str(tmp_path / "o.png")], "not a CycleGAN checkpoint"),
        ([str(cycle_run), "--direction", "a2b", str(tmp_path / "nope.png"), str(tmp_path / "o.png")], "does not exist"),
        ([str(cycle_run), "--direction", "a2b", picture, str(tmp_path / "o.txt")], "file name ending in .png"),
        ([str(cycle_run), "--direction", "a2b", str(tmp_path / "empty"), str(tmp_path / "out")], "no image files"),
    ]
    for args, expected in cases:
        code, _, err = run(["translate", "apply", *args], capsys)
        assert expected in one_line_error(code, err), (args, err)
    with pytest.raises(GankitError, match="use `gankit translate apply`"):
        load_generator(cycle_run)
