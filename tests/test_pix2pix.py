"""pix2pix through the one training loop: the U-Net and the conditional PatchGAN against the
reference's structure, paired data (side-by-side files, two folders, built-in pairs) with one
crop and flip per pair, the pix2pix update, exact resume, and `gankit translate train --paired`."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from gankit import load_translator, train
from gankit.config import DataConfig
from gankit.data.paired import PAIRED_DATASETS, PairedData, PairedStream, load_paired
from gankit.data.dataset import ImageData
from gankit.errors import GankitError
from gankit.models.pix2pix import ConditionalPatchDiscriminator, Pix2PixOptions, UNetGenerator, default_downs
from gankit.training import checkpoint as ckpt

from helpers import assert_same_tensors, metrics_rows, one_line_error, run_cli, tiny_options, with_overrides


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    pass


def tiny(tmp_path, **overrides):
    options = tiny_options(tmp_path / "runs", "pix2pix", data={"source": "digits-edges", "size": 16}, batch=2)
    return with_overrides(options, **overrides)


# ---------------------------------------------------------------- the networks

def unet_parameters(channels: int, ngf: int, downs: int) -> int:
    """The reference U-Net's parameter count from its definition (norm with scale and shift, no
    conv bias except the last transposed conv's): level i has inner width ngf * min(2^i, 8)."""
    widths = [ngf * min(2 ** i, 8) for i in range(downs)]
    total = 0
    for i, inner in enumerate(widths):
        outer = widths[i - 1] if i else channels
        total += outer * inner * 16  # down conv, 4x4
        total += (inner if i == downs - 1 else 2 * inner) * outer * 16  # up transposed conv
        if 0 < i < downs - 1:
            total += 2 * inner  # down norm
        total += 3 if i == 0 else 2 * outer  # the outermost up conv's bias, else the up norm
    return total


def test_networks_have_the_reference_shapes_and_sizes():
    """unet_256 and the 70x70 PatchGAN at 256 px: the reference prints 54.414 M and 2.769 M
    parameters for them; three dropout levels; D sees 70x70 patches of input and output."""
    o = Pix2PixOptions(norm="batch")
    with torch.device("meta"):
        G, D = UNetGenerator(256, 3, o), ConditionalPatchDiscriminator(256, 3, o)
    n_g, n_d = (sum(p.numel() for p in net.parameters()) for net in (G, D))
    assert n_g == unet_parameters(3, 64, 8) and f"{n_g / 1e6:.3f}" == "54.414"
    assert f"{n_d / 1e6:.3f}" == "2.769"
    assert G.downs == 8 and sum(isinstance(m, torch.nn.Dropout) for m in G.modules()) == 3
    assert D.patch.receptive_field == 70 and D.patch.channels == 6
    assert [default_downs(s) for s in (256, 128, 32, 16, 48, 512)] == [8, 7, 5, 4, 4, 8]
    with torch.device("meta"):
        small = UNetGenerator(32, 1, Pix2PixOptions())
    assert not any(isinstance(m, torch.nn.Dropout) for m in small.modules())  # no inner 8x levels at 5


def test_unet_skips_carry_the_input_and_every_output_pixel_sees_the_whole_image():
    torch.manual_seed(0)
    G = UNetGenerator(16, 1, Pix2PixOptions(g_width=4)).eval()
    x = torch.rand(1, 1, 16, 16, requires_grad=True)
    G(x)[0, 0, 0, 0].backward()
    assert (x.grad[0, 0] != 0).all()  # through the 1x1 bottleneck every input pixel matters
    # the outermost skip: an input pixel reaches its own output pixel more strongly than a far one
    x2 = torch.rand(1, 1, 16, 16, requires_grad=True)
    G(x2)[0, 0, 8, 8].backward()
    near, far = x2.grad[0, 0, 7:10, 7:10].abs().mean(), x2.grad[0, 0, :4, :4].abs().mean()
    assert near > far


def test_translation_does_not_depend_on_the_rest_of_the_batch():
    """Instance norm (the default, = the reference's batch norm at batch size 1) is per image."""
    torch.manual_seed(0)
    G = UNetGenerator(16, 3, Pix2PixOptions(g_width=4)).eval()
    x = torch.rand(5, 3, 16, 16) * 2 - 1
    alone = torch.cat([G(x[i:i + 1]) for i in range(5)])
    torch.testing.assert_close(G(x), alone, rtol=1e-5, atol=1e-5)
    D = ConditionalPatchDiscriminator(16, 3, Pix2PixOptions(d_width=4, d_layers=2))
    with pytest.raises(AssertionError, match="beside its input"):
        D(x)


# ---------------------------------------------------------------- paired data

def write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


def test_side_by_side_files_split_into_input_and_target(tmp_path):
    for i in range(3):
        pair = np.zeros((20, 40, 3))
        pair[:, :20] = (10 * i, 0, 0)  # A: red
        pair[:, 20:] = (0, 0, 200 + i)  # B: blue
        write(tmp_path / "train" / f"{i}.png", pair)
    (tmp_path / "train" / "broken.png").write_bytes(b"not an image")
    with pytest.warns(UserWarning, match="skipped 1 of 4 pairs"):
        data = load_paired(DataConfig(source=str(tmp_path / "train"), size=8))
    assert len(data) == 3 and data.channels == 3 and data.size == 8
    assert data.a.images[:, 0].float().mean() > 0 and data.a.images[:, 2].max() == 0
    assert data.b.images[:, 0].max() == 0 and data.b.images[:, 2].min() >= 200


def test_two_folders_pair_files_by_name(tmp_path):
    for i in range(3):
        write(tmp_path / "A" / f"x{i}.png", np.full((8, 8), 20 * i))
        write(tmp_path / "B" / f"x{i}.png", np.full((8, 8), 255 - 20 * i))
    data = load_paired(DataConfig(source=str(tmp_path / "A"), source_b=str(tmp_path / "B"), size=8))
    assert torch.equal(data.a.images.int() + data.b.images.int(), torch.full((3, 1, 8, 8), 255))
    write(tmp_path / "A" / "lonely.png", np.zeros((8, 8)))
    with pytest.raises(GankitError, match="1 of 4 inputs .* have no target of the same name .*lonely.png"):
        load_paired(DataConfig(source=str(tmp_path / "A"), source_b=str(tmp_path / "B"), size=8))


@pytest.mark.parametrize("source", sorted(PAIRED_DATASETS.names()))
def test_built_in_pairs_are_a_function_of_the_target(source):
    data = load_paired(DataConfig(source=source, size=16, limit=50))
    assert len(data) == 50 and data.a.images.shape == data.b.images.shape
    a, b = data.a.images.int(), data.b.images.int()
    if source.endswith("masked"):
        assert a[..., 8:, :].max() == 0 and torch.equal(a[..., :8, :], b[..., :8, :])
    else:  # outlines: zero inside flat regions, where a 3x3 max equals the 3x3 min
        flat = (torch.nn.functional.max_pool2d(b.float(), 3, 1, 1) == -torch.nn.functional.max_pool2d(-b.float(), 3, 1, 1))
        assert (a[flat] == 0).all() and a.sum() > 0


def test_a_pair_shares_its_crop_and_its_flip():
    """Random crops with jitter and mirroring move input and target together."""
    torch.manual_seed(0)
    targets = [torch.randint(0, 256, (1, 20, 20), dtype=torch.uint8) for _ in range(12)]
    data = PairedData(ImageData([255 - t for t in targets], None, None, "x", 16, 1),
                      ImageData(targets, None, None, "x", 16, 1))
    stream = PairedStream(data, 4, seed=3, mirror=True)
    flipped = 0
    for k in range(6):
        (a, b), _ = stream.images(k)
        torch.testing.assert_close(a + b, torch.ones_like(a))
        flipped += sum(any(torch.equal(b[i], t[:, r:r + 16, c:c + 16].float().div(255).flip(-1))
                           for t in targets for r in range(5) for c in range(5)) for i in range(4))
    assert 0 < flipped < 24


def test_bad_paired_sources_are_user_errors(tmp_path):
    write(tmp_path / "odd" / "0.png", np.zeros((8, 16)))
    write(tmp_path / "odd" / "1.png", np.zeros((8, 17)))
    with pytest.raises(GankitError, match=r"1.png is 17 px wide, an odd width"):
        load_paired(DataConfig(source=str(tmp_path / "odd"), size=8))
    write(tmp_path / "A" / "x.png", np.zeros((8, 8)))
    write(tmp_path / "B" / "x.png", np.zeros((8, 9)))
    with pytest.raises(GankitError, match=r"x.png is 8x8 but its target .*x.png is 9x8"):
        load_paired(DataConfig(source=str(tmp_path / "A"), source_b=str(tmp_path / "B"), size=8))
    (tmp_path / "empty").mkdir()
    with pytest.raises(GankitError, match="neither a built-in pair"):
        load_paired(DataConfig(source=str(tmp_path / "missing")))
    with pytest.raises(GankitError, match="no image files"):
        load_paired(DataConfig(source=str(tmp_path / "empty")))
    with pytest.raises(GankitError, match="targets folder .* does not exist"):
        load_paired(DataConfig(source=str(tmp_path / "empty"), source_b=str(tmp_path / "nope")))
    with pytest.raises(GankitError, match="drop data.source_b"):
        load_paired(DataConfig(source="digits-edges", source_b=str(tmp_path / "empty")))


# ---------------------------------------------------------------- training

def test_training_learns_the_mapping_and_the_sheet_shows_input_output_target(tmp_path):
    # a larger learning rate than the reference's 2e-4, for a test of 60 steps
    result = train(tiny(tmp_path, steps=60, sample_every=60, grid_size=4, optim={"lr_g": 2e-3, "lr_d": 2e-3}))
    rows = [r for r in metrics_rows(result.run_dir) if "loss/l1" in r]
    first, last = (np.mean([r["loss/l1"] for r in part]) for part in (rows[:10], rows[-10:]))
    assert last < 0.6 * first, (first, last)
    for row in rows:  # G's loss is the GAN term plus 100 x L1
        assert row["loss/g"] == pytest.approx(row["loss/g_adv"] + 100 * row["loss/l1"], rel=1e-4)
    sheet = Image.open(result.run_dir / "samples" / "step-00000060.png")
    assert sheet.size == (4 * 18 + 2, 3 * 18 + 2)  # rows input, output, target of 4; 16 px + 2 px gaps
    state = ckpt.load_checkpoint(result.run_dir)
    assert state["config"]["update"] == "pix2pix" and state["config"]["loss"] == "nonsaturating"
    assert_same_tensors(state["G"], state["G_ema"], "G_ema")  # no EMA: G is used as trained
    assert state["config"]["optim"]["decay_start"] == 30  # the last half decays, as the reference


def test_l1_weight_and_gan_weight_come_from_the_model_options(tmp_path):
    result = train(tiny(tmp_path, steps=3, model={"l1_weight": 0.0, "gan_weight": 2.0}))
    for row in metrics_rows(result.run_dir):
        if "loss/g" in row:
            assert row["loss/g"] == pytest.approx(2 * row["loss/g_adv"], rel=1e-5)


def test_resume_is_bit_exact(tmp_path):
    options = tiny(tmp_path, data={"source": "digits-masked", "size": 16, "crop": "random", "jitter": 0.25},
                   checkpoint_every=3, optim={"decay_start": 2, "decay_length": 6})
    straight = ckpt.load_checkpoint(train(options, steps=6, name="straight").run_dir)
    first = train(options, steps=3, name="split")
    split = ckpt.load_checkpoint(train(resume=first.run_dir, steps=6).run_dir)
    for key in ("G", "D", "opt_g", "opt_d", "rng"):
        assert_same_tensors(straight[key], split[key], key)
    assert split["step"] == 6


@pytest.mark.parametrize("overrides, message", [
    ({"augment": {"mode": "diffaug"}}, "drop --aug diffaug"),
    ({"replay": {"size": 4}}, "drop the replay options"),
    ({"update": "joint"}, "use --update pix2pix"),
    ({"eval": {"every": 10}}, "drop --eval-every"),
    ({"model": {"norm": "group"}}, "model.norm='group' is not valid"),
    ({"data": {"source": "digits-edges", "size": 24}}, "size 24 does not suit a U-Net of 5 levels"),
])
def test_combinations_that_cannot_work_are_refused(tmp_path, overrides, message):
    options = tiny(tmp_path, steps=1)
    if "size" in overrides.get("data", {}):
        options["model"] = {**options["model"], "downs": 5}
    with pytest.raises(GankitError, match=message.replace("(", r"\(")):
        train(with_overrides(options, **overrides))
    assert not (tmp_path / "runs").exists()


def test_translate_train_paired_and_apply_end_to_end(tmp_path, capsys):
    for i in range(6):  # side-by-side files: A = the digit's negative, B = the digit
        digit = np.zeros((16, 16))
        digit[3:13, 6 + i % 3:9 + i % 3] = 255
        write(tmp_path / "facades" / "train" / f"{i}.png", np.concatenate([255 - digit, digit], 1))
    runs = tmp_path / "runs"
    code, out, err = run_cli(["translate", "train", "--paired", "--data", tmp_path / "facades", "--size", 16,
                              "--tiny", "--steps", 3, "--name", "p2p", "--runs-dir", runs, "--no-progress"], capsys)
    assert code == 0, err
    assert "trained 3 steps (3 pairs)" in out
    run_dir = runs / "p2p"
    assert ckpt.load_checkpoint(run_dir)["config"]["recipe"] == "pix2pix"
    code, out, err = run_cli(["translate", "apply", run_dir, tmp_path / "facades" / "train", tmp_path / "out"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{i}.png" for i in range(6)]
    code, _, err = run_cli(["translate", "apply", run_dir, "--direction", "b2a", tmp_path / "facades" / "train",
                            tmp_path / "out2"], capsys)
    assert "use a2b" in one_line_error(code, err)
    translator = load_translator(run_dir)
    assert translator.module.directions == ("a2b",) and not math.isnan(float(translator.translate(torch.rand(1, 1, 16, 16)).mean()))


def test_translate_train_paired_errors_are_one_line(tmp_path, capsys):
    common = ["--paired", "--size", "16", "--tiny", "--steps", "1", "--no-progress", "--runs-dir", str(tmp_path / "runs")]
    (tmp_path / "A").mkdir()
    write(tmp_path / "odd" / "pair.png", np.zeros((16, 33)))
    for args, expected in [([], "give the pairs"),
                           (["--a", str(tmp_path / "odd")], "pair.png is 33 px wide, an odd width"),
                           (["--a", str(tmp_path / "nope")], "neither a built-in pair"),
                           (["--a", str(tmp_path / "A"), "--b", str(tmp_path / "B")], "does not exist"),
                           (["--a", "digits-edges", "--data", str(tmp_path)], "not both")]:
        code, _, err = run_cli(["translate", "train", *args, *common], capsys)
        assert expected in one_line_error(code, err), (args, err)
    assert not (tmp_path / "runs").exists()
