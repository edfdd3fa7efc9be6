"""Animations as H.264 .mp4 (and the other outputs of the one animation writer): encode, read back
with imageio's ffmpeg reader, and the `interpolate` / `progress` commands on a tiny real run."""

from __future__ import annotations

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from PIL import Image

from gankit.errors import GankitError
from gankit.visualize import progress_animation, save_animation, save_gif, save_grid
from helpers import one_line_error, run_cli, tiny_options

COLOURS = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=torch.float)


def colour_blocks(n: int = 6, size: int = 16) -> torch.Tensor:
    """(n, 3, size, size): frame i is a flat colour on top and another below; every frame differs."""
    frames = torch.empty(n, 3, size, size)
    for i in range(n):
        frames[i, :, : size // 2] = COLOURS[i % 6].view(3, 1, 1)
        frames[i, :, size // 2:] = COLOURS[(i + 2) % 6].view(3, 1, 1) * 0.5 + 0.25
    return frames


def read_video(path) -> tuple[np.ndarray, dict]:
    """(N, H, W, 3) uint8 frames and the metadata (fps, size ...) of a video, through imageio."""
    reader = imageio.get_reader(path, format="FFMPEG")
    try:
        frames = np.stack([frame for frame in reader])  # not list(reader): its len() is inf
        return frames, reader.get_meta_data()
    finally:
        reader.close()


def as_unit(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0


# --------------------------------------------------------------------------------------------
# The writer


def test_mp4_reads_back_frame_for_frame(tmp_path):
    frames = colour_blocks()
    path = save_animation(frames, tmp_path / "blocks.mp4", fps=8, frame_size=64)
    got, meta = read_video(path)
    assert got.shape == (6, 64, 64, 3)
    assert meta["fps"] == 8 and meta["size"] == (64, 64) and meta["codec"] == "h264"
    assert meta["pix_fmt"].startswith("yuv420p")
    expected = frames.repeat_interleave(4, 2).repeat_interleave(4, 3)  # nearest-neighbour x4
    error = (as_unit(got) - expected).abs()
    assert error.mean() < 0.05, error.mean()
    # each frame is its own colours: a video showing the frames out of order would fail here
    assert all(error[i].mean() < 0.05 for i in range(6))
    assert [p.name for p in tmp_path.iterdir()] == ["blocks.mp4"]  # no temporary file left


def test_mp4_pads_odd_sizes_and_upscales_small_frames_by_default(tmp_path):
    grey = torch.linspace(0, 1, 3).view(3, 1, 1, 1).expand(3, 1, 10, 15)  # (3, 1, 10, 15): odd width
    got, meta = read_video(save_animation(grey, tmp_path / "sized.mp4", fps=12, frame_size=33))
    assert meta["size"] == (34, 22) and got.shape == (3, 22, 34, 3)  # 33 x 22, padded to even
    assert meta["fps"] == 12
    assert np.abs(got[:, :, 33].astype(int) - got[:, :, 32].astype(int)).max() <= 8  # padding repeats the edge
    levels = got.reshape(3, -1).mean(1)
    assert np.allclose(levels, [0, 127.5, 255], atol=6), levels

    got, meta = read_video(save_animation(grey, tmp_path / "default.mp4", fps=12))
    assert meta["size"] == (270, 180)  # x18: the smallest whole factor reaching 256 px


def test_gif_from_the_writer_is_the_gif_it_always_was(tmp_path):
    frames = colour_blocks(4)
    save_gif(frames, tmp_path / "old.gif", duration=80)
    save_animation(frames, tmp_path / "new.gif", fps=12)  # 83 ms: GIFs keep 1/100 s, so 80 ms
    assert (tmp_path / "new.gif").read_bytes() == (tmp_path / "old.gif").read_bytes()


def write_grids(run_dir, steps):
    for step in steps:  # one grey level per step, so the frame order can be read back
        save_grid(torch.full((4, 1, 4, 4), step / 100), run_dir / "samples" / f"step-{step:08d}.png", nrow=2)


def test_progress_mp4_keeps_the_step_labels(tmp_path):
    write_grids(tmp_path / "run", [10, 40, 90])
    steps = progress_animation(tmp_path / "run", tmp_path / "p.mp4", fps=4, frame_size=100)
    got, meta = read_video(tmp_path / "p.mp4")
    assert steps == [10, 40, 90] and len(got) == 3 and meta["fps"] == 4
    width, height = meta["size"]
    assert width == 100 and height > 100 and height % 2 == 0  # the white strip with the step below
    assert got[:, height - 8:].mean() > 150 and got[:, height - 12:].min() < 100  # white, with dark text
    greys = got[:, 30, 30].mean(axis=1)  # inside the first image of the grid (not its white border)
    assert np.allclose(greys, [s / 100 * 255 for s in steps], atol=8), greys  # in step order

    unlabelled = progress_animation(tmp_path / "run", tmp_path / "plain.mp4", fps=4, frame_size=100,
                                    label_steps=False)
    assert unlabelled == steps and read_video(tmp_path / "plain.mp4")[1]["size"] == (100, 100)


@pytest.mark.parametrize("name, options, expected", [
    ("x.avi", {}, "unknown suffix '.avi': use a name ending in .gif, .mp4"),
    ("missing/x.mp4", {}, "does not exist: create it first"),
    ("x.mp4", {"fps": 0}, "--fps 0: use a number of frames per second above 0"),
    ("x.gif", {"fps": -2}, "--fps -2"),
    ("x.gif", {"fps": float("inf")}, "--fps inf"),
    ("x.mp4", {"frame_size": 8}, "--frame-size 8: use at least 16 pixels"),
])
def test_writer_refuses_bad_arguments_and_writes_nothing(tmp_path, name, options, expected):
    with pytest.raises(GankitError, match=expected.replace(".", r"\.").replace("(", r"\(")):
        save_animation(colour_blocks(2), tmp_path / name, fps=options.get("fps", 12),
                       frame_size=options.get("frame_size"))
    assert list(tmp_path.iterdir()) == []


FAKE_FFMPEG = """#!/bin/sh
for last; do :; done
echo half a video > "$last"
echo "Unknown encoder 'libx264'" >&2
exit 1
"""


def test_a_failing_encoder_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text(FAKE_FFMPEG)
    fake.chmod(0o755)
    (tmp_path / "out").mkdir()
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(fake))
    with pytest.raises(GankitError, match=r"ffmpeg could not write .*\(Unknown encoder 'libx264'\).*write a \.gif instead"):
        save_animation(colour_blocks(2), tmp_path / "out" / "x.mp4", fps=12)
    assert list((tmp_path / "out").iterdir()) == []  # its half-written temporary file is gone

    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-such-ffmpeg"))
    with pytest.raises(GankitError, match="could not start ffmpeg .*write a .gif instead"):
        save_animation(colour_blocks(2), tmp_path / "out" / "x.mp4", fps=12)
    assert list((tmp_path / "out").iterdir()) == []


# --------------------------------------------------------------------------------------------
# Command line, on a tiny real (DCGAN) run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from gankit import train

    runs = tmp_path_factory.mktemp("runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("GANKIT_CACHE", str(runs / "cache"))
            options = tiny_options(runs, "dcgan", sample_every=1, data={"limit": 64})
            return train(options, steps=3, name="t").run_dir
    finally:
        torch.set_num_threads(threads)


def test_cli_interpolate_and_progress_write_mp4(tiny_run, tmp_path, capsys):
    code, out, err = run_cli(["interpolate", tiny_run, "--out", tmp_path / "walk.mp4", "--fps", 8,
                              "--frame-size", 64, "--keyframes", 2, "--frames", 3], capsys)
    assert code == 0, err
    assert "wrote 6 frames" in out
    frames, meta = read_video(tmp_path / "walk.mp4")
    assert len(frames) == 6 and meta["fps"] == 8 and meta["size"] == (64, 64)
    assert frames.std() > 1  # a picture, not a blank

    code, out, err = run_cli(["progress", tiny_run, "--out", tmp_path / "p.mp4"], capsys)
    assert code == 0, err
    grids = len(list((tiny_run / "samples").glob("step-*.png")))
    assert f"wrote {grids} frames" in out
    frames, meta = read_video(tmp_path / "p.mp4")
    assert len(frames) == grids >= 2 and meta["fps"] == 5  # the documented default
    width, height = meta["size"]
    assert width >= 256 and width % 2 == 0 and height % 2 == 0

    code, _, err = run_cli(["interpolate", tiny_run, "--out", tmp_path / "walk.gif", "--keyframes", 2,
                            "--frames", 3, "--duration", 50], capsys)  # the older flag still works
    assert code == 0, err
    with Image.open(tmp_path / "walk.gif") as gif:
        assert gif.n_frames == 6 and gif.info["duration"] == 50 and gif.size == (16, 16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.mp4", "walk.gif", "walk.mp4"]


@pytest.mark.parametrize("args, expected", [
    (["interpolate", "{run}", "--out", "{tmp}/x.avi"], "unknown suffix '.avi': use a name ending in .gif, .mp4"),
    (["progress", "{run}", "--out", "{tmp}/p.png"], "use a name ending in .gif or .mp4 (H.264 video)"),
    (["interpolate", "{run}", "--out", "{tmp}/nope/x.mp4"], "the folder {tmp}/nope does not exist"),
    (["progress", "{run}", "--out", "{tmp}/nope/p.mp4"], "the folder {tmp}/nope does not exist"),
    (["interpolate", "{run}", "--out", "{tmp}/x.mp4", "--fps", "0"], "--fps 0.0: use a number of frames per second above 0"),
    (["progress", "{run}", "--out", "{tmp}/p.mp4", "--fps", "-1"], "--fps -1.0"),
    (["interpolate", "{run}", "--out", "{tmp}/x.mp4", "--frame-size", "15"], "--frame-size 15: use at least 16 pixels"),
    (["progress", "{run}", "--out", "{tmp}/p.gif", "--frame-size", "4"], "--frame-size 4"),
    (["progress", "{run}", "--out", "{tmp}/p.gif", "--fps", "3", "--duration", "100"], "give only --fps"),
])
def test_cli_bad_video_arguments_are_one_line_and_write_nothing(tiny_run, tmp_path, capsys, args, expected):
    argv = [a.format(run=tiny_run, tmp=tmp_path) for a in args]
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    assert expected.format(tmp=tmp_path) in one_line_error(code, err)
    assert list(tmp_path.iterdir()) == []


def test_cli_failing_encoder_is_one_line(tiny_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-such-ffmpeg"))
    (tmp_path / "out").mkdir()
    code, _, err = run_cli(["progress", tiny_run, "--out", tmp_path / "out" / "p.mp4"], capsys)
    assert "could not start ffmpeg" in one_line_error(code, err)
    assert list((tmp_path / "out").iterdir()) == []
