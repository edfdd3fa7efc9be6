"""H.264 video (.mp4) through the ffmpeg that the imageio-ffmpeg package ships.

H.264 in yuv420p is what browsers, phones and slide software all play. yuv420p keeps colour at
half resolution in both directions, so a frame's width and height must be even: callers pad.
Which frames to write, at what size, with what labels, is `gankit.visualize.save_animation`'s
business; this module only encodes.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import GankitError

# libx264: the H.264 encoder; yuv420p: the pixel format every player decodes; CRF 18: about
# visually lossless (x264's default, 23, smears the hard edges of upscaled small images);
# +faststart: the index at the front, so a browser starts playing before the whole file arrives.
H264_ARGS = ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", "-preset", "medium",
             "-movflags", "+faststart")

ENCODER_ADVICE = "write a .gif instead, or set IMAGEIO_FFMPEG_EXE to a working ffmpeg"


def ffmpeg_exe() -> str:
    """The ffmpeg to run: $IMAGEIO_FFMPEG_EXE, else the one imageio-ffmpeg ships."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise GankitError("writing .mp4 needs the imageio-ffmpeg package (it ships ffmpeg): "
                          f"pip install imageio-ffmpeg, or {ENCODER_ADVICE}") from None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        raise GankitError(f"imageio-ffmpeg found no ffmpeg: reinstall imageio-ffmpeg, or {ENCODER_ADVICE}") from None


def encode_mp4(frames: np.ndarray, path: Path, fps: float) -> Path:
    """(N, H, W, 3) uint8 RGB frames, H and W even -> an H.264 .mp4 at `fps` frames per second.

    Written to a hidden temporary file beside `path` and renamed at the end, so a failed or
    interrupted encode leaves nothing behind. A failing ffmpeg raises GankitError with the last
    line it logged."""
    assert frames.ndim == 4 and frames.shape[-1] == 3 and frames.dtype == np.uint8, \
        f"expected (N, H, W, 3) uint8, got {frames.shape} {frames.dtype}"
    n, height, width, _ = frames.shape
    assert n >= 1 and height % 2 == 0 and width % 2 == 0, f"H.264 in yuv420p needs even sizes: {width}x{height}"
    assert fps > 0, fps
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.mp4")
    rate = Fraction(fps).limit_denominator(1001)  # exact for 12, 12.5, 29.97 (30000/1001) ...
    command = [ffmpeg_exe(), "-hide_banner", "-nostats", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(rate),
               "-i", "-", "-an", *H264_ARGS, str(tmp)]
    # ffmpeg's messages go to a file rather than a pipe: a pipe that nobody reads while frames are
    # being written can fill up and stall both processes.
    with tempfile.TemporaryFile() as log:
        try:
            try:
                process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                           stderr=log)
            except OSError as error:
                raise GankitError(f"could not start ffmpeg ({command[0]}: {error.strerror}): "
                                  f"reinstall imageio-ffmpeg, or {ENCODER_ADVICE}") from None
            try:
                try:
                    for frame in frames:
                        process.stdin.write(np.ascontiguousarray(frame).data)
                    process.stdin.close()
                except BrokenPipeError:  # ffmpeg stopped early; its exit code and log say why
                    try:
                        process.stdin.close()
                    except BrokenPipeError:
                        pass
                code = process.wait()
            except BaseException:  # Ctrl-C included: stop ffmpeg, then clean up below
                process.kill()
                process.wait()
                raise
            if code != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
                log.seek(0)
                lines = [line.strip() for line in log.read().decode(errors="replace").splitlines() if line.strip()]
                said = lines[-1] if lines else f"exit code {code}"
                raise GankitError(f"ffmpeg could not write {path} ({said}): check that the folder is "
                                  f"writable and the disk has room, or {ENCODER_ADVICE}")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path
