"""Datasets: every source is decoded once into uint8 memory as an `ImageData`.

    data = load_dataset(DataConfig(source="mnist5k", size=32))
    x = data.batch(torch.arange(64), generator)  # float32 (64, C, 32, 32) in [0, 1]

`source` is a registered name (`DATASETS.names()`) or a folder of images. A registered name wins
over a folder of the same name in the working directory; write ./name for the folder.
"""

from __future__ import annotations

from pathlib import Path

from ..config import DataConfig, check_labels
from ..errors import GankitError
from ..registry import Registry
from . import builtin, torchvision_sets  # noqa: F401  (importing them registers their datasets)
from .dataset import DATASETS, ImageData
from .folder import load_folder
from .unpaired import UnpairedData, load_unpaired

__all__ = ["DATASETS", "DATA_KINDS", "ImageData", "UnpairedData", "load_dataset", "load_unpaired"]


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


def _looks_like_path(source: str) -> bool:
    return "/" in source or "\\" in source or source.startswith(("~", "."))


# A recipe's `data_kind` -> loader(DataConfig, progress): one dataset, or two unpaired domains.
DATA_KINDS = Registry("data kind", check=callable)
DATA_KINDS.register("images", load_dataset)
DATA_KINDS.register("unpaired", load_unpaired)
