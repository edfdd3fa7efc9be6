"""A folder of image files (searched recursively) -> ImageData, with optional labels and boxes."""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import itertools
import math
import multiprocessing
import os
import signal
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..config import DataConfig
from ..errors import GankitError
from . import attributes, store
from .bbox import Box, cub_image_paths, is_cub_root, read_boxes
from .dataset import ImageData, from_decoded, limited
from .image import Preprocess, background_rgb, is_grey

EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".webp")
# Options that say where things are, not what the decoded pixels become; every other DataConfig
# field is part of the cache key, so a new option invalidates old caches unless it is listed here.
# bbox and labels_csv enter the key as the boxes and labels themselves, so an edited box or label
# file is noticed; the store holds the folder's own channel count and other counts are derived
# from it (store.py). mirror acts on batches, after the cache; workers decide only how fast.
_NOT_IN_CACHE_KEY = ("source", "source_b", "root", "download", "cache", "bbox", "labels_csv", "channels",
                     "mirror", "workers")
MIN_FILES_PER_WORKER = 64  # fewer files than this per worker: starting it costs more than it saves


def load_folder(folder: Path, cfg: DataConfig, progress: bool = True) -> ImageData:
    preprocess = Preprocess.from_config(cfg)  # first: a bad option must not read as bad files
    image_root, paths = _image_paths(folder, cfg)
    labels, class_names = None, None
    if cfg.labels:
        labels, class_names = _labels_from_subfolders(paths, image_root)
    elif cfg.labels_csv:
        paths, labels, class_names = _labels_from_csv(paths, image_root, cfg)  # rowless dropped
    boxes = read_boxes(cfg.bbox, folder) if cfg.bbox else {}
    file_boxes = [boxes.get(os.path.realpath(path)) if boxes else None for path in paths]
    return load_files(str(folder), folder, image_root, paths, cfg, preprocess, labels, class_names,
                      file_boxes, labels_in_key=bool(cfg.labels_csv), progress=progress)


def load_files(name: str, folder: Path, image_root: Path, paths: list[Path], cfg: DataConfig,
               preprocess: Preprocess, labels: torch.Tensor | None = None, class_names: list[str] | None = None,
               boxes: list[Box | None] | None = None, labels_in_key: bool = False,
               progress: bool = True) -> ImageData:
    """Image files (with their labels and boxes, one per path) -> ImageData: decoded by parallel
    workers into the dataset store and mapped from it (or into memory with the cache off). Folders
    and datasets made of image files (CelebA) share it. `labels_in_key`: the labels come from a
    table rather than from the file names, so they are part of the store's key."""
    boxes = boxes if boxes is not None else [None] * len(paths)
    wanted = limited(cfg, len(paths))
    workers = decode_workers(cfg, wanted)

    def decode(keep: Callable[[np.ndarray], None], spool: Path | None = None
               ) -> tuple[torch.Tensor | None, str]:
        """Decode into `keep`: (the labels of the images kept, a note on damaged files); `spool`:
        see _decoder."""
        kept, note = _decode_all(paths, boxes, preprocess, wanted, progress, folder, workers, keep, spool)
        return None if labels is None else labels[kept], note

    stored = None
    if cfg.cache:
        path = _cache_path(folder, image_root, paths, boxes, labels if labels_in_key else None, class_names, cfg)
        stored = _mapped(path, cfg.channels, decode, class_names, folder, progress)
    if stored is None:  # no cache, or it could not be written: decoded into memory
        images: list[np.ndarray] = []
        kept_labels, note = decode(images.append)
        if note:
            warnings.warn(note, stacklevel=3)
        return from_decoded(name, [torch.from_numpy(image) for image in images], kept_labels,
                            class_names, cfg)
    if stored.note:
        warnings.warn(stored.note, stacklevel=3)
    images = stored.images() if cfg.crop == "random" else stored.tensor()  # views of the mapping
    return ImageData(images, stored.labels, stored.class_names, name, cfg.size, stored.channels)


def _mapped(path: Path, channels: int | None, decode, class_names: list[str] | None, folder: Path,
            progress: bool) -> store.Store | None:
    """The store at `path` (or its sibling at `channels`), mapped; decoded and written first when
    absent, by this process while others that want it wait. None when it cannot be written."""
    found = _usable(path, channels)
    if found is not None:  # the usual case, and no lock needed: stores appear whole or not at all
        return found

    def waiting(pid: str) -> None:
        if progress:
            print(f"waiting for process {pid}, which is decoding {folder} into the dataset store",
                  file=sys.stderr, flush=True)

    try:
        with store.locked(path, waiting):  # again: written while this process waited?
            own = store.open_store(path)  # the folder's own channels (warns when it is damaged)
            if own is not None and (channels is None or own.channels == channels):
                return own
            sibling = store.open_store(store.with_channels(path, channels)) if channels else None
            if sibling is not None:
                return sibling
            if own is None:
                with store.Writer(path) as writer:
                    labels, note = decode(writer.add, writer.scratch("decoded"))
                    writer.finish(labels, class_names, note)
                own = store.map_store(path)  # just written: a failure here is a bug, not a torn file
            if channels is None or own.channels == channels:
                return own
            return store.map_store(store.derive(own, channels))
    except OSError as err:  # a full disk, a read-only cache folder, a filesystem without locks
        warnings.warn(f"could not write the dataset store {path} ({err}); decoding into memory "
                      "instead (again next run): free space there or set $GANKIT_CACHE to a "
                      "writable folder", stacklevel=3)
        return None


def _usable(path: Path, channels: int | None) -> store.Store | None:
    """The store that serves `channels`, if one is there whole (quietly: checked again under the
    lock, which warns about a damaged one)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        own = store.open_store(path)
        if own is not None and (channels is None or own.channels == channels):
            return own
        return store.open_store(store.with_channels(path, channels)) if channels else None


def decode_file(path: Path, preprocess: Preprocess, box: Box | None) -> torch.Tensor:
    """One image file -> (C, h, w) uint8, C = 1 for greyscale files; a GIF gives its first frame."""
    with Image.open(path) as img:
        return preprocess(img, box)


def _image_paths(folder: Path, cfg: DataConfig) -> tuple[Path, list[Path]]:
    """(the folder that labels are relative to, the image files in a fixed order)."""
    if not folder.is_dir():
        raise GankitError(f"data folder {folder.absolute()} does not exist: check the path, or "
                          "pass a built-in dataset name (`gankit list datasets`)")
    bbox = os.path.realpath(Path(cfg.bbox).expanduser()) if cfg.bbox else None
    if bbox == os.path.realpath(folder) and is_cub_root(folder):
        # The CUB-200-2011 root itself: its images are the ones images.txt lists.
        image_root, paths = folder / "images", cub_image_paths(folder)
    else:
        image_root, paths = folder, _scan(folder)
    if not paths:
        raise GankitError(f"no image files in {folder}: put images there with one of the "
                          f"extensions {' '.join(EXTENSIONS)} (sub-folders are searched too)")
    return image_root, paths


def image_files(folder: Path) -> list[Path]:
    """The image files under `folder`, searched recursively, hidden entries skipped, sorted."""
    return _scan(folder)


def _scan(folder: Path) -> list[Path]:
    found, seen = [], set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop, or a second link to a folder already read
            dirnames.clear()
            continue
        seen.add(real)
        # Hidden entries are tool droppings (.ipynb_checkpoints, macOS ._ files), not images.
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += [Path(dirpath, f) for f in filenames
                  if not f.startswith(".") and os.path.splitext(f)[1].lower() in EXTENSIONS]
    return sorted(found)


def _labels_from_subfolders(paths: list[Path], root: Path) -> tuple[torch.Tensor, list[str]]:
    classes = [path.relative_to(root).parts[0] if path.parent != root else None for path in paths]
    loose = [path for path, name in zip(paths, classes) if name is None]
    if loose:
        raise GankitError(
            f"labels come from sub-folder names, but {len(loose)} images lie directly in {root} "
            f"(e.g. {loose[0].name}): move them into a sub-folder named after their class, "
            "or train without --labels"
        )
    class_names = sorted(set(classes))
    index = {name: i for i, name in enumerate(class_names)}
    return torch.tensor([index[name] for name in classes], dtype=torch.int64), class_names


def _labels_from_csv(paths: list[Path], root: Path, cfg: DataConfig
                     ) -> tuple[list[Path], torch.Tensor, list[str]]:
    """(the images that have a row in cfg.labels_csv, their classes in cfg.label_column, names)."""
    assert cfg.label_column, "config validation pairs labels_csv with label_column"
    table = attributes.read_table(cfg.labels_csv, cfg.label_column)
    relpaths = [path.relative_to(root).as_posix() for path in paths]
    classes = [table.class_of(relpath) for relpath in relpaths]
    kept = [i for i, klass in enumerate(classes) if klass is not None]
    if not kept:
        raise GankitError(
            f"none of the {len(paths)} images in {root} has a row in {table.path} (images such as "
            f"{relpaths[0]}, rows such as {table.example()}): the CSV's first column must name "
            "the files, relative to the data folder or by their file names"
        )
    if len(kept) < len(paths):
        # Skipped with a warning, not an error: a CSV trimmed to some rows is a natural way to
        # train on a subset, and rows without images are fine too, so the CSV and folder need
        # only overlap. The warning still catches a renamed or mistyped file.
        rowless = [relpath for relpath, klass in zip(relpaths, classes) if klass is None]
        warnings.warn(f"skipped {len(rowless)} of {len(paths)} images that have no row in "
                      f"{table.path} (first: {rowless[0]}); add rows for them to train on them",
                      stacklevel=3)
    labels = torch.tensor([classes[i] for i in kept], dtype=torch.int64)
    return [paths[i] for i in kept], labels, table.class_names


def _cache_path(folder: Path, image_root: Path, paths: list[Path], boxes: list[Box | None],
                labels: torch.Tensor | None, class_names: list[str] | None, cfg: DataConfig) -> Path:
    """Keyed by every file's name, size, mtime and box, by the options that shape pixels, and by
    CSV labels (sub-folder labels follow from the file names)."""
    options = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _NOT_IN_CACHE_KEY}
    if not cfg.jitter:  # keys of runs without jitter stay as they were before the option existed
        options.pop("jitter")
    files = [[path.relative_to(image_root).as_posix(), _fingerprint(path), box]
             for path, box in zip(paths, boxes)]
    key = {"files": files, "options": options}
    if labels is not None:  # labels from a table (CSV, CelebA's attributes); keys without stay as they were
        key["csv_labels"] = [labels.tolist(), class_names]
    return store.store_path(folder.resolve().name or "root", key)


def _fingerprint(path: Path) -> list[int] | None:
    try:
        stat = path.stat()
    except OSError:  # a file listed in CUB's images.txt but missing: decoding will report it
        return None
    return [stat.st_size, stat.st_mtime_ns]


def decode_workers(cfg: DataConfig, n: int) -> int:
    """How many processes decode `n` files: cfg.workers (unset: one per CPU this process may use,
    at most 8), fewer when each would get under MIN_FILES_PER_WORKER files."""
    if cfg.workers is not None:
        wanted = cfg.workers
    else:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        wanted = min(8, cpus or 1)
    if multiprocessing.current_process().daemon:  # e.g. a DataLoader worker: may not have children
        return 1
    return max(1, min(wanted, n // MIN_FILES_PER_WORKER))


def _decode_all(paths: list[Path], boxes: list[Box | None], preprocess: Preprocess, wanted: int,
                progress: bool, folder: Path, workers: int, keep: Callable[[np.ndarray], None],
                spool: Path | None = None) -> tuple[list[int], str]:
    """Decode in order until `wanted` images went to `keep` (uint8 (C, h, w) each, in path order
    whatever the number of workers): (their indices in paths, a note on the damaged files
    skipped)."""
    kept, failures = [], []
    with _decoder(preprocess, workers, spool) as decode, \
            tqdm(total=wanted, desc=f"decoding {folder.resolve().name}", unit="img",
                 disable=not progress) as bar:
        start = 0
        while len(kept) < wanted and start < len(paths):
            # exactly the files still needed, so a limit decodes no more than it keeps
            stop = start + wanted - len(kept)
            for i, result in zip(range(start, stop), decode(paths[start:stop], boxes[start:stop])):
                if isinstance(result, str):
                    failures.append(result)
                    continue
                keep(result)
                kept.append(i)
                bar.update()
            start = stop
    if not kept:
        raise GankitError(f"no decodable image in {folder}: all {len(failures)} files failed "
                          f"(first: {failures[0]}); replace or remove the damaged files")
    note = ""
    if failures:
        note = (f"skipped {len(failures)} of {len(kept) + len(failures)} files that could not "
                f"be decoded (first: {failures[0]})")
    return kept, note


@contextlib.contextmanager
def _decoder(preprocess: Preprocess, workers: int, spool: Path | None = None):
    """decode(paths, boxes) -> an iterator of results in order, each a uint8 (C, h, w) array or
    the error that file raised; with workers > 1 they come from a pool of processes.

    `spool` (a temporary file name beside the store being written): the workers hand their pixels
    over in files named after it, one per chunk, and send only the shapes through the pool's pipe.
    Pickled through the pipe, 256-px JPEGs decoded slower with 2 workers than with 1 on 2 cores
    (2.67 s vs 2.01 s for 2,000; 1.03 s with the pixels left in the workers): the pipe's copies
    and wake-ups cost the parent more than a decode. Without a spool (no store: decoding into
    memory) the pixels still come through the pipe."""
    if workers == 1:
        yield lambda paths, boxes: map(_decode_one, paths, boxes, [preprocess] * len(paths))
        return
    # fork where it is safe and cheap (Linux: the children inherit the imports); elsewhere spawn
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    chunks = itertools.count()  # spool file numbers, unique across calls of decode
    # an executor rather than multiprocessing.Pool: a worker that dies (the OOM killer) breaks it and
    # the wait ends in an error; a Pool replaces the worker and waits for the lost chunk for ever
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method),
                               initializer=_start_worker, initargs=(preprocess,))
    try:
        def decode(paths, boxes):
            chunk = max(1, min(32, len(paths) // (4 * workers)))  # few messages, balanced ends
            if spool is None:
                return pool.map(_decode_in_worker, zip(paths, boxes), chunksize=chunk)
            tasks = [(_spool_file(spool, next(chunks)), paths[i:i + chunk], boxes[i:i + chunk], os.getpid())
                     for i in range(0, len(paths), chunk)]
            return _unspooled([task[0] for task in tasks], pool.map(_decode_to_file, tasks))
        yield decode
    except BrokenProcessPool:
        raise GankitError(f"one of the {workers} processes decoding the images died (killed, perhaps for "
                          "want of memory); nothing was stored: rerun with fewer decode workers, e.g. "
                          "--set data.workers=1") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # chunks under way end (one per worker at most)
        if spool is not None:  # chunks decoded ahead of an error
            for left in spool.parent.glob(f"{glob.escape(spool.stem)}*.tmp"):
                left.unlink(missing_ok=True)


def _spool_file(spool: Path, number: int) -> Path:
    return spool.with_name(f"{spool.stem}{number}.tmp")


def _unspooled(files: list[Path], shapes: Iterator[list[tuple[int, ...] | str]]
               ) -> Iterator[np.ndarray | str]:
    """Each chunk's images read back from its spool file (removed once read), in order."""
    for file, chunk in zip(files, shapes):
        pixels = _read_spool(file)
        images = [shape for shape in chunk if not isinstance(shape, str)]
        if pixels.size != sum(math.prod(shape) for shape in images):  # a bug, never a user's error
            raise RuntimeError(f"{file} holds {pixels.size} bytes, not the pixels of {images}")
        offset = 0
        for shape in chunk:
            if isinstance(shape, str):  # the error a damaged file raised
                yield shape
                continue
            size = math.prod(shape)
            yield pixels[offset:offset + size].reshape(shape)
            offset += size


def _read_spool(file: Path) -> np.ndarray:
    pixels = np.fromfile(file, dtype=np.uint8)
    try:
        file.unlink()
    except PermissionError:  # Windows: a virus scanner has it open; _decoder's sweep removes it
        pass
    return pixels


_worker_preprocess: Preprocess | None = None  # set in each worker process by _start_worker


def _start_worker(preprocess: Preprocess) -> None:
    global _worker_preprocess
    _worker_preprocess = preprocess
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it ends us
    torch.set_num_threads(1)  # one process per CPU already


def _decode_in_worker(task: tuple[Path, Box | None]) -> np.ndarray | str:
    return _decode_one(task[0], task[1], _worker_preprocess)


def _decode_to_file(task: tuple[Path, list[Path], list[Box | None], int]) -> list[tuple[int, ...] | str]:
    """Decode a chunk into its spool file, image after image: their shapes (or errors)."""
    file, paths, boxes, parent = task
    if os.getppid() != parent:  # spawned workers outlive a killed parent: spool nothing after
        return []               # the next writer's sweep (forked ones hold its lock until they end)
    results: list[tuple[int, ...] | str] = []
    with open(file, "wb") as out:
        for path, box in zip(paths, boxes):
            result = _decode_one(path, box, _worker_preprocess)
            if not isinstance(result, str):
                assert result.dtype == np.uint8, result.dtype  # the parent reads the bytes as uint8
                out.write(memoryview(np.ascontiguousarray(result)).cast("B"))
                result = result.shape
            results.append(result)
    return results


def _decode_one(path: Path, box: Box | None, preprocess: Preprocess) -> np.ndarray | str:
    try:
        return decode_file(path, preprocess, box).numpy()
    except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError, ...
        return f"{path}: {' '.join(str(err).split()) or type(err).__name__}"


def folder_facts(folder: Path, cfg: DataConfig) -> tuple[int, int | None]:
    """(channels, classes or None) of a folder's images from their headers alone (a dry run shapes
    the nets with them; PIL reads no pixels until asked): classes from sub-folder names when
    labels come from them, None when a CSV gives them."""
    image_root, paths = _image_paths(folder, cfg)
    background = background_rgb(cfg.background)
    grey = True
    for path in paths:
        try:
            with Image.open(path) as img:
                grey = grey and is_grey(img, background)
        except (OSError, ValueError):  # the real load skips unreadable files with a warning
            continue
        if not grey:
            break
    classes = None
    if cfg.labels:  # sub-folder names (load_folder's rules); a CSV's classes need the CSV read
        classes = len({path.relative_to(image_root).parts[0] for path in paths if path.parent != image_root}) or None
    return (cfg.channels or (1 if grey else 3)), classes

