"""Class labels from one column of an attribute CSV, e.g. CelebA's list_attr_celeba.csv.

    image_id,5_o_Clock_Shadow,Arched_Eyebrows,...,Blond_Hair,...
    000001.jpg,-1,1,...,-1,...

The first column names each image, relative to the data folder or by its basename. The classes
are the column's distinct values, sorted; CelebA's 1 / -1 read as "Blond_Hair" / "not Blond_Hair".
CelebA's original space-separated list_attr_celeba.txt (a row count, the attribute names, then
the rows) is read too.
"""

from __future__ import annotations

import csv
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import GankitError

_CLASH = object()  # by_base value when rows with the same basename but other folders disagree


@dataclass(frozen=True)
class AttributeTable:
    path: Path
    column: str
    by_name: dict[str, str]  # file name as the CSV writes it (posix, no leading ./) -> value
    by_base: dict[str, object]  # basename -> value, or _CLASH
    class_names: list[str]  # class index -> readable name
    index: dict[str, int]  # value -> class index

    def class_of(self, relpath: str) -> int | None:
        """The class of the image at `relpath` (posix, relative to the data folder); None: no row."""
        value = self.by_name.get(relpath)
        if value is None:
            base = relpath.rsplit("/", 1)[-1]
            value = self.by_base.get(base)
            if value is _CLASH:
                raise GankitError(
                    f"{relpath}: rows of {self.path} in different folders share its name {base} "
                    "and disagree: write the file names in the CSV relative to the data folder"
                )
        return None if value is None else self.index[value]

    def example(self) -> str:
        return next(iter(self.by_name))


def plus_minus_names(column: str) -> list[str]:
    """Class names of a 1 / -1 attribute: index 0 is -1, index 1 is 1 (as in torchvision's 0 / 1)."""
    return [f"not {column}", column]


def find_column(header: list[str], column: str, where: str) -> int:
    """The index of `column` in `header`; a missing column names close and available ones."""
    if column in header:
        return header.index(column)
    named = [name for name in header if name]
    close = [name for name in named if name.lower() == column.lower()] \
        or difflib.get_close_matches(column, named, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    shown = ", ".join(named[:6]) + (f", ... ({len(named)} in all)" if len(named) > 6 else "")
    raise GankitError(f"column {column!r} is not in {where}: {hint}name one of its columns with "
                      f"--label-column ({shown})")


def read_table(csv_file: str, column: str) -> AttributeTable:
    """Read `column` of the attribute CSV `csv_file` (a path relative to the working directory)."""
    path = Path(csv_file).expanduser()
    if not path.is_file():
        raise GankitError(f"labels CSV {path.absolute()} not found: pass the attribute CSV "
                          "(e.g. list_attr_celeba.csv) with --labels-csv")
    header, rows = _read_rows(path)
    if len(header) < 2:
        raise GankitError(f"labels CSV {path} needs a header row of the file-name column and at "
                          f"least one attribute column, not {','.join(header)!r}: fix its first line")
    if column == header[0]:
        raise GankitError(f"column {column!r} of {path} holds the file names: name an attribute "
                          f"column with --label-column, e.g. {header[1]}")
    where = 1 + find_column(header[1:], column, f"labels CSV {path}")
    by_name: dict[str, str] = {}
    for number, cells in rows:
        name = _file_name(cells[0])
        value = cells[where].strip() if where < len(cells) else ""
        if not name:
            raise GankitError(f"{path} line {number} has no file name in its first column: fill "
                              "it in or delete the line")
        if not value:
            # An empty cell is a damaged or half-edited file; guessing a class would train on noise.
            raise GankitError(f"{path} line {number} ({name}) has no value in column {column!r}: "
                              "fill it in or delete the line")
        if by_name.setdefault(name, value) != value:
            raise GankitError(f"{path} line {number} repeats {name} with another {column} value "
                              f"({value!r}, before {by_name[name]!r}): keep one of the rows")
    if not by_name:
        raise GankitError(f"labels CSV {path} has a header but no rows: add one row per image")

    by_base: dict[str, object] = {}
    for name, value in by_name.items():
        base = name.rsplit("/", 1)[-1]
        by_base[base] = value if by_base.get(base, value) == value else _CLASH

    values = set(by_name.values())
    if values <= {"-1", "1"}:
        # Both classes even when the rows hold one: class 1 is "<column>" whichever rows are kept,
        # as in the built-in celeba.
        ordered, class_names = ["-1", "1"], plus_minus_names(column)
    else:
        ordered = _sorted_values(values)
        class_names = ordered
    index = {value: i for i, value in enumerate(ordered)}
    return AttributeTable(path, column, by_name, by_base, class_names, index)


def _read_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """(header, (line number, cells) of each non-blank row), the rows parsed as they are read:
    CelebA's 200,000 rows of 41 cells held at once would cost seconds of garbage collection."""
    try:
        # utf-8-sig: spreadsheet programs start their CSV exports with a byte-order mark
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise GankitError(f"labels CSV {path} is not UTF-8 text ({err.reason} at byte {err.start}): "
                          "save it as a UTF-8 CSV") from None
    lines = text.splitlines()
    if lines and lines[0].strip().isdigit():
        # CelebA's original .txt: a row count, the attribute names (no name for the file column),
        # then rows split by runs of spaces.
        header = ["image_id", *(lines[1].split() if len(lines) > 1 else [])]
        rows = ((number, line.split()) for number, line in enumerate(lines[2:], start=3))
    else:
        reader = csv.reader(lines)
        header = [name.strip() for name in next(reader, [])]
        rows = ((reader.line_num, cells) for cells in reader)
    return header, ((number, cells) for number, cells in rows if "".join(cells).strip())


def _file_name(cell: str) -> str:
    return cell.strip().replace("\\", "/").removeprefix("./")


def _sorted_values(values: set[str]) -> list[str]:
    """Numbers in numeric order (2 before 10), anything else in text order."""
    try:
        return sorted(values, key=lambda value: (float(value), value))
    except ValueError:
        return sorted(values)
