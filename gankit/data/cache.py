"""On-disk cache of decoded folder datasets, so a large folder is decoded once, not once per run.

One .npz per (file list with sizes and mtimes, pixel-changing options) under
$GANKIT_CACHE/datasets (default ~/.cache/gankit/datasets), holding each image at its own channel
count, so a run that names the channels and one that lets them be found share the file. Files are written atomically and read
without pickle; a file that cannot be read is ignored, and the caller decodes and rewrites it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

FORMAT = 1  # part of every key: bump when the stored layout or the decoded pixels change


def cache_dir() -> Path:
    return Path(os.environ.get("GANKIT_CACHE", "~/.cache/gankit")).expanduser() / "datasets"


def cache_file(label: str, key: object) -> Path:
    """The cache file for `key` (any JSON-able value); `label` only makes the name readable."""
    text = json.dumps([FORMAT, key], sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:24]
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:40]
    return cache_dir() / f"{readable}-{digest}.npz"


class Decoded(NamedTuple):
    """What a folder decodes to, before the dataset's channel count is applied."""

    images: list[torch.Tensor]  # uint8 (C, h, w) each, C the file's own 1 (grey) or 3
    labels: torch.Tensor | None  # int64 (N,)
    class_names: list[str] | None
    note: str  # a warning to repeat on every load, e.g. about skipped files


def save(path: Path, decoded: Decoded) -> None:
    arrays = {
        "pixels": np.concatenate([image.numpy().ravel() for image in decoded.images]),
        "shapes": np.array([image.shape for image in decoded.images], dtype=np.int64),  # (N, 3)
        "note": np.array(decoded.note),
    }
    if decoded.labels is not None:
        arrays["labels"] = decoded.labels.numpy()
    if decoded.class_names is not None:
        arrays["class_names"] = np.array(decoded.class_names, dtype=str)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as file:  # a file object: np.savez would append .npz to a name
            np.savez(file, **arrays)
        os.replace(tmp, path)  # readers see the old file or the whole new one, never half of one
    except OSError as err:
        tmp.unlink(missing_ok=True)
        warnings.warn(f"could not write the dataset cache {path} ({err}); the images will be "
                      "decoded again next run", stacklevel=2)


def load(path: Path) -> Decoded | None:
    """The decoded images in `path`, or None when it is absent or cannot be read."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return _rebuild(npz)
    except Exception as err:  # torn copies, full disks, old formats: any failure just means rebuild
        warnings.warn(f"ignoring the unreadable dataset cache {path} ({type(err).__name__}: "
                      f"{err}); decoding the images again", stacklevel=2)
        return None


def _rebuild(npz) -> Decoded:
    pixels = torch.from_numpy(npz["pixels"])
    shapes = [tuple(shape) for shape in npz["shapes"].tolist()]
    counts = [c * h * w for c, h, w in shapes]
    if pixels.dtype != torch.uint8 or sum(counts) != len(pixels) or not shapes \
            or any(c not in (1, 3) for c, _, _ in shapes):
        raise ValueError("the pixel data does not match the stored shapes")
    images = [part.view(shape) for part, shape in zip(pixels.split(counts), shapes)]
    labels = torch.from_numpy(npz["labels"]) if "labels" in npz else None
    if labels is not None and (labels.dtype != torch.int64 or labels.shape != (len(images),)):
        raise ValueError("the labels do not match the images")
    class_names = npz["class_names"].tolist() if "class_names" in npz else None
    return Decoded(images, labels, class_names, str(npz["note"]))
