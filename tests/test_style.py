"""ProGAN and StyleGAN pieces: equalized lr, pixel norm, modulated convs, growing with fade-in,
mapping / mixing / truncation / noise, lazy R1, and exact resume in the middle of a phase."""

import json

import pytest
import torch
import torch.nn.functional as F

from gankit import load_generator, train
from gankit.config import from_dict
from gankit.models.progan import ProGANOptions, ProGenerator, ProDiscriminator, schedule
from gankit.models.stylegan import StyleGANOptions, StyleGenerator
from gankit.nn.equalized import EqualizedConv2d, EqualizedLinear, ModulatedConv2d, NoiseInjection, PixelNorm
from gankit.training import checkpoint as ckpt
from gankit.variants import get_recipe

from helpers import assert_same_tensors


def tiny(tmp_path, recipe, **overrides):
    return {"recipe": recipe, "data": {"source": "digits", "size": 16}, "model": dict(get_recipe(recipe).tiny),
            "batch": 8, "log_every": 1, "sample_every": 100, "checkpoint_every": 100, "progress": False,
            "grid_size": 4, "runs_dir": str(tmp_path / "runs"), **overrides}


def test_equalized_layers_draw_unit_weights_and_scale_at_run_time():
    torch.manual_seed(0)
    linear = EqualizedLinear(256, 64)
    assert abs(linear.weight.std() - 1) < 0.05
    x = torch.randn(512, 256)
    assert abs(linear(x).std() - 1) < 0.1  # the He constant keeps unit variance
    slow = EqualizedLinear(256, 64, lr_mul=0.01)
    assert abs(slow.weight.std() - 100) < 5  # N(0, 1/lr_mul^2) ...
    assert abs(slow(x).std() - 1) < 0.1  # ... scaled back by lr_mul at run time
    conv = EqualizedConv2d(32, 16, 3)
    assert abs(conv(torch.randn(8, 32, 8, 8)).std() - 1) < 0.15


def test_pixel_norm_gives_unit_mean_square_per_pixel():
    x = torch.randn(4, 16, 5, 5) * 7
    y = PixelNorm()(x)
    torch.testing.assert_close(y.pow(2).mean(1), torch.ones(4, 5, 5))


def test_modulated_conv_matches_a_per_sample_conv_and_demodulates():
    torch.manual_seed(0)
    layer = ModulatedConv2d(6, 5, 3, w_dim=4)
    x, w = torch.randn(3, 6, 8, 8), torch.randn(3, 4)
    out = layer(x, w)
    for b in range(3):  # reference: each sample's own modulated, demodulated weight
        weight = layer.weight * layer.scale * layer.affine(w[b:b + 1])[0][None, :, None, None]
        weight = weight / weight.pow(2).sum(dim=(1, 2, 3), keepdim=True).add(1e-8).sqrt()
        torch.testing.assert_close(out[b:b + 1], F.conv2d(x[b:b + 1], weight, padding=1), atol=1e-5, rtol=1e-4)
    # demodulation: unit-variance inputs give roughly unit-variance outputs whatever the style scale
    big = layer(torch.randn(16, 6, 16, 16), torch.randn(16, 4) * 10)
    assert 0.5 < big.std() < 1.5
    assert layer(x, w, ).shape == (3, 5, 8, 8) and ModulatedConv2d(6, 5, 3, 4, up=True)(x, w).shape == (3, 5, 16, 16)


def test_noise_is_random_in_training_and_fixed_in_eval():
    layer = NoiseInjection(3, 4)
    layer.strength.data.fill_(1.0)
    x = torch.zeros(2, 3, 4, 4)
    assert not torch.equal(layer(x), layer(x))
    layer.eval()
    assert torch.equal(layer(x), layer(x)) and torch.equal(layer(x)[0], layer(x)[1])


def test_metrics_draw_fresh_noise_per_sample_from_their_own_generator_and_grids_stay_fixed():
    """per_sample_noise: eval-mode noise differs between samples and calls, repeats with the
    generator's seed, leaves the global RNG alone, and ends with the block (grids are fixed again)."""
    from gankit.nn.equalized import per_sample_noise

    G = style_g().eval()
    for layer in G.modules():
        if isinstance(layer, NoiseInjection):
            layer.strength.data.fill_(0.5)
    z = torch.randn(1, G.latent_dim).repeat(2, 1)  # the same latent twice
    fixed = G(z)
    assert torch.equal(fixed[0], fixed[1])
    rng = torch.get_rng_state()
    with per_sample_noise(G, torch.Generator().manual_seed(3)):
        first, again = G(z), G(z)
    with per_sample_noise(G, torch.Generator().manual_seed(3)):
        repeated = G(z)
    assert torch.equal(torch.get_rng_state(), rng)
    assert not torch.equal(first[0], first[1]) and not torch.equal(first, again)
    assert torch.equal(first, repeated)
    assert torch.equal(G(z), fixed)  # after the block: the fixed noise image again


def test_training_time_kid_samples_style_generators_with_fresh_noise(tmp_path):
    """The task's KID sampler draws the same latents as before but fresh noise: its images differ
    from the fixed-noise images of those latents exactly when the noise has any strength."""
    from gankit.resolve import resolve_config
    from gankit.run import build_run
    from gankit.seeds import derive_seed
    from gankit.visualize import to_unit_range

    run = build_run(resolve_config(tiny(tmp_path, "stylegan")), run_dir=tmp_path, write_config=False)
    G = run.trainer.ema.model
    z = torch.randn(4, G.latent_dim, generator=torch.Generator().manual_seed(derive_seed(0, "eval")))
    with torch.no_grad():
        assert torch.equal(run.task.sampler(G, seed=0)(4), to_unit_range(G(z), G.output_range))  # strength 0
        for layer in G.modules():
            if isinstance(layer, NoiseInjection):
                layer.strength.data.fill_(0.5)
        assert not torch.equal(run.task.sampler(G, seed=0)(4), to_unit_range(G(z), G.output_range))
        assert torch.equal(run.task.sampler(G, seed=0)(4), run.task.sampler(G, seed=0)(4))  # seeded
        assert torch.equal(*[run.task.sample_sheet(G)[0] for _ in range(2)])  # grids: fixed noise


# ---------------------------------------------------------------- StyleGAN generator

def style_g(**options):
    torch.manual_seed(0)
    o = from_dict(StyleGANOptions, {**get_recipe("stylegan").tiny, **options})
    return StyleGenerator(16, 1, o)


def test_num_ws_and_that_each_w_reaches_its_layers():
    G = style_g().eval()
    assert G.num_ws == 6  # 4, 8, 16 px: two per resolution
    z = torch.randn(2, G.latent_dim)
    ws = G.mapping(z).unsqueeze(1).repeat(1, G.num_ws, 1)
    base = G.synthesis(ws)
    for i in range(G.num_ws):  # changing any one w changes the image
        other = ws.clone()
        other[:, i] = torch.randn_like(other[:, i])
        assert not torch.allclose(G.synthesis(other), base), f"w {i} is unused"


@pytest.mark.parametrize("style", ["modulated", "adain"])
def test_truncation_and_w_average(style):
    G = style_g(style=style)
    G.train()
    before = G.w_avg.clone()
    G(torch.randn(8, G.latent_dim))
    assert not torch.equal(G.w_avg, before)  # tracked in training
    G.eval()
    z = torch.randn(4, G.latent_dim)
    same = G(z, truncation_psi=0.0)
    assert torch.allclose(same, same[:1].expand_as(same), atol=1e-6)  # psi 0: all the average w
    assert torch.equal(G(z, truncation_psi=1.0), G(z))
    w = G.mapping(z)
    torch.testing.assert_close(G.truncate(w, 0.5), G.w_avg + 0.5 * (w - G.w_avg))


def test_style_mixing_happens_at_the_configured_rate():
    G = style_g(mixing_prob=1.0)
    G.train()
    calls = []
    original = G.mapping
    G.mapping = lambda z, labels=None: calls.append(1) or original(z, labels)
    G(torch.randn(2, G.latent_dim))
    assert len(calls) == 2  # always mixing: a second z is mapped
    G.mixing_prob, calls[:] = 0.0, []
    G(torch.randn(2, G.latent_dim))
    assert len(calls) == 1


def test_stylegan_trains_with_lazy_r1_and_samples_with_truncation(tmp_path):
    result = train(tiny(tmp_path, "stylegan", penalty_every=2, augment={"mode": "ada"}), steps=4, name="s")
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [("loss/r1" in r) for r in rows] == [True, False, True, False]  # steps 0 and 2 of 0..3
    G = load_generator(result.run_dir)
    z = torch.randn(3, G.latent_dim)
    assert G.module(z, truncation_psi=0.5).shape == (3, 1, 16, 16)
    torch.testing.assert_close(G.sample(3, seed=5), G.sample(3, seed=5))  # fixed noise when sampling


# ---------------------------------------------------------------- progressive growing

def test_schedule_stable_then_fade_then_stable():
    o = ProGANOptions(fade_kimg=1.0, stable_kimg=2.0)
    assert schedule(0, o, 3) == (0, 1.0) and schedule(1999, o, 3) == (0, 1.0)
    assert schedule(2000, o, 3) == (1, 0.0) and schedule(2500, o, 3) == (1, 0.5)
    assert schedule(3500, o, 3) == (1, 1.0)  # fade done, stable
    assert schedule(5000, o, 3) == (2, 0.0) and schedule(10**7, o, 3) == (2, 1.0)


def test_fade_in_starts_from_the_upsampled_previous_resolution():
    torch.manual_seed(0)
    o = from_dict(ProGANOptions, get_recipe("progan").tiny)
    G, D = ProGenerator(16, 1, o).eval(), ProDiscriminator(16, 1, o).eval()
    z = torch.randn(2, G.latent_dim)
    G.level.fill_(1), G.alpha.fill_(1.0)  # fully at 8x8
    at8 = G(z)
    assert at8.shape == (2, 1, 16, 16)
    assert torch.equal(at8, F.interpolate(F.avg_pool2d(at8, 2), scale_factor=2, mode="nearest"))  # 8x8 content
    G.level.fill_(2), G.alpha.fill_(0.0)  # the 16x16 block fading in at alpha 0
    torch.testing.assert_close(G(z), at8)
    G.alpha.fill_(0.5)
    assert not torch.allclose(G(z), at8)
    # D at 8x8 cannot see detail finer than 8x8
    D.level.fill_(1), D.alpha.fill_(1.0)
    images = torch.rand(2, 1, 16, 16)
    blurred = F.interpolate(F.avg_pool2d(images, 2), scale_factor=2, mode="nearest")
    torch.testing.assert_close(D(images), D(blurred))


def test_progan_grows_during_training_and_resumes_mid_phase_exactly(tmp_path):
    # tiny schedule: 20 images stable, then 20 fading per level; batch 8 -> a new phase every few steps
    # the phase of a step follows the images seen before it: step 4 starts at 24 images, mid-fade
    straight = train(tiny(tmp_path, "progan"), steps=10, name="straight")
    first = train(tiny(tmp_path, "progan"), steps=4, name="split")
    state = ckpt.load_checkpoint(first.run_dir)
    assert int(state["G"]["level"]) == 1 and 0.0 < float(state["G"]["alpha"]) < 1.0
    resumed = ckpt.load_checkpoint(train(resume=first.run_dir, steps=10).run_dir)
    full = ckpt.load_checkpoint(straight.run_dir)
    for key in ("G", "D", "G_ema", "opt_g", "opt_d", "rng"):
        assert_same_tensors(full[key], resumed[key], key)
    assert int(full["G"]["level"]) == 2  # growing into 16x16 by 72 images
    # the growing can be followed in the logs: the resolution and the fade's alpha of every row
    rows = [json.loads(line) for line in (straight.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["grow/resolution"] for r in rows][:1] == [4] and rows[-1]["grow/resolution"] == 16
    assert any(0.0 < r["grow/alpha"] < 1.0 for r in rows)


def test_during_a_fade_d_sees_the_reals_blended_as_the_reference_fades_them():
    """ProGAN's FadeLOD: at the new resolution r, reals = lerp(x_r, up(down2(x_r)), 1 - alpha),
    nearest-upsampled back to full size; untouched outside a fade or with fade_reals off."""
    o = from_dict(ProGANOptions, {**get_recipe("progan").tiny, "start_size": 4})
    G = ProGenerator(32, 1, o)
    images = torch.rand(3, 1, 32, 32)
    G.level.fill_(2), G.alpha.fill_(0.25)  # 16x16 fading in over 8x8
    x16 = F.avg_pool2d(images, 2)
    x8_up = F.interpolate(F.avg_pool2d(x16, 2), scale_factor=2, mode="nearest")
    expected = F.interpolate(0.25 * x16 + 0.75 * x8_up, scale_factor=2, mode="nearest")
    faded = G.reals_as_drawn(images)
    torch.testing.assert_close(faded, expected)
    torch.testing.assert_close(F.avg_pool2d(faded, 2), 0.25 * x16 + 0.75 * x8_up)  # what D pools to
    G.alpha.fill_(1.0)
    assert G.reals_as_drawn(images) is images  # stable phase: D's own pooling is enough
    G.alpha.fill_(0.25)
    G.options = from_dict(ProGANOptions, {**get_recipe("progan").tiny, "fade_reals": False})
    assert G.reals_as_drawn(images) is images


def test_a_new_phase_is_announced_at_each_fade_start_and_end_only():
    o = ProGANOptions(fade_kimg=1.0, stable_kimg=2.0)
    G = ProGenerator(16, 1, o)
    G.set_progress(0)
    changes = [seen for seen in range(0, 12000, 250) if G.set_progress(seen)]
    assert changes == [2000, 3000, 5000, 6000]  # 8x8 fades in, is in; 16x16 fades in, is in
    G.options = ProGANOptions(fade_kimg=1.0, stable_kimg=2.0, reset_optimizer=False)
    G.set_progress(0)
    assert not any(G.set_progress(seen) for seen in range(0, 12000, 250))


def test_progan_resets_adam_at_each_phase_and_adds_the_drift_term(tmp_path):
    """Tiny schedule, batch 8: 20 images stable, 20 fading per level -> phases begin before steps
    3 (24 images), 5 (40) and 8 (64); after 10 steps Adam has counted the 2 steps since the last
    reset. D's loss carries drift x E[D(real)^2]."""
    result = train(tiny(tmp_path, "progan"), steps=10, name="reset")
    state = ckpt.load_checkpoint(result.run_dir)
    steps = {int(v["step"]) for v in state["opt_g"]["state"].values()} | \
            {int(v["step"]) for v in state["opt_d"]["state"].values()}
    assert steps == {2}
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all(r["loss/drift"] >= 0 for r in rows) and state["config"]["drift"] == 0.001
    kept = train(tiny(tmp_path, "progan", model={**get_recipe("progan").tiny, "reset_optimizer": False}),
                 steps=10, name="kept")
    # without resets the layers used all along have counted every step
    assert max(int(v["step"]) for v in ckpt.load_checkpoint(kept.run_dir)["opt_g"]["state"].values()) == 10


def test_stylegan_outputs_through_tanh_by_default():
    """StyleGAN's default output is tanh (linear collapsed the CPU-sized digits runs: see
    StyleGANOptions.output); linear is the switch to the reference's."""
    options = get_recipe("stylegan").options({})
    assert options.output == "tanh" and get_recipe("progan").options({}).output == "linear"


@pytest.mark.parametrize("recipe", ["stylegan", "progan"])
def test_linear_outputs_as_the_references_and_old_runs_keep_their_tanh(tmp_path, recipe):
    """Linear outputs (ProGAN's default, StyleGAN's switch) let values beyond [-1, 1] reach the
    loss (display clips); a config saved before model.output existed loads with its tanh."""
    from gankit.config import upgrade_saved_config

    options = tiny(tmp_path, recipe)
    options["model"] = {**options.get("model", {}), "output": "linear"}
    result = train(options, steps=1, name="lin")
    G = load_generator(result.run_dir)
    assert G.config.model["output"] == "linear" and not G.module.tanh
    with torch.no_grad():
        for layer in G.module.to_rgb.modules():  # a large output weight: far beyond the range
            if hasattr(layer, "weight") and layer.weight is not None:
                layer.weight.mul_(100)
        raw = G.module(torch.randn(8, G.latent_dim))
    assert raw.abs().max() > 1.5  # not squashed
    assert 0.0 <= G.sample(4).min() and G.sample(4).max() <= 1.0  # pictures are clipped
    state = ckpt.load_checkpoint(result.run_dir)
    del state["config"]["model"]["output"]  # as a run saved before the option
    assert upgrade_saved_config(state["config"])["model"]["output"] == "tanh"
    old = tmp_path / "old.pt"
    torch.save(state, old)
    assert load_generator(old).module.tanh


# ---------------------------------------------------------------- path-length regularisation

def test_path_length_penalty_is_the_references_formula_on_a_linear_synthesis():
    """synthesis(ws) = A ws: J^T y = A^T y exactly, so the lengths and the running mean are known."""
    from gankit.losses.path_length import PathLengthPenalty

    class Linear(torch.nn.Module):
        num_ws, w_dim = 3, 4

        def __init__(self):
            super().__init__()
            self.A = torch.nn.Parameter(torch.randn(3 * 4, 2 * 5 * 5))

        def styles(self, z, labels=None):
            return z.view(-1, 3, 4)

        def synthesis(self, ws):
            return (ws.flatten(1) @ self.A).view(-1, 2, 5, 5)

    torch.manual_seed(0)
    G, pl = Linear(), PathLengthPenalty(decay=0.1)
    z = torch.randn(6, 12, requires_grad=True)
    pl.pl_mean.fill_(0.5)
    torch.manual_seed(1)
    penalty = pl(G, z, None)
    torch.manual_seed(1)
    y = torch.randn(6, 2, 5, 5) / 5.0  # the noise, scaled by 1/sqrt(H W)
    jty = (y.flatten(1) @ G.A.detach().T).view(6, 3, 4)
    lengths = jty.square().sum(2).mean(1).sqrt()
    mean = 0.5 + 0.1 * (lengths.mean() - 0.5)
    torch.testing.assert_close(penalty.detach(), (lengths - mean).square())
    torch.testing.assert_close(pl.pl_mean, mean)


def test_path_length_gradient_reaches_mapping_and_synthesis():
    from gankit.losses.path_length import PathLengthPenalty

    G = style_g(mixing_prob=0.0).train()
    PathLengthPenalty()(G, torch.randn(4, G.latent_dim), None).mean().backward()
    for part in (G.mapping_net, G.layers, G.to_rgb):
        grads = [p.grad for p in part.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), part.__class__.__name__


def test_stylegan_trains_with_lazy_path_length_and_resumes_it_exactly(tmp_path):
    """On every 4th step (0, 4, 8), pl_mean checkpointed: 6 steps + resume to 10 = 10 straight."""
    straight = train(tiny(tmp_path, "stylegan"), steps=10, name="straight")
    rows = [json.loads(line) for line in (straight.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [i for i, r in enumerate(rows) if "loss/pl" in r] == [0, 4, 8]
    full = ckpt.load_checkpoint(straight.run_dir)
    assert float(full["objective"]["pl_mean"]) > 0 and full["config"]["path_length"]["weight"] == 2.0
    first = train(tiny(tmp_path, "stylegan"), steps=6, name="split")
    resumed = ckpt.load_checkpoint(train(resume=first.run_dir, steps=10).run_dir)
    for key in ("G", "D", "G_ema", "opt_g", "opt_d", "objective"):
        assert_same_tensors(full[key], resumed[key], key)


def test_path_length_needs_a_style_generator(tmp_path):
    from gankit.errors import GankitError
    from gankit.resolve import resolve_config

    with pytest.raises(GankitError, match="needs a style-based G"):
        resolve_config(tiny(tmp_path, "dcgan", path_length={"weight": 2.0}))
    with pytest.raises(GankitError, match="every 0"):
        resolve_config(tiny(tmp_path, "stylegan", path_length={"every": 0}))


def test_d_downsamples_through_the_references_low_pass_filter():
    """Blur: the [1, 3, 3, 1] outer product / 64, zero-padded; a stride-2 step after it. D's blocks
    halve the size with it, and old runs ("pool") keep their 2x2 average."""
    from gankit.models.stylegan import ResidualBlock, StyleDiscriminator
    from gankit.nn.equalized import Blur

    x = torch.zeros(1, 2, 6, 6)
    x[0, 1, 2, 3] = 64.0  # an impulse: the output is the kernel itself
    out = Blur((2, 2))(x)
    assert out.shape == (1, 2, 7, 7) and out[0, 0].abs().sum() == 0
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    torch.testing.assert_close(out[0, 1, 1:5, 2:6], taps[:, None] * taps[None, :])
    flat = Blur((1, 1))(torch.ones(1, 1, 8, 8))
    assert torch.allclose(flat[0, 0, 1:-1, 1:-1], torch.ones(5, 5))  # a constant passes unchanged
    torch.manual_seed(0)
    for mode in ("blur", "pool"):
        block = ResidualBlock(3, 5, mode)
        assert block(torch.randn(2, 3, 16, 16)).shape == (2, 5, 8, 8)
    G = style_g()
    D = StyleDiscriminator(16, 1, from_dict(StyleGANOptions, get_recipe("stylegan").tiny))
    assert all(block.blur for block in D.blocks) and D(G(torch.randn(2, G.latent_dim))).shape == (2,)
