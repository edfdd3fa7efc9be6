"""Latent-space tools: slerp, interpolation paths, style mixing, truncation, progress GIFs."""

import pytest
import torch
from PIL import Image
from torch import nn

from gankit import latent
from gankit.api import LoadedGenerator
from gankit.errors import GankitError
from gankit.visualize import progress_gif, save_gif, save_grid

from helpers import run_cli as run

# --------------------------------------------------------------------------------------------
# Stand-ins: the StyleGAN-style interface (mapping, num_ws, synthesis, w_avg) and a plain G.


class StyleStandIn(nn.Module):
    """mapping: z -> tanh(linear) (non-linear, so z and w paths differ). synthesis: a fixed linear
    map per layer, summed: image = sum_l ws[:, l] @ A_l. Linear in each layer's w, so mixing and
    w interpolation can be checked exactly; small weights keep images inside output_range."""

    output_range = (-1.0, 1.0)

    def __init__(self, latent_dim=6, w_dim=5, num_ws=4, num_classes=0, size=4):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.latent_dim, self.w_dim, self.num_ws, self.num_classes = latent_dim, w_dim, num_ws, num_classes
        self.size = size
        self.map = nn.Linear(latent_dim, w_dim)
        self.embed = nn.Embedding(num_classes, w_dim) if num_classes else None
        self.register_buffer("A", torch.randn(num_ws, w_dim, size * size, generator=g) * 0.04)
        self.register_buffer("w_avg", torch.randn(w_dim, generator=g) * 0.3)

    def mapping(self, z, labels=None):
        h = self.map(z)
        if self.embed is not None:
            h = h + self.embed(labels)
        return torch.tanh(h)

    def synthesis(self, ws):
        assert ws.shape[1:] == (self.num_ws, self.w_dim)
        return torch.einsum("blw,lwp->bp", ws, self.A).view(-1, 1, self.size, self.size)

    def forward(self, z, labels=None, truncation_psi=1.0):
        w = self.mapping(z, labels)
        w = self.w_avg + truncation_psi * (w - self.w_avg)
        return self.synthesis(w.unsqueeze(1).repeat(1, self.num_ws, 1))


class PlainStandIn(nn.Module):
    """G(z) = z as a (1, 2, 2) image, in a range wide enough never to clip: frames reveal z."""

    output_range = (-10.0, 10.0)
    latent_dim, num_classes = 4, 0

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, z, labels=None):
        return z.view(-1, 1, 2, 2) + self.dummy


def unit(images, G):
    low, high = G.output_range
    return (images - low) / (high - low)


def latents_of(frames):  # PlainStandIn frames back to z
    return frames.flatten(1) * 20.0 - 10.0


# --------------------------------------------------------------------------------------------
# slerp / lerp


def test_lerp_and_slerp_endpoints():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 8, generator=g), torch.randn(3, 8, generator=g)
    for f in (latent.lerp, latent.slerp):
        assert torch.allclose(f(a, b, 0.0), a, atol=1e-6)
        assert torch.allclose(f(a, b, 1.0), b, atol=1e-6)
    assert torch.allclose(latent.lerp(a, b, 0.25), 0.75 * a + 0.25 * b)


def test_slerp_keeps_the_norm_of_orthogonal_unit_vectors():
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    t = torch.linspace(0, 1, 11).unsqueeze(1)
    path = latent.slerp(a.unsqueeze(0), b.unsqueeze(0), t)  # (11, 3)
    assert torch.allclose(path.norm(dim=1), torch.ones(11), atol=1e-6)
    assert torch.allclose(path[5], torch.tensor([0.5 ** 0.5, 0.5 ** 0.5, 0.0]), atol=1e-6)
    assert latent.lerp(a, b, 0.5).norm() < 0.71  # what slerp avoids


def test_slerp_falls_back_to_lerp_for_parallel_vectors():
    a = torch.tensor([1.0, 2.0, 3.0])
    out = latent.slerp(a, 2 * a, 0.5)
    assert torch.isfinite(out).all() and torch.allclose(out, 1.5 * a)


# --------------------------------------------------------------------------------------------
# Interpolation paths


def test_loop_path_passes_through_the_keys_and_returns_to_the_first():
    keys = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    path = latent.loop_path(keys, 4, latent.slerp)
    assert path.shape == (12, 5)
    assert torch.allclose(path[::4], keys, atol=1e-6)
    # the step after the last frame is key 0: the animation loops without a seam
    after_last = latent.slerp(keys[2:3], keys[0:1], torch.tensor([[1.0]]))
    assert torch.allclose(after_last[0], path[0], atol=1e-5)


def test_z_path_is_a_slerp_of_the_keyframes_and_loops():
    G = PlainStandIn()
    frames = latent.interpolation_path(G, n_keyframes=3, frames_per_segment=4, seed=0)
    assert frames.shape == (12, 1, 2, 2) and 0 <= frames.min() and frames.max() <= 1
    z = latents_of(frames)
    keys = z[::4]
    assert torch.allclose(z[2], latent.slerp(keys[0], keys[1], 0.5), atol=1e-4)
    assert torch.allclose(z[10], latent.slerp(keys[2], keys[0], 0.5), atol=1e-4)  # back towards the start
    assert torch.equal(frames, latent.interpolation_path(G, 3, 4, seed=0))  # same seed, same walk
    assert not torch.equal(frames, latent.interpolation_path(G, 3, 4, seed=1))


def test_w_path_is_synthesis_of_lerped_w():
    G = StyleStandIn()
    frames = latent.interpolation_path(G, n_keyframes=3, frames_per_segment=4, seed=0, space="w")
    assert frames.shape == (12, 1, 4, 4)
    assert torch.equal(frames, latent.interpolation_path(G, 3, 4, seed=0))  # auto = w for style G
    # synthesis is linear in w, so frames along a lerp in w are lerps of the keyframe images
    for k in range(3):
        start, end = frames[4 * k], frames[4 * ((k + 1) % 3)]
        for i in range(4):
            assert torch.allclose(frames[4 * k + i], torch.lerp(start, end, i / 4), atol=1e-5)
    # in z the mapping is non-linear, so the z walk is not a straight line in image space
    z_frames = latent.interpolation_path(G, 3, 4, seed=0, space="z")
    assert torch.allclose(z_frames[::4], frames[::4], atol=1e-6)
    assert not torch.allclose(z_frames[2], torch.lerp(frames[0], frames[4], 0.5), atol=1e-4)


def test_w_path_with_truncation_zero_is_the_average_image():
    G = StyleStandIn()
    frames = latent.interpolation_path(G, 2, 3, seed=0, psi=0.0)
    average = unit(G.synthesis(G.w_avg.expand(1, G.num_ws, -1)), G)
    assert torch.allclose(frames, average.expand_as(frames), atol=1e-6)


def test_conditional_path_holds_class_zero_by_default():
    G = StyleStandIn(num_classes=3)
    default = latent.interpolation_path(G, 2, 2, seed=0)
    assert torch.equal(default, latent.interpolation_path(G, 2, 2, seed=0, label=0))
    assert not torch.allclose(default, latent.interpolation_path(G, 2, 2, seed=0, label=2))


@pytest.mark.parametrize("kwargs, expected", [
    ({"n_keyframes": 1}, "--keyframes 1"),
    ({"frames_per_segment": 0}, "--frames 0"),
    ({"space": "x"}, "--space x"),
    ({"space": "w"}, "--space w needs a StyleGAN-style generator"),
    ({"psi": 0.7}, "truncation needs a StyleGAN-style generator"),
])
def test_path_errors_say_what_to_do(kwargs, expected):
    with pytest.raises(GankitError, match=expected):
        latent.interpolation_path(PlainStandIn(), **kwargs)


# --------------------------------------------------------------------------------------------
# Style mixing


def test_mixing_grid_cells_take_coarse_styles_from_rows_and_fine_from_columns():
    G = StyleStandIn()
    rows, cols, crossover = 2, 3, 1
    images = latent.style_mix_grid(G, rows, cols, seed=0, crossover=crossover)
    assert images.shape == ((rows + 1) * (cols + 1), 1, 4, 4)
    grid = images.view(rows + 1, cols + 1, 1, 4, 4)
    assert torch.equal(grid[0, 0], torch.ones(1, 4, 4))  # the blank corner

    z = torch.randn(rows + cols, G.latent_dim, generator=torch.Generator().manual_seed(0))
    w = G.mapping(z)
    ws = w.unsqueeze(1).repeat(1, G.num_ws, 1)  # (rows + cols, num_ws, w_dim)
    sources = unit(G.synthesis(ws), G)
    assert torch.allclose(grid[1:, 0], sources[:rows], atol=1e-6)  # left column: row sources
    assert torch.allclose(grid[0, 1:], sources[rows:], atol=1e-6)  # top row: column sources
    for i in range(rows):
        for j in range(cols):
            mixed = torch.cat([ws[i, :crossover], ws[rows + j, crossover:]]).unsqueeze(0)
            assert torch.allclose(grid[1 + i, 1 + j], unit(G.synthesis(mixed), G)[0], atol=1e-6)


def test_mixing_crossover_extremes_give_the_sources():
    G = StyleStandIn()
    none_from_rows = latent.style_mix_grid(G, 2, 2, crossover=0).view(3, 3, 1, 4, 4)
    all_from_rows = latent.style_mix_grid(G, 2, 2, crossover=G.num_ws).view(3, 3, 1, 4, 4)
    for i in range(2):
        for j in range(2):
            assert torch.allclose(none_from_rows[1 + i, 1 + j], none_from_rows[0, 1 + j], atol=1e-6)
            assert torch.allclose(all_from_rows[1 + i, 1 + j], all_from_rows[1 + i, 0], atol=1e-6)
    default = latent.style_mix_grid(G, 2, 2)
    assert torch.equal(default, latent.style_mix_grid(G, 2, 2, crossover=G.num_ws // 2))


def test_mixing_takes_row_and_column_sources_from_given_styles():
    """Per-layer styles given for the rows (a projected photo's, say) replace the random row
    sources and set the number of rows; the columns stay the seed's; truncation pulls the given
    styles towards w_avg like the drawn ones."""
    G = StyleStandIn()
    given = torch.randn(3, G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(5)) * 0.5
    grid = latent.style_mix_grid(G, rows=9, cols=2, seed=0, crossover=2, row_ws=given).view(4, 3, 1, 4, 4)
    random_cols = latent.style_mix_grid(G, rows=3, cols=2, seed=0, crossover=2).view(4, 3, 1, 4, 4)
    assert torch.equal(grid[0], random_cols[0])  # the column sources: the seed's, as before
    assert torch.allclose(grid[1:, 0], unit(G.synthesis(given), G), atol=1e-6)
    z = torch.randn(3 + 2, G.latent_dim, generator=torch.Generator().manual_seed(0))
    col_ws = G.mapping(z)[3:].unsqueeze(1).repeat(1, G.num_ws, 1)
    for i in range(3):
        for j in range(2):
            mixed = torch.cat([given[i, :2], col_ws[j, 2:]]).unsqueeze(0)
            assert torch.allclose(grid[1 + i, 1 + j], unit(G.synthesis(mixed), G)[0], atol=1e-6)
    both = latent.style_mix_grid(G, crossover=2, psi=0.5, row_ws=given[:1], col_ws=given[1:]).view(2, 3, 1, 4, 4)
    pulled = torch.lerp(G.w_avg, given, 0.5)
    assert torch.allclose(both[1, 1:], unit(G.synthesis(torch.cat([pulled[:1, :2].expand(2, -1, -1), pulled[1:, 2:]], 1)), G),
                          atol=1e-6)
    with pytest.raises(GankitError, match=r"row latents have shape \(3, 5\)"):
        latent.style_mix_grid(G, row_ws=given[:, 0])


def test_mixing_errors():
    with pytest.raises(GankitError, match="style mixing needs a StyleGAN-style generator"):
        latent.style_mix_grid(PlainStandIn())
    with pytest.raises(GankitError, match="--crossover 5: use 0..4"):
        latent.style_mix_grid(StyleStandIn(), crossover=5)


# --------------------------------------------------------------------------------------------
# Truncation


def test_truncation_zero_gives_the_average_and_one_the_plain_samples():
    G = StyleStandIn()
    average = latent.truncated_sample(G, 5, psi=0.0, seed=0)
    assert torch.allclose(average, average[:1].expand_as(average), atol=1e-6)
    assert torch.allclose(average[0], unit(G.synthesis(G.w_avg.expand(1, G.num_ws, -1)), G)[0], atol=1e-6)

    z = torch.randn(5, G.latent_dim, generator=torch.Generator().manual_seed(0))
    plain = unit(G(z), G)
    assert torch.equal(latent.truncated_sample(G, 5, psi=1.0, seed=0), plain)
    half = latent.truncated_sample(G, 5, psi=0.5, seed=0)
    assert torch.allclose(half, unit(G(z, truncation_psi=0.5), G), atol=1e-6)  # agrees with G's own
    # linear synthesis: psi 0.5 lands half-way between the plain image and the average one
    assert torch.allclose(half, (plain + average) / 2, atol=1e-6)


def test_loaded_generator_truncation_and_wrappers():
    style = LoadedGenerator(StyleStandIn().eval(), config=None, step=0, device=torch.device("cpu"))
    assert style.is_style
    assert torch.allclose(style.sample(4, seed=3, truncation=0.0)[0], style.sample(4, seed=9, truncation=0.0)[3])
    assert torch.equal(style.sample(4, seed=3), latent.truncated_sample(style.module, 4, seed=3))
    assert style.interpolate(2, 3).shape == (6, 1, 4, 4)
    assert style.style_mix(1, 2).shape == (6, 1, 4, 4)

    plain = LoadedGenerator(PlainStandIn(), config=None, step=0, device=torch.device("cpu"))
    assert not plain.is_style and plain.sample(2, truncation=1.0).shape == (2, 1, 2, 2)
    with pytest.raises(GankitError, match="truncation needs a StyleGAN-style generator"):
        plain.sample(2, truncation=0.7)
    with pytest.raises(GankitError, match="--truncation 7: use a psi from -1 to 2"):
        style.sample(2, truncation=7)


# --------------------------------------------------------------------------------------------
# GIFs


def gif_frames(path):
    with Image.open(path) as gif:
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(gif.convert("L").copy())
        return frames


def test_save_gif_writes_every_frame(tmp_path):
    frames = torch.linspace(0, 1, 5).view(5, 1, 1, 1).expand(5, 1, 6, 6)
    path = save_gif(frames, tmp_path / "a.gif", duration=50)
    got = gif_frames(path)
    assert len(got) == 5 and got[0].size == (6, 6)
    assert [g.getpixel((0, 0)) for g in got] == [0, 64, 128, 191, 255]
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically, nothing left behind


def write_grids(run_dir, steps):
    for step in steps:  # one grey level per step, so the frame order can be read back
        save_grid(torch.full((4, 1, 4, 4), step / 100), run_dir / "samples" / f"step-{step:08d}.png", nrow=2)


def test_progress_gif_has_one_frame_per_grid_in_step_order(tmp_path):
    run_dir = tmp_path / "run"
    write_grids(run_dir, [30, 10, 20, 5])
    (run_dir / "samples" / "notes.png").write_bytes(b"")  # not a step grid: ignored
    steps = progress_gif(run_dir, tmp_path / "p.gif", label_steps=False)
    assert steps == [5, 10, 20, 30]
    frames = gif_frames(tmp_path / "p.gif")
    assert [f.getpixel((5, 5)) for f in frames] == [round(s / 100 * 255) for s in steps]

    assert progress_gif(run_dir, tmp_path / "every.gif", every=3) == [5, 30]  # keeps the last
    stamped = gif_frames(tmp_path / "every.gif")
    assert len(stamped) == 2 and stamped[0].size[1] > frames[0].size[1]  # a strip for the step


def test_progress_gif_without_grids_says_what_to_do(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(GankitError, match="train longer or lower --sample-every"):
        progress_gif(tmp_path / "run", tmp_path / "p.gif")


# --------------------------------------------------------------------------------------------
# Command line, on a tiny real (DCGAN, non-style) run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from gankit import train

    runs = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANKIT_CACHE", str(runs / "cache"))
        train({"data": {"source": "digits", "size": 16, "limit": 64}, "model": {"latent_dim": 8, "width": 8},
               "batch": 8, "sample_every": 2, "progress": False, "runs_dir": str(runs), "name": "t"}, steps=4)
    return runs / "t"


def test_cli_progress_and_interpolate(tiny_run, tmp_path, capsys):
    code, out, err = run(["progress", tiny_run, "--out", tmp_path / "p.gif"], capsys)
    assert code == 0, err
    assert "2 frames (steps 2 to 4)" in out and len(gif_frames(tmp_path / "p.gif")) == 2

    code, out, err = run(["interpolate", tiny_run, "--out", tmp_path / "walk.gif", "--keyframes", 2,
                          "--frames", 3], capsys)
    assert code == 0, err
    walk = gif_frames(tmp_path / "walk.gif")
    assert len(walk) == 6 and walk[0].size == (16, 16)
    code, _, err = run(["interpolate", tiny_run, "--out", tmp_path / "frames", "--keyframes", 2,
                        "--frames", 2], capsys)
    assert code == 0, err
    assert len(list((tmp_path / "frames").glob("frame-*.png"))) == 4


@pytest.mark.parametrize("args, expected", [
    (["mix", "{run}", "--out", "{tmp}/g.png"], "style mixing needs a StyleGAN-style generator"),
    (["sample", "{run}", "--out", "{tmp}/s.png", "--truncation", "0.7"], "truncation needs a StyleGAN-style"),
    (["interpolate", "{run}", "--out", "{tmp}/x.avi"], "unknown suffix '.avi'"),
    (["interpolate", "{run}", "--out", "{tmp}/x.gif", "--keyframes", "1"], "--keyframes 1"),
    (["progress", "{tmp}/nowhere", "--out", "{tmp}/p.gif"], "does not exist"),
    (["progress", "{run}", "--out", "{tmp}/p.png"], "ending in .gif"),
])
def test_cli_errors_are_one_line(tiny_run, tmp_path, capsys, args, expected):
    argv = [a.format(run=tiny_run, tmp=tmp_path) for a in args]
    code, _, err = run(argv, capsys)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert expected in lines[0]
