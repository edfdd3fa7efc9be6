"""Augmentations (StyleGAN2-ADA's ops, DiffAugment, the keras example's) and their controllers.

The distributions are checked against the papers' definitions (Karras et al. 2020, appendix B;
Zhao et al. 2020; the keras-io example), with fixed seeds so the statistical tests are
deterministic.
"""

import contextlib
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch.overrides import TorchFunctionMode

from gankit import train
from gankit.augment import (PIPES, AdaController, AugmentPipe, DiffAugment, KerasAugment,
                            KerasController, build_augmentation, check_config, ops)
from gankit.augment import diffaugment
from gankit.augment.resample import reflect_index, warp, wavelet_lowpass
from gankit.config import AugmentConfig
from gankit.errors import GankitError
from gankit.training import checkpoint as ckpt

N = 20000  # draws per distribution test: a rate is then known to about +-0.01


def images(n=8, channels=3, size=16, value_range=(0.0, 1.0), seed=0):
    g = torch.Generator().manual_seed(seed)
    low, high = value_range
    return torch.rand(n, channels, size, size, generator=g) * (high - low) + low


def changed(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a != b).flatten(1).any(1)


def ks(sample: torch.Tensor, cdf) -> float:
    return stats.kstest(sample.double().numpy(), cdf).pvalue


# ------------------------------------------------------------------ each op's distribution


@pytest.fixture
def seeded():
    torch.manual_seed(1234)


def geometric(op, prob=1.0, size=(32, 32)):
    return op(N, prob, size, torch.device("cpu"))


def test_blit_ops_draw_the_references_discrete_distributions(seeded):
    flips = geometric(ops.xflip)[:, 0, 0]
    assert set(flips.tolist()) == {-1.0, 1.0} and abs((flips < 0).float().mean() - 0.5) < 0.015
    quarter = geometric(ops.rotate90)
    angles = torch.round(torch.atan2(quarter[:, 1, 0], quarter[:, 0, 0]) / (math.pi / 2)) % 4
    assert torch.allclose(torch.bincount(angles.long(), minlength=4).float() / N, torch.full((4,), 0.25), atol=0.015)
    shifts = -geometric(ops.xint, size=(32, 32))[:, :2, 2]  # whole pixels, uniform within 1/8
    assert torch.equal(shifts, shifts.round()) and shifts.abs().max() == 4
    # round(U(-4, 4)): -4 and 4 half as likely as the inner integers
    counts = torch.bincount((shifts[:, 0] + 4).long(), minlength=9).float() / N
    assert torch.allclose(counts, torch.tensor([0.5, 1, 1, 1, 1, 1, 1, 1, 0.5]) / 8, atol=0.012)


def test_general_geometry_draws_the_references_continuous_distributions(seeded):
    s = 1 / geometric(ops.scale)[:, 0, 0]  # isotropic: log2 s ~ N(0, 0.2^2)
    assert ks(torch.log2(s), stats.norm(0, 0.2).cdf) > 1e-3
    a = geometric(ops.aniso)  # x by 1/s, y by s: log2 s ~ N(0, 0.2^2), determinant 1
    assert torch.allclose(a[:, 0, 0] * a[:, 1, 1], torch.ones(N), atol=1e-5)
    assert ks(torch.log2(a[:, 1, 1]), stats.norm(0, 0.2).cdf) > 1e-3
    t = -geometric(ops.xfrac, size=(32, 32))[:, :2, 2] / 32  # N(0, 0.125^2) of the size, each axis
    assert ks(t[:, 0], stats.norm(0, 0.125).cdf) > 1e-3 and ks(t[:, 1], stats.norm(0, 0.125).cdf) > 1e-3
    r = geometric(ops.rotate, prob=0.999999)  # any angle, uniform
    theta = torch.atan2(r[:, 1, 0], r[:, 0, 0])
    assert ks(theta, stats.uniform(-math.pi, 2 * math.pi).cdf) > 1e-3


def test_colour_ops_draw_the_references_distributions(seeded):
    cpu = torch.device("cpu")
    b = ops.brightness(N, 1.0, 3, cpu)[:, 0, 3]  # N(0, 0.2^2), added to all channels
    assert ks(b, stats.norm(0, 0.2).cdf) > 1e-3
    c = ops.contrast(N, 1.0, 3, cpu)[:, 0, 0]  # log2 c ~ N(0, 0.5^2)
    assert ks(torch.log2(c), stats.norm(0, 0.5).cdf) > 1e-3
    flips = ops.lumaflip(N, 1.0, 3, cpu)  # I or the Householder reflection, 1/2 each
    grey = torch.tensor(ops.LUMA_AXIS)
    mirrored = (flips @ grey)[:, 0] < 0
    assert abs(mirrored.float().mean() - 0.5) < 0.015
    hue = ops.hue(N, 1.0, 3, cpu)  # a rotation about the grey axis by U(-pi, pi)
    assert torch.allclose(hue @ grey, grey.expand(N, 4), atol=1e-5)
    cos = (torch.diagonal(hue[:, :3, :3], dim1=1, dim2=2).sum(1) - 1) / 2
    assert ks(torch.acos(cos.clamp(-1, 1)), stats.uniform(0, math.pi).cdf) > 1e-3
    sat = ops.saturation(N, 1.0, 3, cpu)
    red = torch.tensor([1.0, 0, 0, 0])
    chroma = red - (red @ grey) * grey  # the part of red off the grey axis, scaled by s
    s = (sat @ chroma)[:, 0] / chroma[0]
    assert ks(torch.log2(s), stats.norm(0, 1.0).cdf) > 1e-3
    assert ops.hue(4, 1.0, 1, cpu) is None and ops.saturation(4, 1.0, 1, cpu) is None  # RGB only


def test_image_space_ops_draw_the_references_distributions(seeded):
    zeros = torch.zeros(4000, 1, 16, 16)
    sigma = ops.noise(zeros, 1.0).flatten(1).std(1)  # per image |N(0, 0.1^2)|
    assert ks(sigma, stats.halfnorm(0, 0.1).cdf) > 1e-3
    cut = ops.cutout(torch.ones(4000, 1, 16, 16), 1.0)
    assert set(cut.unique().tolist()) <= {0.0, 1.0}
    # a half-side square centred uniformly: 1/4 of the image when it lies inside, less at the
    # edges; per axis E|[c - 1/4, c + 1/4] & [0, 1]| = 1/2 - 2 * (1/4)^2 / 2 = 7/16
    share = (cut == 0).flatten(1).float().mean(1)
    assert share.max() == pytest.approx(0.25) and abs(share.mean() - (7 / 16) ** 2) < 0.005
    # the filter bank splits the spectrum: all gains 1 is the identity; the bands add to an impulse
    bank = ops._filter_bank("cpu")
    impulse = torch.zeros(bank.shape[1])
    impulse[bank.shape[1] // 2] = 1
    assert torch.allclose(bank.sum(0), impulse, atol=1e-6)
    x = images(channels=3)
    assert torch.allclose(ops.imgfilter(x, 0.0), x, atol=1e-6)


# the share of samples an op changes at prob q, when it fires with probability q
FIRES = {
    "xflip": lambda q: q / 2,  # once chosen, flipped with probability 1/2
    "rotate90": lambda q: q * 3 / 4,  # 0 of 4 quarter turns leaves the image
    "xint": lambda q: q * (1 - (1 / 4) ** 2),  # at 16 px each shift is round(U(-2, 2)): 0 w.p. 1/4
    "scale": lambda q: q, "aniso": lambda q: q, "xfrac": lambda q: q,
    "rotate": lambda q: q,  # twice, 1 - sqrt(1 - q) each: at least once with probability q
    "brightness": lambda q: q, "contrast": lambda q: q, "lumaflip": lambda q: q / 2, "hue": lambda q: q,
    "saturation": lambda q: q, "imgfilter": lambda q: 1 - (1 - q) ** 4,  # four bands, each on its own
    "noise": lambda q: q, "cutout": lambda q: q,
}


@pytest.mark.parametrize("op", list(FIRES))
def test_every_op_fires_on_its_share_of_the_samples(op):
    torch.manual_seed(0)
    p = 0.3
    x = images(n=4000, channels=3, size=16)
    y = AugmentPipe({op: 1.0}, (0.0, 1.0), p=p)(x)
    moved = changed(x, y)
    assert abs(moved.float().mean() - FIRES[op](p)) < 0.025
    assert torch.equal(y[~moved], x[~moved])  # the others are passed through bit for bit
    assert y.shape == x.shape and y.dtype == x.dtype


def test_multipliers_scale_the_probability():
    torch.manual_seed(0)
    x = images(n=4000, channels=1, size=8)
    y = AugmentPipe({"brightness": 0.5}, (0.0, 1.0), p=0.8)(x)
    assert abs(changed(x, y).float().mean() - 0.4) < 0.025


# ------------------------------------------------------------------ properties of the paper


def test_colour_ops_lose_no_information_and_nothing_is_clamped():
    """Brightness and contrast must stay invertible (the non-leaking condition, section 2.2): a
    clamp would flatten the extremes, which digits are mostly made of."""
    torch.manual_seed(0)
    x = images(n=64, channels=3, size=8)
    x[:, :, :4] = 0.0  # black and white areas, as in digits
    x[:, :, 4:6] = 1.0
    y = AugmentPipe(PIPES["color"], (0.0, 1.0), p=1.0)(x)
    assert y.max() > 1.0 and y.min() < 0.0  # not clamped
    for a, b in zip(x, y):  # each sample: one affine colour map, recovered from its pixels
        pixels = torch.cat([a.flatten(1), torch.ones(1, 64)]).double()  # (4, HW)
        fit = torch.linalg.lstsq(pixels.T, b.flatten(1).T.double()).solution.T  # (3, 4): y = M x + t
        assert torch.allclose(fit @ pixels, b.flatten(1).double(), atol=1e-4)
        restored = torch.linalg.solve(fit[:, :3], b.flatten(1).double() - fit[:, 3:])
        assert torch.allclose(restored, a.flatten(1).double(), atol=1e-4)


@pytest.mark.parametrize("p", [0.5, 0.79])
def test_the_untransformed_view_stays_the_likeliest_below_p_0_8(p):
    """The non-leaking condition for the discrete ops: x-flips and quarter turns together make 8
    views of an image; the original must stay the most frequent one, or G would learn to draw
    the others (Karras et al. 2020, fig. 3)."""
    torch.manual_seed(0)
    blit = ops.xflip(N, p, (8, 8), "cpu") @ ops.rotate90(N, p, (8, 8), "cpu")
    views = torch.round(blit[:, :2, :2]).flatten(1).long() + 1  # entries in {-1, 0, 1} -> {0, 1, 2}
    codes = (views * torch.tensor([27, 9, 3, 1])).sum(1)
    counts = torch.bincount(codes, minlength=81)
    identity = 27 * 2 + 9 * 1 + 3 * 1 + 2
    assert counts.nonzero().numel() == 8 and counts.argmax() == identity
    luma = ops.lumaflip(N, p, 3, "cpu")[:, 0, 0]
    assert (luma == 1).sum() > (luma != 1).sum()  # unflipped colours stay the likelier


def test_p_zero_is_the_identity_and_draws_no_randomness():
    for mode in ("ada", "fixed", "none"):
        pipe, _ = build_augmentation(AugmentConfig(mode=mode, p=0.0), (0.0, 1.0))
        x = images()
        state = torch.get_rng_state()
        assert pipe(x) is x
        assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("value_range", [(0.0, 1.0), (-1.0, 1.0)])
@pytest.mark.parametrize("pipe", ["bgc", "bgcfnc"])
def test_pipelines_are_differentiable_and_keep_shape_dtype_and_layout(pipe, value_range):
    torch.manual_seed(0)
    augment = AugmentPipe(PIPES[pipe], value_range, p=0.8)
    x = images(value_range=value_range).contiguous(memory_format=torch.channels_last).requires_grad_()
    y = augment(x)
    assert y.shape == x.shape and y.is_contiguous(memory_format=torch.channels_last)
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with torch.autocast("cpu", dtype=torch.bfloat16):  # fp32 inside, the input's dtype back
        assert augment(x.detach().to(torch.bfloat16)).dtype == torch.bfloat16


def test_colour_constants_follow_the_models_value_range():
    """The ops are defined on [-1, 1]; on a [0, 1] model the same draws make the same image."""
    x = images(n=16, channels=3)
    torch.manual_seed(5)
    unit = AugmentPipe(PIPES["bgcfnc"], (0.0, 1.0), p=0.7)(x)
    torch.manual_seed(5)
    symmetric = AugmentPipe(PIPES["bgcfnc"], (-1.0, 1.0), p=0.7)(x * 2 - 1)
    assert torch.allclose(unit * 2 - 1, symmetric, atol=1e-5)


# ------------------------------------------------------------------ resampling


def test_warp_identity_and_whole_pixel_maps_are_exact():
    x = images(n=2, size=16)
    eye = torch.eye(3).repeat(2, 1, 1)
    for antialias in (True, False):
        assert torch.allclose(warp(x, eye, antialias), x, atol=2e-6)
        shift = eye.clone()
        shift[:, 0, 2] = 40  # read 40 pixels to the right: reflected (d c b | a b c d | c b a) twice over
        expected = x[..., reflect_index(torch.arange(16) + 40, 16)]
        assert torch.allclose(warp(x, shift, antialias), expected, atol=2e-6)


def _reference_style_warp(x, inverse, pad):
    """StyleGAN2-ADA's construction written from its definition: reflect-pad by `pad`, upsample 2x
    (zeros between samples, filter with gain 2), sample bilinearly on a 2x grid over the image plus
    3 pixels each side, filter and keep every second sample. Slow (explicit convolutions)."""
    f = torch.tensor(wavelet_lowpass("sym6"), dtype=torch.float64)
    n, c, h, w = x.shape
    padded = F.pad(x.double(), [pad] * 4, mode="reflect")
    ph = padded.shape[-1]
    up = torch.zeros(n, c, 2 * ph, 2 * ph, dtype=torch.float64)
    up[..., ::2, ::2] = padded
    kernel = (2 * f).flip(0)  # convolution = correlation with the flipped filter
    planes = F.pad(up.reshape(-1, 1, 2 * ph, 2 * ph), [6, 5, 6, 5])
    planes = F.conv2d(F.conv2d(planes, kernel.view(1, 1, 1, -1)), kernel.view(1, 1, -1, 1))
    big = planes.reshape(n, c, 2 * ph, 2 * ph)  # sample i of `padded` sits at 2i + 1/2
    out = 2 * (h + 6)
    v = torch.arange(out, dtype=torch.float64) - (out - 1) / 2  # output, 2x units from the centre
    pts = torch.stack([v.view(1, -1).expand(out, -1), v.view(-1, 1).expand(-1, out), torch.ones(out, out,
                       dtype=torch.float64)], -1)
    q = (pts[..., :2] + 0.5) / 2  # the reference's half-pixel conjugation of the map
    src = torch.einsum("bij,hwj->bhwi", inverse.double(), torch.cat([q, pts[..., 2:]], -1))[..., :2] * 2 - 0.5
    index = src / 2 + (h - 1) / 2 + pad  # -> pixel index in `padded`
    grid = (4 * index + 2) / (2 * ph) - 1
    sampled = F.grid_sample(big, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    planes = sampled.reshape(-1, 1, out, out)[..., 1:, 1:]
    planes = F.conv2d(planes, f.view(1, 1, 1, -1), stride=(1, 2))[..., :w]
    planes = F.conv2d(planes, f.view(1, 1, -1, 1), stride=(2, 1))[..., :h, :]
    return planes.reshape(n, c, h, w)


def test_warp_equals_the_references_padded_construction():
    """The periodic construction in resample.py is the reference's, with padding that never runs
    out: for maps that stay within the padding the two agree to float precision."""
    x = images(n=3, channels=1, size=12)
    turn, zoom = torch.tensor([0.3, -1.1, 2.0]), torch.tensor([1.1, 0.8, 0.7])
    inverse = ops.rotate2d(turn) @ ops.scale2d(zoom, zoom * 0.9) @ ops.translate2d(
        torch.tensor([1.3, -0.4, 0.0]), torch.tensor([-0.7, 2.2, 0.5]))
    mine = warp(x, inverse)
    reference = _reference_style_warp(x, inverse, pad=11)  # the reference's largest padding: W - 1
    assert torch.allclose(mine.double(), reference, atol=1e-5)


def test_warp_has_exact_second_derivatives_for_r1_through_it():
    """R1 through the augmentation differentiates D's input gradient again (double backward)."""
    x = images(n=1, channels=1, size=6).double().requires_grad_()
    inverse = ops.rotate2d(torch.tensor([0.4])) @ ops.scale2d(torch.tensor([1.2]), torch.tensor([0.9]))
    assert torch.autograd.gradgradcheck(lambda im: warp(im, inverse).square(), (x,))


def test_antialiasing_suppresses_aliasing_when_zooming_out():
    """Stripes near the Nyquist frequency, shrunk 1.7x, are finer than the output can hold: an
    ideal resampler removes them; plain bilinear sampling folds them into coarse false stripes."""
    cols = torch.arange(32).view(1, -1).expand(32, -1).float()
    stripes = torch.cos(math.pi * 0.9 * cols).view(1, 1, 32, 32)  # 0.9 of Nyquist
    zoom_out = torch.diag(torch.tensor([1.7, 1.0, 1.0])).unsqueeze(0)
    aliased = warp(stripes, zoom_out, antialias=False)[..., 8:24].std()
    filtered = warp(stripes, zoom_out, antialias=True)[..., 8:24].std()
    assert aliased > 0.3 and filtered < 0.15 * aliased


# ------------------------------------------------------------------ no host-device sync


class HostReads(TorchFunctionMode):
    """Records every call that reads a tensor's value back to the host, or copies host values to
    the device (a pageable copy: both synchronise with a GPU). On the CPU they cost nothing, so
    they are caught by name: tensors made from host data, a Python number written into a tensor,
    a move to a device."""

    READS = {"item", "__bool__", "__float__", "__int__", "__index__", "tolist", "nonzero",
             "numpy", "masked_select", "unique", "argwhere"}
    WRITES = {"tensor", "as_tensor", "from_numpy"}

    def __init__(self):
        super().__init__()
        self.reads = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        boolean_index = name == "__getitem__" and any(
            isinstance(a, torch.Tensor) and a.dtype == torch.bool for a in _flatten(args[1:]))
        number_written = name == "__setitem__" and not isinstance(args[2], torch.Tensor)
        moved = name in ("to", "cuda") and any(isinstance(a, (torch.device, str)) for a in args[1:]) \
            or name == "to" and "device" in (kwargs or {})
        if name in self.READS or name in self.WRITES or boolean_index or number_written or moved:
            self.reads.append(name)
        return func(*args, **(kwargs or {}))


def _flatten(items):
    for item in items:
        if isinstance(item, (tuple, list)):
            yield from _flatten(item)
        else:
            yield item


def test_host_read_detector_sees_a_sync():
    with HostReads() as spy:
        float(torch.ones(1))
        torch.rand(4)[torch.rand(4) > 0.5]
        torch.tensor([1.0, 2.0], device="cpu")
        torch.eye(3)[0, 2] = 0.25
        torch.ones(2).to("cpu")
        torch.eye(3)[:2, 2].fill_(0.25)  # a kernel with the number as its argument: no copy
    assert spy.reads == ["__float__", "__getitem__", "tensor", "__setitem__", "to"]


@pytest.mark.parametrize("make", [
    lambda: AugmentPipe(PIPES["bgcfnc"], (0.0, 1.0), p=0.6),
    lambda: AugmentPipe(PIPES["bgc"], (0.0, 1.0), p=0.6, antialias=False),
    lambda: DiffAugment((0.0, 1.0)),
    lambda: KerasAugment((0.0, 1.0), p=0.6),
], ids=["bgcfnc", "bgc-plain", "diffaug", "keras"])
def test_no_pipeline_reads_a_tensor_back_to_the_host(make):
    pipe = make()
    x = images(channels=3).requires_grad_()
    pipe(x)  # warm the filter caches (built from constants, once)
    with HostReads() as spy:
        y = pipe(x)
        y.sum().backward()
    assert spy.reads == []


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (device check: benchmarks/device_check.sh)")
def test_no_pipeline_synchronises_the_gpu():
    x = images(n=16, channels=3, size=32).cuda().requires_grad_()
    pipes = [AugmentPipe(PIPES["bgcfnc"], (0.0, 1.0), p=0.6).cuda(), DiffAugment((0.0, 1.0)).cuda(),
             KerasAugment((0.0, 1.0), p=0.6).cuda()]
    for pipe in pipes:
        pipe(x)  # caches
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for pipe in pipes:
            pipe(x).sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")


# ------------------------------------------------------------------ DiffAugment


def test_diffaugment_colour_matches_its_definition():
    torch.manual_seed(0)
    x = images(n=N // 4, channels=3, size=4, value_range=(-1, 1))
    torch.manual_seed(1)
    shifted = diffaugment.brightness(x)
    delta = (shifted - x).flatten(1)
    assert torch.allclose(delta, delta[:, :1].expand_as(delta), atol=1e-6)  # one shift per image
    assert ks(delta[:, 0], stats.uniform(-0.5, 1.0).cdf) > 1e-3
    factor = ((diffaugment.contrast(x) - x.mean(dim=[1, 2, 3], keepdim=True))
              / (x - x.mean(dim=[1, 2, 3], keepdim=True))).flatten(1)[:, 0]
    assert ks(factor, stats.uniform(0.5, 1.0).cdf) > 1e-3
    channel_mean = x.mean(1, keepdim=True)
    factor = ((diffaugment.saturation(x) - channel_mean) / (x - channel_mean)).flatten(1)[:, 0]
    assert ks(factor, stats.uniform(0.0, 2.0).cdf) > 1e-3


def test_diffaugment_translation_and_cutout_match_their_definitions():
    torch.manual_seed(0)
    x = images(n=2000, channels=1, size=16, value_range=(0.5, 1.0))  # no zeros of its own
    moved = diffaugment.translation(x)
    # the content moves by whole pixels up to round(16 / 8) = 2; zeros come in from outside
    assert (moved == 0).any()
    shifts = set()
    for a, b in zip(x[:200], moved[:200]):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if torch.equal(F.pad(a, [2, 2, 2, 2])[:, 2 + dy:18 + dy, 2 + dx:18 + dx], b)]
        assert len(found) == 1
        shifts.add(found[0])
    assert len(shifts) == 25  # every shift in [-2, 2]^2 occurs
    cut = diffaugment.cutout(torch.ones(2000, 1, 16, 16))
    holes = (cut == 0).flatten(1).sum(1)
    assert holes.max() == 64 and holes.min() > 0  # an 8x8 square, clipped at the borders


def test_diffaugment_follows_its_policy_in_order_with_no_clamp():
    x = images(n=64, channels=3, size=16)
    torch.manual_seed(3)
    y = DiffAugment((0.0, 1.0), "translation")(x)
    assert ((y == 0.5) | torch.isin(y, x)).all()  # only moved pixels and middle grey (0 on [-1, 1])
    torch.manual_seed(3)
    full = DiffAugment((0.0, 1.0))(x)
    assert changed(x, full).all() and (full.max() > 1 or full.min() < 0)
    torch.manual_seed(3)  # the same draws, applied by hand in the policy's order
    by_hand = x * 2 - 1
    for fn in (diffaugment.brightness, diffaugment.saturation, diffaugment.contrast,
               diffaugment.translation, diffaugment.cutout):
        by_hand = fn(by_hand)
    assert torch.allclose(full, (by_hand + 1) / 2, atol=1e-6)


# ------------------------------------------------------------------ the keras example's pipeline


def test_keras_pipeline_augments_a_p_share_with_its_four_layers():
    torch.manual_seed(0)
    x = images(n=4000, channels=1, size=16)
    y = KerasAugment((0.0, 1.0), p=0.3)(x)
    moved = changed(x, y)
    assert abs(moved.float().mean() - 0.3) < 0.025 and torch.equal(y[~moved], x[~moved])
    # zoom in only (<= 25%) and reflection: values stay within the image's range (bilinear mixes)
    assert y.min() >= x.min() - 1e-6 and y.max() <= x.max() + 1e-6


# ------------------------------------------------------------------ controllers


def test_ada_controller_is_the_references():
    pipe = AugmentPipe(PIPES["bgc"], (0.0, 1.0), p=0.3)
    ada = AdaController(pipe, target=0.5, ada_kimg=0.5, interval=2)
    ada.observe(torch.tensor(0.9), images=50)
    ada.maybe_update(step=1)  # not an update step: nothing moves
    assert pipe.p_value == pytest.approx(0.3)
    ada.observe(torch.tensor(0.9), images=50)
    ada.maybe_update(step=2)  # r_t = 0.9 > 0.5: p += 100 / 500
    assert pipe.p_value == pytest.approx(0.5) and float(pipe.p) == pytest.approx(0.5)
    for step in (4, 6):
        ada.observe(torch.tensor(0.1), images=100)
        ada.maybe_update(step)
    assert pipe.p_value == pytest.approx(0.1)  # r_t = 0.1 < 0.5: down by 0.2 twice
    ada.observe(torch.tensor(0.5), images=100)
    ada.maybe_update(8)
    assert pipe.p_value == pytest.approx(0.1)  # exactly on target: a true sign, no move
    for step in range(10, 30, 2):
        ada.observe(torch.tensor(-1.0), images=100)
        ada.maybe_update(step)
    assert pipe.p_value == 0.0  # kept >= 0
    for step in range(30, 70, 2):
        ada.observe(torch.tensor(1.0), images=100)
        ada.maybe_update(step)
    assert pipe.p_value == pytest.approx(4.0)  # no cap by default (p > 1: every op always fires)
    capped = AdaController(pipe, 0.6, 0.5, 1, p_max=0.7)
    capped.observe(1.0, 100)
    capped.maybe_update(1)
    assert pipe.p_value == pytest.approx(0.7)


def test_keras_controller_is_the_examples():
    pipe = KerasAugment((0.0, 1.0), p=0.5)
    keras = KerasController(pipe, target=0.85, integration_steps=1000)
    keras.observe(torch.tensor(0.9), images=128)  # accuracy (1 + 0.9) / 2 = 0.95
    keras.maybe_update(step=1)  # every step: p += (0.95 - 0.85) / 1000
    assert pipe.p_value == pytest.approx(0.5001)
    keras.observe(torch.tensor(-1.0), images=128)
    keras.maybe_update(step=2)
    assert pipe.p_value == pytest.approx(0.5001 - 0.00085)
    pipe.set_p(0.9999)
    keras.observe(torch.tensor(1.0), images=128)
    keras.maybe_update(step=3)
    assert pipe.p_value == 1.0  # clipped to [0, 1]


def test_build_picks_each_pipelines_controller_and_target():
    pipe, controller = build_augmentation(AugmentConfig(), (0.0, 1.0))
    assert isinstance(pipe, AugmentPipe) and isinstance(controller, AdaController)
    assert controller.target == 0.6 and controller.ada_kimg == 500 and controller.interval == 4
    assert set(pipe.multipliers) == set(PIPES["bgc"]) and controller.p_max is None
    pipe, controller = build_augmentation(AugmentConfig(pipe="keras"), (0.0, 1.0))
    assert isinstance(pipe, KerasAugment) and isinstance(controller, KerasController)
    assert controller.target == 0.85 and controller.integration_steps == 1000
    pipe, controller = build_augmentation(AugmentConfig(mode="diffaug", policy="translation,cutout"), (0.0, 1.0))
    assert isinstance(pipe, DiffAugment) and controller is None and pipe.parts == ["translation", "cutout"]
    pipe, controller = build_augmentation(AugmentConfig(mode="fixed", p=0.4, ops={"cutout": 1}), (0.0, 1.0))
    assert controller is None and pipe.p_value == pytest.approx(0.4) and "cutout" in pipe.multipliers


def test_a_loaded_checkpoint_sets_the_pipelines_p():
    pipe = AugmentPipe(PIPES["bgc"], (0.0, 1.0), p=0.0)
    pipe.load_state_dict({"p": torch.tensor(0.37)})
    assert pipe.p_value == pytest.approx(0.37)


TINY = {"data": {"source": "digits", "size": 16}, "model": {"latent_dim": 8, "width": 8},
        "batch": 8, "progress": False, "grid_size": 4, "checkpoint_every": 5}


@pytest.mark.parametrize("augment", [
    # a fast controller, updated every 2 steps, with a target that makes p rise at once
    {"mode": "ada", "ada_kimg": 0.1, "interval": 2, "target": -0.99},
    {"mode": "ada", "pipe": "keras", "integration_steps": 10, "target": 0.01},
    {"mode": "diffaug"},
], ids=["ada-bgc", "ada-keras", "diffaug"])
def test_resume_restores_p_and_the_controller_exactly(tmp_path, augment):
    options = {**TINY, "runs_dir": str(tmp_path / "runs"), "augment": augment}
    straight = ckpt.load_checkpoint(train(options, steps=10, name="straight").run_dir)
    first = train(options, steps=5, name="split")  # stops between two controller updates
    mid = ckpt.load_checkpoint(first.run_dir)
    assert float(mid["augment"]["p"]) > 0
    if augment.get("interval"):
        assert mid["augment"]["controller"]["count"] == 8
    split = ckpt.load_checkpoint(train(resume=first.run_dir, steps=10).run_dir)
    assert torch.equal(straight["augment"]["p"], split["augment"]["p"])
    assert straight["augment"]["controller"] == split["augment"]["controller"]
    for key in straight["G_ema"]:
        assert torch.equal(straight["G_ema"][key], split["G_ema"][key]), key


# ------------------------------------------------------------------ R1 through the augmentation


def test_r1_differentiates_d_through_the_augmentation():
    """As StyleGAN2-ADA: the gradient of D(augment(x)) with respect to x, not to augment(x)."""
    from gankit.losses import PENALTIES
    from gankit.training.step import Objective, StepContext, discriminator_loss
    from gankit.losses import get_loss

    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.full((1, 1, 4, 4), 0.5))

        def forward(self, x, labels=None):
            return (x * self.w).flatten(1).sum(1, keepdim=True)

    G = torch.nn.Linear(1, 1)
    G.latent_dim = 1
    D = Linear()
    nets = StepContext(G=G, D=D, opt_g=torch.optim.SGD(G.parameters(), 0.1), opt_d=torch.optim.SGD(D.parameters(), 0.1),
                       objective=Objective(get_loss("nonsaturating"), penalty=PENALTIES.get("r1"), penalty_weight=1.0),
                       device=torch.device("cpu"), autocast=contextlib.nullcontext, augment=lambda x: 3 * x)
    real = torch.rand(5, 1, 4, 4)
    logits = nets.critic(real, None)
    _, stats_ = discriminator_loss(nets, logits, logits, real, real, None)
    # d/dx sum(w * 3x) = 3w: |3w|^2 = 9 * 16 * 0.25 (w.r.t. the augmented images it would be 4)
    assert float(stats_["loss/r1"]) == pytest.approx(36.0)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("options, message", [
    ({"pipe": "bgx"}, "unknown augmentation pipeline 'bgx'"),
    ({"ops": {"spin": 1}}, "unknown augmentation 'spin'"),
    ({"ops": {"cutout": -1}}, "must be a number >= 0"),
    ({"ops": {"cutout": float("nan")}}, "must be a number >= 0"),
    ({"ops": {"cutout": "abc"}}, "must be a number >= 0"),
    ({"p": -0.1}, "augment.p=-0.1 must be a probability"),
    ({"p": float("nan")}, "must be a probability"),
    ({"ada_kimg": 0}, "--ada-kimg 0 must be positive"),
    ({"ada_kimg": float("nan")}, "must be positive"),
    ({"interval": 0}, "--ada-interval 0"),
    ({"target": 1.5}, "--ada-target 1.5 must be in"),
    ({"pipe": "keras", "target": -0.2}, "D's accuracy on reals"),
    ({"pipe": "keras", "ops": {"xflip": 1}}, "the keras pipeline has none"),
    ({"policy": "color,rotate"}, "--diffaug-policy 'color,rotate'"),
    ({"policy": ""}, "--diffaug-policy ''"),
    ({"p_max": 0}, "augment.p_max=0"),
])
def test_bad_augmentation_options_name_the_fix(options, message):
    with pytest.raises(GankitError, match=message.replace("(", r"\(").replace("[", r"\[")):
        check_config(AugmentConfig(**options))


def test_bad_augmentation_options_fail_before_anything_is_written(tmp_path):
    base = {"data": {"source": "digits", "size": 16}, "steps": 1, "runs_dir": str(tmp_path / "runs")}
    with pytest.raises(GankitError, match="unknown augmentation 'spin'"):
        train(base, augment={"ops": {"spin": 1}})
    with pytest.raises(GankitError, match="no real/fake boundary"):
        train(base, loss="wasserstein", augment={"mode": "ada"})
    assert not (tmp_path / "runs").exists()


def test_saved_configs_with_old_augmentation_names_still_load():
    from gankit.config import TrainConfig, from_dict, upgrade_saved_config

    old = {"augment": {"mode": "ada", "speed_kimg": 128.0, "p_max": 0.7, "ops": {"zoom": 1, "translate": 0}}}
    config = from_dict(TrainConfig, upgrade_saved_config(old))
    assert config.augment.ada_kimg == 128.0 and config.augment.ops == {"scale": 1, "xint": 0}


# ------------------------------------------------------------------ deterministic resampling (GPU)


@pytest.mark.parametrize("padding, align_corners", [("border", True), ("reflection", False), ("reflection", True)])
def test_gather_sampling_is_grid_sample(padding, align_corners):
    """The gather version that deterministic GPU runs use (grid_sample's CUDA backward has no
    deterministic kernel) gives grid_sample's values and image gradients, far outside the image
    and on odd sizes included."""
    from gankit.augment.sampling import gather_sample

    torch.manual_seed(0)
    for h, w in [(8, 8), (5, 9), (1, 6)]:
        grid = torch.rand(3, 7, 6, 2) * 5 - 2.5
        x = torch.randn(3, 2, h, w, requires_grad=True)
        expected = F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=align_corners)
        got = gather_sample(x, grid, padding, align_corners)
        weights = torch.randn_like(got)
        (expected_grad,) = torch.autograd.grad((expected * weights).sum(), x)
        (got_grad,) = torch.autograd.grad((got * weights).sum(), x)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(got_grad, expected_grad, atol=1e-5, rtol=0)


def test_deterministic_mode_is_set_for_a_gpu_run_and_undone_after():
    """What `deterministic: true` switches on for a CUDA run (flags only: this runs on any
    machine), and that a CPU run and the end of the run leave torch as they found it."""
    from gankit.training.device import reproducible

    assert not torch.are_deterministic_algorithms_enabled()
    with reproducible(torch.device("cpu"), True):
        assert not torch.are_deterministic_algorithms_enabled()
    with reproducible(torch.device("cuda"), False):
        assert not torch.are_deterministic_algorithms_enabled()
    with reproducible(torch.device("cuda"), True):
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        assert not torch.backends.cudnn.benchmark
    assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic


def test_r1_through_the_warp_works_where_torch_cannot_differentiate_grid_sample_twice(monkeypatch):
    """torch 2.11 has no derivative of grid_sample's backward (seen on the GPU machine's torch);
    there the warp resamples by gather, whose second derivatives are exact."""
    from gankit.augment import sampling

    monkeypatch.setattr(sampling, "grid_sample_has_double_backward", lambda: False)
    monkeypatch.setattr(F, "grid_sample", None)  # would raise if the warp still called it
    x = images(n=1, channels=1, size=6).double().requires_grad_()
    inverse = ops.rotate2d(torch.tensor([0.4])) @ ops.scale2d(torch.tensor([1.2]), torch.tensor([0.9]))
    for antialias in (True, False):
        assert torch.autograd.gradgradcheck(lambda im: warp(im, inverse, antialias).square(), (x,))


def test_gather_sampling_survives_non_finite_positions():
    """A NaN or infinite grid position is clipped, as grid_sample clips it, not turned into an
    out-of-range index (which on a GPU is a device-side assert that kills the process)."""
    from gankit.augment.sampling import gather_sample

    x = torch.rand(1, 1, 4, 4)
    grid = torch.tensor([[[[float("nan"), 0.0], [float("inf"), 0.0], [-float("inf"), 0.5]]]])
    for padding in ("border", "reflection"):
        out = gather_sample(x, grid, padding, align_corners=True)
        assert out.shape == (1, 1, 1, 3) and torch.isfinite(out).all()
