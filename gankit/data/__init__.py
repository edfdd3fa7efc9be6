"""Datasets: every source is decoded once into uint8 pixels as an `ImageData` (a folder's into a
memory-mapped store on disk, data/store.py; built-ins into memory).

    data = load_dataset(DataConfig(source="mnist5k", size=32))
    x = data.batch(torch.arange(64), generator)  # float32 (64, C, 32, 32) in [0, 1]

`source` is a registered name (`DATASETS.names()`) or a folder of images. A registered name wins
over a folder of the same name in the working directory; write ./name for the folder.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..config import DataConfig
from ..errors import GankitError
from . import builtin, torchvision_sets  # noqa: F401  (importing them registers their datasets)
from .dataset import DATASETS, ImageData
from .folder import load_folder
from .image import CROPS
from .unpaired import UnpairedData, load_unpaired

__all__ = ["ATTRIBUTE_DATASETS", "CROPS", "DATASETS", "ImageData", "UnpairedData", "check_config",
           "check_labels", "load_dataset", "load_unpaired"]

ATTRIBUTE_DATASETS = ("celeba",)  # built-ins with attribute columns of their own (label_column alone)


def load_dataset(cfg: DataConfig, progress: bool = True) -> ImageData:
    """The dataset `cfg` describes, decoded, cropped, resized and converted to its channels."""
    check_labels(cfg)
    if cfg.source in DATASETS:
        if cfg.labels_csv:
            raise GankitError(f"--labels-csv labels the images of a folder, but {cfg.source} is a "
                              "built-in dataset: pass the folder of images, or drop --labels-csv")
        return DATASETS.get(cfg.source)(cfg, progress)
    path = Path(cfg.source).expanduser()
    if path.is_file():
        raise GankitError(f"data source {path} is a file, not a folder: pass the folder that holds "
                          "your images")
    if path.is_dir() or _looks_like_path(cfg.source):
        return load_folder(path, cfg, progress)  # which explains a missing folder
    raise GankitError(
        f"data source {cfg.source!r} is neither a built-in dataset ({', '.join(DATASETS.names())}) "
        "nor an existing folder: pass a folder of images or one of those names"
    )


def peek(cfg: DataConfig) -> tuple[int | None, int | None]:
    """(channels, number of classes) of the data `cfg` names, found without decoding it: a dry run
    shapes the nets with them. None where only loading would tell (then a stand-in is used)."""
    from .paired import PAIRED_DATASETS

    if cfg.source in PAIRED_DATASETS:  # all made from shipped digits
        pairs = PAIRED_DATASETS.get(cfg.source)(dataclasses.replace(cfg, limit=8), False)
        return pairs.b.channels, None
    if cfg.source in DATASETS:
        if cfg.source in builtin.SHIPPED:  # shipped in installed packages: eight images, a blink
            data = DATASETS.get(cfg.source)(dataclasses.replace(cfg, limit=8), False)
            return data.channels, (len(data.class_names) if data.class_names else None)
        facts = torchvision_sets.known_facts(cfg.source)
        return (cfg.channels or facts[0], facts[1]) if facts else (cfg.channels, None)
    folder = Path(cfg.source).expanduser() if cfg.source else None
    if folder is None or not folder.is_dir():
        return cfg.channels, None
    from .folder import folder_facts

    return folder_facts(folder, cfg)


def check_source(source: str | None, option: str = "--data") -> None:
    """A built-in name or an existing folder, checked without decoding anything (dry runs)."""
    from .paired import PAIRED_DATASETS

    if source is None or source in DATASETS or source in PAIRED_DATASETS:
        return
    path = Path(source).expanduser()
    if path.is_file():
        raise GankitError(f"{option} {path} is a file, not a folder: pass the folder that holds your images")
    if not path.is_dir():
        raise GankitError(f"{option} {source!r} is neither a built-in dataset ({', '.join(DATASETS.names())}) "
                          "nor an existing folder: pass a folder of images or one of those names")


def _looks_like_path(source: str) -> bool:
    return "/" in source or "\\" in source or source.startswith(("~", "."))


def check_config(cfg: DataConfig) -> None:
    """The data section's options, before anything is decoded; each error names the fix."""
    if cfg.crop not in CROPS:
        raise GankitError(f"option data.crop={cfg.crop!r} is not valid: use one of {', '.join(CROPS)}")
    if cfg.channels not in (None, 1, 3):
        raise GankitError(f"--channels {cfg.channels} is not supported: use 1 or 3")
    if cfg.size < 1:
        raise GankitError(f"option data.size={cfg.size} must be at least 1")
    if cfg.limit is not None and cfg.limit < 1:
        raise GankitError(f"data.limit={cfg.limit} must be at least 1")
    if cfg.workers is not None and cfg.workers < 1:
        raise GankitError(f"data.workers={cfg.workers} must be at least 1 (unset: one per CPU)")
    if cfg.bbox_padding < 0:
        raise GankitError(f"data.bbox_padding={cfg.bbox_padding} must be 0 or more")
    if cfg.jitter < 0 or (cfg.jitter > 0 and cfg.crop != "random"):
        raise GankitError(f"data.jitter={cfg.jitter} needs --crop random and must be 0 or more "
                          "(0.117 makes CycleGAN's 286 -> 256 crops)")
    check_labels(cfg)


def check_labels(data: DataConfig) -> None:
    """One source of class labels, and a labels CSV always with its column (also checked by
    load_dataset, which can be called without a resolved config)."""
    for key in ("labels_csv", "label_column"):
        if getattr(data, key) is not None and not getattr(data, key).strip():
            raise GankitError(f"data.{key} is empty: give a value, or leave the option out")
    if data.labels and (data.labels_csv or data.label_column):
        raise GankitError("data.labels (sub-folder names) and data.labels_csv/label_column (a CSV "
                          "column) both give class labels: drop --labels to use the CSV, or drop "
                          "--labels-csv and --label-column to use the sub-folder names")
    if data.labels_csv and not data.label_column:
        raise GankitError(f"data.labels_csv={data.labels_csv} needs data.label_column: name the "
                          "attribute that becomes the class, e.g. --label-column Blond_Hair")
    if data.label_column and not data.labels_csv and data.source not in ATTRIBUTE_DATASETS:
        raise GankitError(f"data.label_column={data.label_column} needs data.labels_csv: pass the "
                          "CSV that holds that column with --labels-csv (of the built-ins only "
                          f"{', '.join(ATTRIBUTE_DATASETS)} has attributes of its own)")
