"""The decoded-image store: a folder's images decoded once into one file, memory-mapped on load.

A training process does not hold its images: it maps the store read-only (copy-on-write), and a
batch reads only its own images' pages. The pages live in the kernel's page cache, shared by
every process that maps the file (each rank of a torchrun job, a second run on the same folder),
so a process's own memory does not grow with the dataset; pages the kernel needs back are simply
read from disk again.

One file per (file list with sizes and mtimes, pixel-changing options), under
$GANKIT_CACHE/datasets (default ~/.cache/gankit/datasets), named `<folder>-<digest>.gkimg`:

    MAGIC (64 bytes) | pixels: image after image, each uint8 (C, h, w) in C order
                     | index: UTF-8 JSON (shapes, labels, class names, note) | len(index) (8) | END

The index gives one shape and a count when every image has it (a fixed-size set), else a shape
per image (random crops keep each image's own aspect).

Every image has the store's one channel count, so a fixed-size set is one (N, C, S, S) array.
The folder's own store holds its images at the channel count they call for (RGB if any image is
in colour); a run that names other channels gets a sibling `<...>.c1.gkimg` / `.c3.gkimg`,
converted from the first without decoding again.

Files are written under a lock (one process decodes; others wait, then map what it wrote), into a
temporary file renamed into place, so a reader sees a whole store or none. A killed writer's
temporary file is never read, and the next writer removes it. A store that fails its checks is
ignored and rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .image import to_channels

try:
    import fcntl
except ImportError:  # Windows: no lock; concurrent writers then duplicate work, never tear a file
    fcntl = None

FORMAT = 2  # part of every key: bump when the layout or the decoded pixels change (1: the .npz cache)
SUFFIX = ".gkimg"
MAGIC = b"GANKIT-IMAGE-STORE\x00v2".ljust(64, b"\x00")  # pixels start at 64: cache-line aligned
END = b"GKIMGEND"
_TRAILER = struct.Struct("<Q8s")  # (index length, END)


def cache_dir() -> Path:
    return Path(os.environ.get("GANKIT_CACHE", "~/.cache/gankit")).expanduser() / "datasets"


def store_path(label: str, key: object) -> Path:
    """The store for `key` (any JSON-able value); `label` only makes the name readable."""
    text = json.dumps([FORMAT, key], sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:24]
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:40]
    return cache_dir() / f"{readable}-{digest}{SUFFIX}"


def with_channels(path: Path, channels: int) -> Path:
    """The sibling store that holds `path`'s images converted to `channels`."""
    return path.with_name(f"{path.name[:-len(SUFFIX)]}.c{channels}{SUFFIX}")


# --------------------------------------------------------------------------------------------
# reading


@dataclass
class Store:
    """A mapped store: pixels stay on disk (and in the page cache) until a batch reads them."""

    path: Path
    pixels: torch.Tensor  # uint8 (total,), a view of the read-only mapping (copy-on-write)
    shapes: np.ndarray  # int64 (N, 3): (C, h, w) of each image
    labels: torch.Tensor | None  # int64 (N,)
    class_names: list[str] | None
    note: str  # a warning to repeat on every load, e.g. about skipped files

    @property
    def channels(self) -> int:
        return int(self.shapes[0, 0])

    def __len__(self) -> int:
        return len(self.shapes)

    def tensor(self) -> torch.Tensor:
        """uint8 (N, C, h, w), a view of the mapping (all images must have one shape)."""
        assert (self.shapes == self.shapes[0]).all(), "only fixed-size stores are one array"
        return self.pixels.view(len(self.shapes), *self.shapes[0].tolist())  # (N, C, h, w)

    def images(self) -> list[torch.Tensor]:
        """[(C, h, w)] uint8, each a view of the mapping."""
        shapes = self.shapes.tolist()
        sizes = [c * h * w for c, h, w in shapes]
        return [part.view(shape) for part, shape in zip(self.pixels.split(sizes), shapes)]


def open_store(path: Path) -> Store | None:
    """The store in `path`, mapped, or None when it is absent or fails its checks."""
    if not path.is_file():
        return None
    try:
        return map_store(path)
    except Exception as err:  # torn copies, foreign files, old formats: any failure means rebuild
        warnings.warn(f"ignoring the unreadable dataset store {path} ({type(err).__name__}: "
                      f"{err}); decoding the images again", stacklevel=3)
        return None


def map_store(path: Path, one_channel_count: bool = True) -> Store:
    """The store in `path`, mapped; raises when it fails its checks."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        if file.read(len(MAGIC)) != MAGIC:
            raise ValueError("not a gankit image store of this version")
        file.seek(size - _TRAILER.size)
        index_length, end = _TRAILER.unpack(file.read(_TRAILER.size))
        if end != END or index_length > size:
            raise ValueError("the file ends early (an interrupted copy?)")
        n_pixels = size - len(MAGIC) - index_length - _TRAILER.size
        file.seek(len(MAGIC) + n_pixels)
        index = json.loads(file.read(index_length).decode())
    if "shapes" in index:
        shapes = np.array(index["shapes"], dtype=np.int64).reshape(-1, 3)
    else:
        shapes = np.tile(np.array(index["shape"], dtype=np.int64), (index["count"], 1))
    if not len(shapes) or int(shapes.prod(axis=1).sum()) != n_pixels \
            or not np.isin(shapes[:, 0], (1, 3)).all() or (shapes[:, 1:] < 1).any():
        raise ValueError("the pixel data does not match the stored shapes")
    if one_channel_count and (shapes[:, 0] != shapes[0, 0]).any():
        raise ValueError("the images differ in their channel counts")
    labels = index.get("labels")
    if labels is not None and len(labels) != len(shapes):
        raise ValueError("the labels do not match the images")
    # mode "c": private, copy-on-write pages. Unwritten pages are the page cache's own, shared with
    # every other process mapping the file; a stray in-place write stays in this process.
    mapped = np.memmap(path, dtype=np.uint8, mode="c", offset=len(MAGIC), shape=(n_pixels,))
    return Store(path, torch.from_numpy(mapped), shapes,
                 None if labels is None else torch.tensor(labels, dtype=torch.int64),
                 index.get("class_names"), index.get("note", ""))


# --------------------------------------------------------------------------------------------
# writing


class Writer:
    """Appends decoded images to a temporary file; `finish` renames it into place.

        with Writer(path) as writer:
            for image in images:
                writer.add(image)            # uint8 (C, h, w)
            writer.finish(labels, class_names, note)

    Images may differ in channels (1 or 3): `finish` converts them to one count if they do.
    Leaving the block without `finish` (an error) removes the temporary file.
    """

    _count = 0

    def __init__(self, path: Path):
        self.path = path
        Writer._count += 1  # two writers of one process (a conversion) never share a file
        self._stem = f".{path.name}.{os.getpid()}-{Writer._count}"
        self.tmp = path.with_name(f"{self._stem}.tmp")
        self.shapes: list[tuple[int, int, int]] = []
        self._file = None

    def __enter__(self) -> Writer:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.tmp, "wb")
        self._file.write(MAGIC)
        return self

    def scratch(self, tag: str) -> Path:
        """A name for a helper's temporary file beside the store (the decode workers' spool). It
        is named like the writer's own, so the next lock holder removes it if a kill leaves it."""
        return self.path.with_name(f"{self._stem}-{tag}.tmp")

    def add(self, image: np.ndarray | torch.Tensor) -> None:
        image = np.ascontiguousarray(image)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[0] in (1, 3), \
            (image.dtype, image.shape)
        self._file.write(memoryview(image).cast("B"))
        self.shapes.append(tuple(image.shape))

    def finish(self, labels: torch.Tensor | None, class_names: list[str] | None, note: str = "",
               channels: int | None = None) -> None:
        """Write the index and rename the file into place; `channels`: the count to store (unset:
        3 if any image has 3, else 1)."""
        assert self.shapes, "callers raise GankitError before storing no images"
        channels = channels or max(c for c, _, _ in self.shapes)
        mixed = any(c != channels for c, _, _ in self.shapes)
        self._write_index(self.shapes, labels, class_names, note)
        if not mixed:
            os.replace(self.tmp, self.path)  # readers see the old file or the whole new one
            return
        # images at their own channel counts -> a second temporary file at one count
        try:
            _convert(map_store(self.tmp, one_channel_count=False), self.path, channels)
        finally:
            self.tmp.unlink(missing_ok=True)

    def _write_index(self, shapes, labels, class_names, note) -> None:
        index = {"note": note, "labels": None if labels is None else labels.tolist(),
                 "class_names": class_names}
        if len(set(shapes)) == 1:
            index.update(shape=list(shapes[0]), count=len(shapes))
        else:
            index["shapes"] = [list(shape) for shape in shapes]
        data = json.dumps(index, separators=(",", ":")).encode()
        self._file.write(data)
        self._file.write(_TRAILER.pack(len(data), END))
        self._file.close()

    def __exit__(self, kind, error, traceback) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
        if kind is not None:
            self.tmp.unlink(missing_ok=True)


def derive(source: Store, channels: int) -> Path:
    """Write the sibling store of `source` with its images at `channels`; its path."""
    path = with_channels(source.path, channels)
    _convert(source, path, channels)
    return path


def _convert(source: Store, path: Path, channels: int) -> None:
    """`source`'s images -> a store at `channels`, image by image (memory stays bounded)."""
    with Writer(path) as writer:
        for image in source.images():
            writer.add(to_channels(image, channels).numpy())
        writer.finish(source.labels, source.class_names, source.note, channels)


# --------------------------------------------------------------------------------------------
# one writer at a time


@contextlib.contextmanager
def locked(path: Path, on_wait=None) -> Iterator[None]:
    """Hold the lock of `path`'s store while writing it (or deciding to). Processes that want the
    same store wait here; `on_wait(pid)` is called first when another process holds it. Holding
    the lock, any temporary file of this store belongs to a dead writer and is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(f".{path.name}.lock")
    with open(lock, "a+") as file:
        if fcntl is not None:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    file.seek(0)
                    on_wait(file.read().strip() or "?")
                fcntl.flock(file, fcntl.LOCK_EX)  # released by the kernel however the holder ends
            file.truncate(0)
            file.write(str(os.getpid()))
            file.flush()
        for name in (path.name, with_channels(path, 1).name, with_channels(path, 3).name):
            for stale in path.parent.glob(f".{name}.*.tmp"):
                if fcntl is not None or not _alive(stale):
                    stale.unlink(missing_ok=True)
        yield  # the lock is dropped when the file closes


def _alive(tmp: Path) -> bool:
    """Whether the process named in a temporary file's name still runs (lockless platforms)."""
    try:
        os.kill(int(tmp.name.rsplit(".", 2)[-2].split("-")[0]), 0)
    except (ValueError, ProcessLookupError):
        return False
    except OSError:  # exists, but not ours to signal
        return True
    return True
