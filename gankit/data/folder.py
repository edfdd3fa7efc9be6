"""A folder of image files (searched recursively) -> ImageData, with optional labels and boxes."""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from ..config import DataConfig
from ..errors import GankitError
from . import attributes, cache
from .bbox import Box, cub_image_paths, is_cub_root, read_boxes
from .dataset import ImageData, from_decoded, limited
from .image import Preprocess

EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".webp")
# Options that say where things are, not what the decoded pixels become; every other DataConfig
# field is part of the cache key, so a new option invalidates old caches unless it is listed here.
# bbox and labels_csv enter the key as the boxes and labels themselves, so an edited box or label
# file is noticed; channels are applied after the cache, which holds each image at its own
# channel count. mirror acts on batches, after the cache.
_NOT_IN_CACHE_KEY = ("source", "source_b", "root", "download", "cache", "bbox", "labels_csv", "channels",
                     "mirror")


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

    cache_path = _cache_path(folder, image_root, paths, file_boxes, labels, class_names, cfg) \
        if cfg.cache else None
    decoded = cache.load(cache_path) if cache_path else None
    if decoded is None:
        images, kept, note = _decode_all(paths, file_boxes, preprocess, limited(cfg, len(paths)),
                                         progress, folder)
        decoded = cache.Decoded(images, None if labels is None else labels[kept], class_names, note)
        if cache_path:
            cache.save(cache_path, decoded)
    if decoded.note:
        warnings.warn(decoded.note, stacklevel=2)
    return from_decoded(str(folder), decoded.images, decoded.labels, decoded.class_names, cfg)


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
    if cfg.labels_csv:  # only then: keys of runs without a CSV stay as they were
        key["csv_labels"] = [labels.tolist(), class_names]
    return cache.cache_file(folder.resolve().name or "root", key)


def _fingerprint(path: Path) -> list[int] | None:
    try:
        stat = path.stat()
    except OSError:  # a file listed in CUB's images.txt but missing: decoding will report it
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _decode_all(paths: list[Path], boxes: list[Box | None], preprocess: Preprocess, wanted: int,
                progress: bool, folder: Path) -> tuple[list[torch.Tensor], list[int], str]:
    """Decode in order until `wanted` images are in hand: (images, their indices in paths, a note
    on the damaged files skipped)."""
    images, kept, failures = [], [], []
    with tqdm(total=wanted, desc=f"decoding {folder.resolve().name}", unit="img",
              disable=not progress) as bar:
        for i, (path, box) in enumerate(zip(paths, boxes)):
            if len(images) == wanted:
                break
            try:
                images.append(decode_file(path, preprocess, box))
            except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError, ...
                failures.append(f"{path}: {' '.join(str(err).split()) or type(err).__name__}")
                continue
            kept.append(i)
            bar.update()
    if not images:
        raise GankitError(f"no decodable image in {folder}: all {len(failures)} files failed "
                          f"(first: {failures[0]}); replace or remove the damaged files")
    note = ""
    if failures:
        note = (f"skipped {len(failures)} of {len(images) + len(failures)} files that could not "
                f"be decoded (first: {failures[0]})")
    return images, kept, note
