"""Images people look at: sample grids, animated GIFs (interpolations, training progress)."""

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


def progress_gif(run_dir: Path, out: Path, every: int = 1, duration: int = 200,
                 label_steps: bool = True, loop: int = 0) -> list[int]:
    """An animated GIF of a run's fixed-latent grids (run_dir/samples/step-*.png) in step order,
    as the TensorFlow DCGAN tutorial makes: the same latents, so the frames show G learning.
    Every `every`-th grid, always with the last; `label_steps` stamps the step under each frame.
    Returns the steps shown."""
    run_dir = Path(run_dir)
    if every < 1:
        raise GankitError(f"--every {every}: use 1 (every grid) or more")
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
    if label_steps:
        frames = _stamp(frames, [f"step {step}" for step, _ in chosen])
    _save_gif_atomic(frames, out, duration, loop)
    return [step for step, _ in chosen]
