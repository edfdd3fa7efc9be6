"""Images people look at: sample grids and animations (interpolations, training progress) as GIFs,
H.264 videos, grids or folders of frames."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid

from .errors import GankitError


def to_unit_range(images: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """Map images from a model's output range to [0, 1]."""
    low, high = value_range
    return ((images.float() - low) / (high - low)).clamp_(0.0, 1.0)


def from_unit_range(images: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """Map [0, 1] images into a model's value range."""
    low, high = value_range
    return images * (high - low) + low


def to_uint8_hwc(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] -> (N, H, W, C) uint8."""
    assert images.dim() == 4, f"expected (N, C, H, W), got {tuple(images.shape)}"
    array = (images.detach().float().cpu().clamp(0, 1) * 255.0).round().to(torch.uint8)
    return array.permute(0, 2, 3, 1).numpy()


def _pil(array_hwc: np.ndarray) -> Image.Image:
    return Image.fromarray(array_hwc[..., 0] if array_hwc.shape[-1] == 1 else array_hwc)


def grid_image(images: torch.Tensor, nrow: int | None = None, padding: int = 2) -> Image.Image:
    """(N, C, H, W) in [0, 1] -> one PIL image, `nrow` images per row (default: square-ish)."""
    nrow = nrow or max(1, math.ceil(math.sqrt(len(images))))
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, padding=padding, pad_value=1.0)
    if images.shape[1] == 1:
        grid = grid[:1]  # make_grid repeats grey to 3 channels; keep the PNG grey
    return _pil(to_uint8_hwc(grid.unsqueeze(0))[0])


def save_image_atomic(image: Image.Image, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    image.save(tmp)
    os.replace(tmp, path)
    return path


def save_grid(images: torch.Tensor, path: Path, nrow: int | None = None) -> Path:
    return save_image_atomic(grid_image(images, nrow), path)


def save_folder(images: torch.Tensor, folder: Path, prefix: str = "sample") -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(len(images))))
    return [save_image_atomic(_pil(a), folder / f"{prefix}-{i:0{width}d}.png")
            for i, a in enumerate(to_uint8_hwc(images))]


def save_npz(images: torch.Tensor, path: Path) -> Path:
    """An .npz holding `images`: uint8 (N, H, W, C), the layout other GAN tools read."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.npz")
    np.savez_compressed(tmp, images=to_uint8_hwc(images))
    os.replace(tmp, path)
    return path


def _save_gif_atomic(frames: list[Image.Image], path: Path, duration: int, loop: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.gif")
    # Pillow folds a frame identical to the one before into it (adding up the durations), so a
    # GIF may hold fewer frames than given; it plays the same.
    frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=duration,
                   loop=loop)
    os.replace(tmp, path)
    return path


def save_gif(frames: torch.Tensor, path: Path, duration: int = 80, loop: int = 0) -> Path:
    """(N, C, H, W) in [0, 1] -> an animated GIF, `duration` ms per frame, `loop` 0 = forever."""
    assert len(frames) >= 1, "a GIF needs at least one frame"
    return _save_gif_atomic([_pil(a) for a in to_uint8_hwc(frames)], path, duration, loop)


# --------------------------------------------------------------------------------------------
# Animations: one writer for every command that makes one (interpolate, progress, project)

GRID_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
ANIMATION_KINDS = ("gif", "mp4", "grid", "folder")
MIN_FRAME_SIZE = 16  # below this a frame is too small to see anything in
MP4_MIN_SIDE = 256  # default .mp4 size: players show a 16 px video as a smudge, or refuse it


def animation_kind(out: Path) -> str:
    """What `save_animation` writes for the name `out`: gif, mp4, grid or folder ("" if unknown)."""
    suffix = Path(out).suffix.lower()
    if suffix in (".gif", ".mp4"):
        return suffix[1:]
    if suffix in GRID_SUFFIXES:
        return "grid"
    return "" if suffix else "folder"


def _known_outputs(kinds: tuple[str, ...]) -> str:
    names = {"gif": ".gif", "mp4": ".mp4 (H.264 video)", "grid": ".png, .jpg or .webp (a grid of the frames)",
             "folder": "no suffix (a folder of PNG frames)"}
    listed = [names[kind] for kind in kinds]
    return listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " or " + listed[-1]


def check_animation_output(out: Path, fps: float, frame_size: int | None = None,
                           kinds: tuple[str, ...] = ANIMATION_KINDS) -> str:
    """Refuse, in one line, what `save_animation` cannot write: an `out` whose suffix is not one of
    `kinds`, whose folder does not exist, fps <= 0, a frame size under 16. Returns the kind.
    Commands call it before the slow part (loading a generator), so a typo fails at once."""
    out = Path(out)
    kind = animation_kind(out)
    if kind not in kinds:
        raise GankitError(f"--out {out}: unknown suffix {out.suffix!r}: use a name ending in {_known_outputs(kinds)}")
    folder = out.parent
    if not folder.is_dir():
        raise GankitError(f"--out {out}: the folder {folder} does not exist: create it first, or "
                          "write somewhere else")
    if not 0 < fps < math.inf:  # refuses NaN too
        raise GankitError(f"--fps {fps}: use a number of frames per second above 0 (e.g. 12)")
    if frame_size is not None and frame_size < MIN_FRAME_SIZE:
        raise GankitError(f"--frame-size {frame_size}: use at least {MIN_FRAME_SIZE} pixels "
                          "(the longer side of a frame)")
    return kind


def _frame_dims(width: int, height: int, frame_size: int | None, kind: str) -> tuple[int, int]:
    """(width, height) of the written frames: the longer side `frame_size`, keeping the shape;
    without one the images' own size, or for .mp4 a whole multiple of it at least MP4_MIN_SIDE."""
    longer = max(width, height)
    if frame_size is None:
        factor = max(1, math.ceil(MP4_MIN_SIDE / longer)) if kind == "mp4" else 1
        return width * factor, height * factor
    return max(1, round(width * frame_size / longer)), max(1, round(height * frame_size / longer))


def _resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Nearest-neighbour up (a GAN's 32 px image stays crisp blocks, not a blur), area-average down."""
    if image.size == size:
        return image
    grows = size[0] >= image.width and size[1] >= image.height
    return image.resize(size, Image.Resampling.NEAREST if grows else Image.Resampling.BOX)


def _pad_even(array: np.ndarray) -> np.ndarray:
    """(H, W, C) -> even H and W, repeating the last row / column (yuv420p needs even sizes)."""
    height, width = array.shape[:2]
    return np.pad(array, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")


def _tensor(images: list[Image.Image]) -> torch.Tensor:
    """PIL images of one size and mode ("L" or "RGB") -> (N, C, H, W) in [0, 1]; exact for 8 bits."""
    arrays = [np.asarray(image) for image in images]
    stacked = np.stack([a[..., None] if a.ndim == 2 else a for a in arrays])  # (N, H, W, C)
    return torch.from_numpy(stacked).permute(0, 3, 1, 2).float() / 255.0


def save_animation(frames: torch.Tensor, out: Path, fps: float, frame_size: int | None = None,
                   labels: list[str] | None = None, nrow: int | None = None, loop: int = 0) -> Path:
    """Write frames (N, C, H, W) in [0, 1] (C 1 or 3) as an animation; the suffix of `out` says how:

    - `.gif`: a GIF at `fps` (GIFs time frames in 1/100 s, so 12 fps plays at 12.5), looping
      `loop` times (0: forever);
    - `.mp4`: H.264 video in yuv420p at `fps` (see gankit.video), padded to even sizes;
    - `.png`, `.jpg`, `.webp`: one grid picture of the frames, `nrow` to a row;
    - no suffix: a folder of frame-00000.png ...

    `frame_size` scales every frame so its longer side has that many pixels: nearest-neighbour up,
    so small GAN images stay crisp, area-average down. Without it frames keep their size, except
    that an .mp4 is scaled up by a whole factor to at least MP4_MIN_SIDE. `labels` (one per frame)
    are written in a white strip under each frame, after scaling, so the text stays sharp.

    Files are written beside `out` under a temporary name and renamed at the end: a failure leaves
    nothing half-written. Bad arguments (see `check_animation_output`) and a failing encoder raise
    GankitError. Returns `out`."""
    kind = check_animation_output(out, fps, frame_size)
    out = Path(out)
    assert frames.dim() == 4 and frames.shape[1] in (1, 3) and len(frames) >= 1, \
        f"expected frames (N, C, H, W) with C 1 or 3, got {tuple(frames.shape)}"
    assert labels is None or len(labels) == len(frames), "one label per frame"
    images = [_pil(a) for a in to_uint8_hwc(frames)]
    size = _frame_dims(images[0].width, images[0].height, frame_size, kind)
    changed = size != images[0].size or bool(labels)
    images = [_resize(image, size) for image in images]
    if labels:
        images = _stamp(images, list(labels))
    if kind == "gif":
        _save_gif_atomic(images, out, duration=max(1, round(1000 / fps)), loop=loop)
    elif kind == "mp4":
        from .video import encode_mp4

        encode_mp4(np.stack([_pad_even(np.asarray(image.convert("RGB"))) for image in images]), out, fps)
    elif kind == "grid":
        save_image_atomic(grid_image(_tensor(images) if changed else frames, nrow), out)
    else:
        save_folder(_tensor(images) if changed else frames, out, prefix="frame")
    return out


SAMPLES_DIR = "samples"  # where the trainer keeps its fixed-latent grids, step-XXXXXXXX.png


def progress_grids(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, file) of every grid in run_dir/samples, in step order (numeric, not by name, so a
    step past 99,999,999 still sorts last)."""
    grids = []
    for path in (Path(run_dir) / SAMPLES_DIR).glob("step-*.png"):
        step = path.stem[len("step-"):]
        if step.isdigit():
            grids.append((int(step), path))
    return sorted(grids)


def _stamp(frames: list[Image.Image], texts: list[str]) -> list[Image.Image]:
    """Each frame with a white strip below it holding its text (PIL's built-in font); one size for
    all, as wide as the widest text needs, since a GIF's frames share one canvas."""
    font = ImageFont.load_default()
    boxes = [ImageDraw.Draw(frames[0]).textbbox((0, 0), text, font=font) for text in texts]
    width = max(frames[0].width, *(right + 4 for _, _, right, _ in boxes))
    height = frames[0].height + max(bottom for _, _, _, bottom in boxes) + 4
    out = []
    for frame, text in zip(frames, texts):
        canvas = Image.new(frame.mode, (width, height), "white")
        canvas.paste(frame, (0, 0))
        ImageDraw.Draw(canvas).text((2, frame.height + 2), text, fill="black", font=font)
        out.append(canvas)
    return out


def progress_animation(run_dir: Path, out: Path, every: int = 1, fps: float = 5.0,
                       frame_size: int | None = None, label_steps: bool = True, loop: int = 0) -> list[int]:
    """An animation of a run's fixed-latent grids (run_dir/samples/step-*.png) in step order, as the
    TensorFlow DCGAN tutorial makes: the same latents, so the frames show G learning. Every
    `every`-th grid, always with the last; `label_steps` stamps the step under each frame. `out`,
    `fps`, `frame_size` and `loop` as in `save_animation`. Returns the steps shown."""
    run_dir = Path(run_dir)
    if every < 1:
        raise GankitError(f"--every {every}: use 1 (every grid) or more")
    check_animation_output(out, fps, frame_size)
    if not run_dir.is_dir():
        raise GankitError(f"run folder {run_dir} does not exist: give the folder of a training run "
                          "(the one holding samples/)")
    grids = progress_grids(run_dir)
    if not grids:
        raise GankitError(f"no sample grids in {run_dir / SAMPLES_DIR}: train longer or lower "
                          "--sample-every so that training saves some")
    chosen = grids[::every]
    if chosen[-1] != grids[-1]:
        chosen.append(grids[-1])  # end on the newest grid: where the run got to
    frames = []
    for step, path in chosen:
        with Image.open(path) as image:
            mode = frames[0].mode if frames else ("L" if image.mode in ("L", "LA", "I", "I;16") else "RGB")
            image = image.convert(mode)
        if frames and image.size != frames[0].size:
            # Grids of one run share a size; resize rather than fail on an odd one (e.g. an edit).
            image = image.resize(frames[0].size)
        frames.append(image)
    labels = [f"step {step}" for step, _ in chosen] if label_steps else None
    save_animation(_tensor(frames), out, fps, frame_size=frame_size, labels=labels, loop=loop)
    return [step for step, _ in chosen]


def progress_gif(run_dir: Path, out: Path, every: int = 1, duration: int = 200,
                 label_steps: bool = True, loop: int = 0) -> list[int]:
    """`progress_animation` to a GIF, timed in milliseconds per frame."""
    if duration < 1:
        raise GankitError(f"--duration {duration}: use at least 1 millisecond per frame")
    return progress_animation(run_dir, out, every=every, fps=1000 / duration, label_steps=label_steps,
                              loop=loop)
