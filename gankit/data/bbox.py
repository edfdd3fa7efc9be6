"""Bounding-box annotations: a CSV of (file, x, y, w, h) or a CUB-200-2011 root.

Boxes are keyed by the real path of their image, so they match whichever folder (the CUB root,
its images/ folder or one class folder) the images are read from.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from ..errors import GankitError

Box = tuple[float, float, float, float]  # x, y, w, h in pixels of the displayed image


def is_cub_root(path: Path) -> bool:
    return (path / "images.txt").is_file() and (path / "bounding_boxes.txt").is_file()


def cub_image_paths(root: Path) -> list[Path]:
    """The images of a CUB-200-2011 root in images.txt order ("id relpath" under root/images)."""
    table = _read_cub_table(root / "images.txt", 1)
    return [root / "images" / fields[0] for fields in table.values()]


def read_boxes(bbox: str, data_folder: Path) -> dict[str, Box]:
    """Real image path -> box, from a CSV (files relative to `data_folder`) or a CUB root."""
    path = Path(bbox).expanduser()
    if path.is_dir() and is_cub_root(path):
        relpaths = _read_cub_table(path / "images.txt", 1)
        boxes = _read_cub_table(path / "bounding_boxes.txt", 4)
        return {os.path.realpath(path / "images" / relpaths[key][0]):
                _box(boxes[key], path, f"id {key}") for key in relpaths.keys() & boxes.keys()}
    if path.is_file():
        return _read_csv(path, data_folder)
    raise GankitError(
        f"bounding boxes {path} are neither a CSV file (file,x,y,w,h) nor a CUB-200-2011 folder "
        "(with images.txt and bounding_boxes.txt): pass one of those"
    )


def _read_cub_table(path: Path, columns: int) -> dict[str, list[str]]:
    """One of CUB's "id value ..." text files -> {id: [value, ...]}."""
    table = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != columns + 1:
            raise GankitError(f"{path} line {number} should hold an id and {columns} value(s), "
                              f"not {line!r}: restore the file from the CUB-200-2011 archive")
        table[fields[0]] = fields[1:]
    return table


def _read_csv(path: Path, data_folder: Path) -> dict[str, Box]:
    boxes = {}
    with open(path, newline="") as file:
        for number, row in enumerate(csv.reader(file), start=1):
            row = [field.strip() for field in row]
            if not any(row):
                continue
            if number == 1 and len(row) == 5 and not _is_number(row[1]):
                continue  # a header row
            if len(row) != 5:
                raise GankitError(f"{path} line {number} should be file,x,y,w,h, not "
                                  f"{','.join(row)!r}: fix that line")
            boxes[os.path.realpath(data_folder / row[0])] = _box(row[1:], path, f"line {number}")
    return boxes


def _box(values: list[str], path: Path, where: str) -> Box:
    try:
        box = tuple(float(value) for value in values)
    except ValueError:
        box = ()
    if len(box) != 4 or not all(map(math.isfinite, box)) or box[2] <= 0 or box[3] <= 0:
        raise GankitError(f"{path} {where}: the box {' '.join(values)!r} is not x, y and a "
                          "positive w, h: fix or remove it")
    return box


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
