"""The classic canon: losses, targets, penalties, stabilisation layers, replay, update strategies,
presets and the conditional GAN, each through the one training loop."""

import json
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gankit import load_generator, train
from gankit.config import TargetConfig, load_preset, preset_names
from gankit.resolve import resolve_config
from gankit.errors import DesignWarning, GankitError
from gankit.losses import PENALTIES, get_loss, make_targets
from gankit.nn import MinibatchDiscrimination, MinibatchStdDev, spectral_normalize
from gankit.training import checkpoint as ckpt
from gankit.training.replay import ReplayBuffer
from gankit.training.step import Objective
from gankit.variants import DataSpec, get_recipe

from helpers import TINY_DATA, assert_same_tensors, metrics_rows, tiny_options

def tiny_run(tmp_path, recipe="convgan", **overrides):
    return tiny_options(tmp_path / "runs", recipe, **overrides)


# ---------------------------------------------------------------- losses and targets

def test_losses_follow_their_formulas():
    torch.manual_seed(0)
    real, fake = torch.randn(16), torch.randn(16)
    hinge, ls, w, sat = (get_loss(n) for n in ("hinge", "lsgan", "wasserstein", "saturating"))
    torch.testing.assert_close(hinge.d_loss(real, fake), torch.clamp(1 - real, min=0).mean() + torch.clamp(1 + fake, min=0).mean())
    torch.testing.assert_close(hinge.g_loss(fake), -fake.mean())
    torch.testing.assert_close(ls.d_loss(real, fake), 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake ** 2).mean())
    torch.testing.assert_close(ls.g_loss(fake), 0.5 * ((fake - 1) ** 2).mean())
    torch.testing.assert_close(w.d_loss(real, fake), fake.mean() - real.mean())
    # saturating G minimises log(1 - sigmoid(fake))
    torch.testing.assert_close(sat.g_loss(fake), torch.log1p(-torch.sigmoid(fake)).mean())


def test_soft_targets_reach_the_losses_that_use_them():
    torch.manual_seed(0)
    real, fake = torch.randn(8), torch.randn(8)
    t_real, t_fake = torch.full((8,), 0.9), torch.full((8,), 0.05)
    expected = F.binary_cross_entropy_with_logits(real, t_real) + F.binary_cross_entropy_with_logits(fake, t_fake)
    torch.testing.assert_close(get_loss("nonsaturating").d_loss(real, fake, t_real, t_fake), expected)
    ls = get_loss("lsgan").d_loss(real, fake, t_real, t_fake)
    torch.testing.assert_close(ls, 0.5 * ((real - 0.9) ** 2).mean() + 0.5 * ((fake - 0.05) ** 2).mean())
    # per-sample targets broadcast over patch logits
    patches = torch.randn(8, 1, 2, 2)
    torch.testing.assert_close(
        get_loss("nonsaturating").d_loss(patches, patches, t_real, t_fake),
        F.binary_cross_entropy_with_logits(patches, t_real.view(8, 1, 1, 1).expand_as(patches))
        + F.binary_cross_entropy_with_logits(patches, t_fake.view(8, 1, 1, 1).expand_as(patches)))


def test_targets_smoothing_noise_and_flips():
    assert make_targets(TargetConfig(), 4, 4, torch.device("cpu"))[:2] == (1.0, 0.0)
    real, fake, _ = make_targets(TargetConfig(smoothing=0.1), 4, 4, torch.device("cpu"))
    assert torch.allclose(real, torch.full((4,), 0.9)) and torch.equal(fake, torch.zeros(4))  # one-sided
    torch.manual_seed(0)
    real, fake, _ = make_targets(TargetConfig(noise=0.1), 1000, 1000, torch.device("cpu"))
    assert 0.9 <= real.min() and real.max() <= 1.0 and real.std() > 0.01
    assert 0.0 <= fake.min() and fake.max() <= 0.1 and fake.std() > 0.01
    real, fake, stats = make_targets(TargetConfig(flip=0.2), 5000, 5000, torch.device("cpu"))
    assert abs((real == 0).float().mean() - 0.2) < 0.03 and abs((fake == 1).float().mean() - 0.2) < 0.03
    assert abs(float(stats["targets/flipped"]) - 0.2) < 0.03


# ---------------------------------------------------------------- penalties

class LinearCritic(nn.Module):
    """D(x) = <w, x>: its input gradient is w everywhere."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x, labels=None):
        return (x.flatten(1) * self.w).sum(1)


def test_penalties_on_a_critic_with_known_gradients():
    w = torch.full((1 * 4 * 4,), 0.5)  # ||w|| = 2
    D = LinearCritic(w)
    real, fake = torch.rand(6, 1, 4, 4), torch.rand(6, 1, 4, 4)
    gp = PENALTIES.get("gp").fn(D, real, fake, None)
    r1 = PENALTIES.get("r1").fn(D, real, fake, None)
    torch.testing.assert_close(gp, torch.tensor(1.0))  # (||w|| - 1)^2
    torch.testing.assert_close(r1, torch.tensor(4.0))  # ||w||^2
    # the penalty is differentiable in D's weights: d gp / dw = 2 (||w|| - 1) w / ||w||
    (grad,) = torch.autograd.grad(gp, D.w)
    torch.testing.assert_close(grad, 2 * (2 - 1) * w / 2)


# ---------------------------------------------------------------- stabilisation layers

def test_minibatch_stddev_sees_collapse():
    layer = MinibatchStdDev(group_size=4)
    same = torch.randn(1, 3, 4, 4).repeat(8, 1, 1, 1)
    varied = torch.randn(8, 3, 4, 4)
    assert layer(same).shape == (8, 4, 4, 4)
    assert layer(same)[:, 3].max() < 1e-3 < layer(varied)[:, 3].min()
    assert layer(torch.randn(6, 3, 4, 4)).shape == (6, 4, 4, 4)  # a batch not divisible by 4


def test_minibatch_discrimination_counts_close_neighbours():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(10, kernels=7, kernel_dim=3)
    same = torch.randn(1, 10).repeat(5, 1)
    out = layer(same)
    assert out.shape == (5, 17) and torch.equal(out[:, :10], same)
    torch.testing.assert_close(out[:, 10:], torch.full((5, 7), 4.0))  # 4 identical others each
    spread = layer(torch.randn(5, 10) * 100)
    assert spread[:, 10:].max() < 0.1


def test_spectral_norm_holds_the_largest_singular_value_at_one():
    torch.manual_seed(0)
    net = spectral_normalize(nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 1)))
    for _ in range(30):  # power iterations run in training-mode forward passes
        net(torch.randn(4, 20))
    net.eval()
    assert abs(torch.linalg.matrix_norm(net[0].weight, ord=2) - 1.0) < 1e-2


# ---------------------------------------------------------------- replay

def test_replay_buffer_fills_then_replaces_and_round_trips():
    torch.manual_seed(0)
    buffer = ReplayBuffer(size=10, fraction=0.5)
    assert buffer.replay_count(8) == 0  # nothing to replay yet
    buffer.push(torch.zeros(6, 1, 2, 2), torch.zeros(6, dtype=torch.long))
    assert buffer.count == 6 and buffer.replay_count(8) == 4
    buffer.push(torch.ones(6, 1, 2, 2), torch.ones(6, dtype=torch.long))
    assert buffer.count == 10
    images, labels = buffer.sample(50)
    assert set(images.flatten().tolist()) == {0.0, 1.0} and torch.equal(images[:, 0, 0, 0].long(), labels)
    state = buffer.state_dict()
    other = ReplayBuffer(size=10, fraction=0.5)
    other.load_state_dict(state, torch.device("cpu"))
    assert torch.equal(other.images, buffer.images) and torch.equal(other.labels, buffer.labels)


# ---------------------------------------------------------------- through the training loop

@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_trains_through_the_one_loop(tmp_path, preset):
    values = load_preset(preset)
    recipe = values.get("recipe", "dcgan")
    options = tiny_run(tmp_path, recipe=recipe)
    merged = {**values, **{k: v for k, v in options.items() if k not in ("model", "data")},
              "model": {**values.get("model", {}), **options["model"]}, "data": TINY_DATA}
    merged["batch"] = 8
    config = resolve_config(merged)
    assert config.loss == values.get("loss", config.loss) and config.update == values.get("update", config.update)
    result = train(merged, steps=3, name=preset)
    state = ckpt.load_checkpoint(result.run_dir)
    assert state["step"] == 3
    rows = metrics_rows(result.run_dir)
    assert all(torch.isfinite(torch.tensor(r["loss/d"])) and torch.isfinite(torch.tensor(r["loss/g"]))
               for r in rows)
    G = load_generator(result.run_dir)
    images = G.sample_by_class(2) if G.num_classes else G.sample(4)
    assert images.min() >= 0 and images.max() <= 1


@pytest.mark.parametrize("update", ["alternating", "two_phase", "joint"])
def test_resume_is_exact_with_replay_targets_and_penalty(tmp_path, update):
    extra = dict(update=update, replay={"size": 12, "fraction": 0.5}, targets={"noise": 0.1, "flip": 0.1},
                 penalty="r1", d_steps=1 if update == "joint" else 2, g_steps=1 if update == "joint" else 2,
                 model={"d_norm": "layer"})
    straight = ckpt.load_checkpoint(train(tiny_run(tmp_path, **extra), steps=6, name="straight").run_dir)
    first = train(tiny_run(tmp_path, **extra), steps=3, name="split")
    split = ckpt.load_checkpoint(train(resume=first.run_dir, steps=6).run_dir)
    for key in ("G", "D", "G_ema", "opt_g", "opt_d", "rng", "replay"):
        assert_same_tensors(straight[key], split[key], key)
    assert straight["replay"]["count"] == 12
    rows = metrics_rows(first.run_dir)
    assert "loss/r1" in rows[-1] and "targets/flipped" in rows[-1]
    assert rows[-1]["replay/fraction"] == 0.5  # logged once the buffer acts


def test_wgan_gp_runs_its_critic_steps_and_logs_the_penalty(tmp_path):
    result = train(tiny_run(tmp_path, recipe="wgan-gp"), steps=2, name="w")
    assert result.images_seen == 2 * 5 * 8  # 5 critic steps, each on a fresh real batch
    assert "loss/gp" in metrics_rows(result.run_dir)[-1]


def test_d_skip_is_logged_when_it_acts(tmp_path):
    result = train(tiny_run(tmp_path, d_skip_below=100.0), steps=3, name="skip")  # always below: D frozen
    rows = metrics_rows(result.run_dir)
    assert all(r["d/skipped"] == 1.0 for r in rows)
    state = ckpt.load_checkpoint(result.run_dir)
    assert not state["opt_d"]["state"]  # D's optimiser never stepped


def test_two_phase_is_the_textbook_step(tmp_path):
    """Hands-On ML: one D pass on [reals; fakes] with targets [1; 0], then G through D."""
    from gankit.training.step import Objective, StepContext
    from gankit.training.updates import two_phase_update

    torch.manual_seed(0)
    G, D = get_recipe("mlp").make(get_recipe("mlp").tiny, DataSpec(size=4, channels=1))
    seen = []
    D.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0].shape[0]))
    nets = StepContext(G, D, torch.optim.SGD(G.parameters(), 0.1), torch.optim.SGD(D.parameters(), 0.1),
                       Objective(get_loss("nonsaturating")), torch.device("cpu"),
                       lambda: torch.autocast("cpu", enabled=False))
    real = torch.rand(5, 1, 4, 4)
    d_before = [p.clone() for p in D.parameters()]
    two_phase_update(nets, lambda: (real, None), 1, 1)
    assert seen == [10, 5]  # one concatenated D pass, then G's pass through D
    assert any(not torch.equal(a, b) for a, b in zip(d_before, D.parameters()))


# ---------------------------------------------------------------- conditional GAN

def test_conditional_gan_samples_by_label_and_by_class(tmp_path):
    result = train(tiny_run(tmp_path, recipe="cgan"), steps=3, name="c", grid_size=20)
    G = load_generator(result.run_dir)
    assert G.num_classes == 10 and G.class_names[3] == "3"
    sevens = G.sample(4, seed=1, label=7)
    assert sevens.shape == (4, 1, 16, 16)
    assert torch.equal(sevens, G.sample(4, seed=1, label="7"))  # by name
    assert not torch.equal(sevens, G.sample(4, seed=1, label=2))  # the label changes the image
    grid = G.sample_by_class(3, seed=0)
    assert grid.shape == (30, 1, 16, 16)
    with pytest.raises(GankitError, match="not a class"):
        G.sample(2, label=10)
    # a class name that is also another class's index must be spelled out
    G.class_names = ["b", "a", "0"] + G.class_names[3:]
    with pytest.raises(GankitError, match="write name:0 or index:0"):
        G.label_index("0")
    assert G.label_index("name:0") == 2 and G.label_index("index:0") == 0 and G.label_index("a") == 1
    samples = sorted((result.run_dir / "samples").glob("*.png"))
    from PIL import Image
    width, height = Image.open(samples[-1]).size
    assert height > width  # 10 rows (one per class) of 2: taller than wide


def test_conditional_needs_labels_and_unconditional_refuses_a_label(tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    from PIL import Image
    for i in range(4):
        Image.new("RGB", (16, 16), (i * 40, 0, 0)).save(folder / f"{i}.png")
    with pytest.raises(GankitError, match="needs class labels"):
        train(tiny_run(tmp_path, recipe="cgan", data={"source": str(folder), "size": 16}), steps=1)
    plain = train(tiny_run(tmp_path), steps=1, name="plain")
    with pytest.raises(GankitError, match="unconditional"):
        load_generator(plain.run_dir).sample(2, label=1)
    with pytest.raises(GankitError, match="takes no labels"):
        train({"data": TINY_DATA, "conditional": True, "runs_dir": str(tmp_path / "r")}, steps=1)


def test_cli_sample_label_and_by_class(tmp_path):
    from typer.testing import CliRunner

    from gankit.cli import app

    run = train(tiny_run(tmp_path, recipe="cgan"), steps=2, name="c").run_dir
    runner = CliRunner()
    out = runner.invoke(app, ["sample", str(run), "--n", "3", "--label", "5", "--out", str(tmp_path / "five.npz")])
    assert out.exit_code == 0, out.output
    import numpy as np
    assert np.load(tmp_path / "five.npz")["images"].shape == (3, 16, 16, 1)
    out = runner.invoke(app, ["sample", str(run), "--n", "4", "--by-class", "--out", str(tmp_path / "rows.png")])
    assert out.exit_code == 0, out.output
    from PIL import Image
    width, height = Image.open(tmp_path / "rows.png").size
    assert height > 2 * width  # 10 rows of 4


def test_presets_resolve_by_name_and_unknown_names_are_errors():
    assert load_preset("wgan-gp")["penalty"] == "gp"
    with pytest.raises(GankitError, match="no config file or preset named nope"):
        load_preset("nope")


@pytest.mark.parametrize("overrides, message", [
    ({"recipe": "wgan-gp", "augment": {"mode": "ada"}}, "no real/fake boundary"),
    ({"recipe": "wgan-gp", "update": "joint"}, "use --update alternating"),
    ({"recipe": "convgan", "model": {"g_kernel": 4}}, "use an odd kernel"),
])
def test_combinations_that_cannot_work_are_refused(overrides, message):
    with pytest.raises(GankitError, match=message):
        resolve_config(overrides)


def test_two_phase_refuses_a_d_that_compares_samples_in_a_batch(tmp_path):
    with pytest.raises(GankitError, match="passes reals and fakes through D together"):
        train(tiny_run(tmp_path, update="two_phase", model={"minibatch": "stddev"}), steps=1)


def test_lsgan_accuracy_uses_its_boundary(tmp_path):
    from gankit.training.step import d_stats

    class N:
        objective = Objective(get_loss("lsgan"))
    stats = d_stats(N, torch.tensor([0.8, 0.6, 0.4]), torch.tensor([0.1, 0.7]))
    assert abs(float(stats["d/acc_real"]) - 2 / 3) < 1e-6 and float(stats["d/acc_fake"]) == 0.5
    N.objective = Objective(get_loss("wasserstein"))
    assert set(d_stats(N, torch.ones(2), torch.zeros(2))) == {"d/score_gap"}


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_builds_at_full_size_and_runs_forward(preset):
    values = load_preset(preset)
    config = resolve_config(values)
    recipe = get_recipe(config.recipe)
    spec = DataSpec(config.data.size, config.data.channels or 1, 10 if config.conditional else 0)
    torch.manual_seed(0)
    G, D = recipe.make(config.model, spec)
    labels = torch.arange(2) if config.conditional else None
    images = G(torch.randn(2, G.latent_dim), labels)
    assert images.shape == (2, spec.channels, spec.size, spec.size)
    assert D(images, labels).shape == (2,)


def test_a_generator_starting_below_4x4_is_warned_about():
    # the LEGO nets at 32 px with all four stages start from 2x2 and collapse (benchmarks/zoo.py)
    recipe = get_recipe("convgan")
    lego = load_preset("dcgan-lego")["model"]
    with pytest.warns(DesignWarning, match="first map is 2x2 at size 32.*use 1 stride-2 stage fewer"):
        recipe.make(lego, DataSpec(32, 1))
    with pytest.warns(DesignWarning, match="first map is 1x1 at size 32.*use 2 stride-2 stages fewer"):
        recipe.make({**lego, "g_widths": [512] * 5, "g_strides": [2] * 5, "d_widths": [64, 128]}, DataSpec(32, 1))
    one_stage_fewer = {**lego, "g_widths": [256, 128, 64], "g_strides": [2, 2, 2], "d_widths": [64, 128, 256]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        recipe.make(lego, DataSpec(64, 1))  # the book's size: a 4x4 start
        recipe.make(one_stage_fewer, DataSpec(32, 1))


def test_the_start_size_warning_is_said_when_training_not_when_using(tmp_path):
    options = tiny_run(tmp_path, data={"size": 32},
                       model={"g_widths": [8, 8, 8, 8], "g_strides": [2, 2, 2, 2]})
    with pytest.warns(DesignWarning, match="first map is 2x2"):
        result = train(options, steps=1, name="small-start")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        G = load_generator(result.run_dir)  # sampling a trained model: the advice is no use now
    assert G.sample(2).shape == (2, 1, 32, 32)


def test_eval_against_other_images_leaves_the_runs_labels_behind(tmp_path):
    """A conditional run on labelled sub-folders is scored against a flat folder of other images:
    the run's label options describe its own data, not the folder given to eval."""
    from PIL import Image
    from typer.testing import CliRunner

    from gankit.cli import app

    labelled, other = tmp_path / "labelled", tmp_path / "other"
    for i in range(8):
        (labelled / "ab"[i % 2]).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (i * 30, 0, 0)).save(labelled / "ab"[i % 2] / f"{i}.png")
    other.mkdir()
    for i in range(6):
        Image.new("RGB", (16, 16), (0, i * 40, 0)).save(other / f"{i}.png")
    run = train(tiny_run(tmp_path, recipe="cgan", data={"source": str(labelled), "size": 16, "labels": True}),
                steps=1, name="c").run_dir
    out = CliRunner().invoke(app, ["eval", str(run), "--data", str(other), "--n", "6", "--features", "mnist",
                                   "--metrics", "kid", "--no-progress"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output.strip().splitlines()[-1])["data"] == str(other)
    # and against its own labelled data, labels drawn at its class frequencies
    out = CliRunner().invoke(app, ["eval", str(run), "--n", "6", "--features", "mnist", "--metrics", "kid",
                                   "--no-progress"])
    assert out.exit_code == 0, out.output


# ---------------------------------------------------------------- conditional fidelity: CBN, AC-GAN

def test_class_conditional_batch_norm_starts_as_batch_norm_and_shapes_by_class():
    from gankit.models.conditional import ConditionalBatchNorm2d

    torch.manual_seed(0)
    norm = ConditionalBatchNorm2d(3, num_classes=4)
    x, labels = torch.randn(8, 3, 5, 5), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    torch.testing.assert_close(norm(x, labels), torch.nn.functional.batch_norm(x, None, None, training=True))
    with torch.no_grad():
        norm.scale.weight[2] = 2.0
        norm.shift.weight[2] = -1.0
    out, plain = norm(x, labels), torch.nn.functional.batch_norm(x, None, None, training=True)
    torch.testing.assert_close(out[labels == 2], plain[labels == 2] * 2 - 1)
    torch.testing.assert_close(out[labels != 2], plain[labels != 2])


def test_ac_gan_d_names_classes_and_both_nets_learn_from_it(tmp_path):
    """A cgan with class-conditional norm in G and a classifier head on D: D's class logits come
    from the same pass, the class losses reach both nets' logs, and a conditional GAN is required."""
    from gankit.models.conditional import ConditionalBatchNorm2d
    from gankit.run import build_run

    model = {**get_recipe("cgan").tiny, "g_norm": "batch", "g_label_norm": True, "d_classifier": True,
             "d_label_input": "none"}
    options = tiny_options(tmp_path / "runs", "cgan", model=model)
    run = build_run(resolve_config(options), run_dir=tmp_path, write_config=False)
    G, D = run.trainer.ctx.G, run.trainer.ctx.D
    assert run.trainer.ctx.classifies
    images, labels = torch.rand(4, 1, 16, 16) * 2 - 1, torch.tensor([0, 3, 5, 9])
    D.eval()  # no dropout: the two calls must agree
    logits, classes = D.judge(images, labels)
    assert classes.shape == (4, 10) and torch.equal(logits, D(images, labels))
    # AC-GAN's D does not see the label: its logits and class logits are the image's alone
    other_logits, other_classes = D.judge(images, torch.tensor([1, 1, 1, 1]))
    assert torch.equal(other_logits, logits) and torch.equal(other_classes, classes)
    assert sum(isinstance(m, ConditionalBatchNorm2d) for m in G.modules()) >= 2
    rows = metrics_rows(train(options, steps=2, name="acgan").run_dir)
    assert len(rows) == 2 and all({"loss/d_class", "loss/g_class", "d/class_acc_real"} <= set(r) for r in rows)
    with pytest.raises(GankitError, match="d_classifier .AC-GAN. makes D name the class"):
        resolve_config(tiny_options(tmp_path / "runs", "convgan", model={**get_recipe("convgan").tiny, "d_classifier": True}))
    for labels_in, extra, message in (
            ({"d_label_input": "channels"}, {}, "lets D's class head read the label from its input maps"),
            ({"d_label_input": "none", "d_classifier": False}, {}, "leaves D blind to the label"),
            ({"d_label_input": "none"}, {"classifier_weight": 0.0}, "leaves D blind to the label")):
        with pytest.raises(GankitError, match=message):
            resolve_config(tiny_options(tmp_path / "runs", "cgan", model={**model, **labels_in}, **extra))
    # refused for new runs only: a run saved with the head on the label-maps D still loads
    leaky = train(options, steps=1, name="leaky")
    state = ckpt.load_checkpoint(leaky.run_dir)
    state["config"]["model"]["d_label_input"] = "channels"
    # (its D is built afresh from that config; sampling loads G alone)
    torch.save(state, tmp_path / "leaky.pt")
    assert load_generator(tmp_path / "leaky.pt").sample(2, label=3).shape == (2, 1, 16, 16)
    # with a projection D the head reads label-free features too (the projection adds the label)
    # (build_run makes the run folder it is given: tmp_path / "p" does not exist yet)
    with build_run(resolve_config(tiny_options(tmp_path / "runs", "cgan", model={**model, "d_label_input": "projection"})),
                   run_dir=tmp_path / "p", write_config=False) as projected_run:
        projected = projected_run.trainer.ctx.D.eval()
        assert torch.equal(projected.judge(images, labels)[1], projected.judge(images, torch.tensor([1, 1, 1, 1]))[1])
    # D's class loss: on reals and fakes (Odena et al.), or on reals only (classifier_fakes=false)
    import dataclasses
    import torch.nn.functional as F
    from gankit.training.step import discriminator_loss

    ctx = run.trainer.ctx
    real_classes, fake_classes = torch.randn(4, 10), torch.randn(4, 10)
    fake_labels = torch.tensor([2, 2, 7, 1])
    both = F.cross_entropy(real_classes, labels) + F.cross_entropy(fake_classes, fake_labels)
    for fakes, expected in ((True, both), (False, F.cross_entropy(real_classes, labels))):
        ctx.objective = dataclasses.replace(ctx.objective, classifier_fakes=fakes)
        _, stats = discriminator_loss(ctx, torch.zeros(4), torch.zeros(4), images, images, labels,
                                      (real_classes, fake_classes, fake_labels))
        torch.testing.assert_close(stats["loss/d_class"], expected)
    with pytest.raises(GankitError, match="g_label_norm makes G's batch norms class-conditional"):
        resolve_config(tiny_options(tmp_path / "runs", "cgan", model={**get_recipe("cgan").tiny, "g_label_norm": True,
                                                                     "g_norm": "layer"}))
