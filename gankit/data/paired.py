"""Paired images for pix2pix: each input image A with its target B.

Three ways to give them (`load_paired`):
    a folder of side-by-side files  each file holds A on the left half and B on the right, the
                                     layout of the reference's facades, maps and edges2shoes
                                     (data.source = FOLDER)
    two folders                     A and B files with the same relative names, e.g. A/x.png
                                     and B/x.jpg (data.source = A, data.source_b = B)
    a built-in pair                 made from the shipped digits, for tests and benchmarks
                                     without downloads (PAIRED_DATASETS, below)

Both sides go through the same preprocessing, and a batch takes the same random crop offsets
and mirroring for A and B (`PairedStream`): the reference draws one set of transform
parameters per pair too, so that an input stays aligned with its target.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from PIL import Image
from tqdm import tqdm

from ..config import DataConfig
from ..errors import GankitError
from ..registry import Registry
from ..seeds import derive_seed
from .builtin import load_digits, load_mnist5k
from .dataset import ImageData, from_decoded, limited
from .folder import image_files
from .image import Preprocess, jittered, to_channels
from .streams import BatchStream
from .unpaired import TwoSets


@dataclass
class PairedData(TwoSets):
    """a: the inputs; b: the targets, b[i] what a[i] should become."""

    def __post_init__(self):
        super().__post_init__()
        assert len(self.a) == len(self.b), "load_paired pairs them one to one"

    @property
    def name(self) -> str:
        return self.a.name if self.a.name == self.b.name else f"{self.a.name} -> {self.b.name}"

    def __len__(self) -> int:
        return len(self.a)


class PairedStream(BatchStream):
    """Batch k as (inputs, targets): one set of indices, and the same crop offsets and flips for
    both sides (the crop generator is replayed for B)."""

    def __init__(self, data: PairedData, batch: int, seed: int, rank: int = 0, world: int = 1,
                 mirror: bool = False):
        super().__init__(data.a, batch, seed, rank, world, mirror)
        self.pairs = data

    def images(self, k: int) -> tuple[tuple[torch.Tensor, torch.Tensor], None]:
        idx = self.indices(k)
        seed = derive_seed(self.seed, "crop", k * self.world + self.rank)
        a = self.pairs.a.batch(idx, torch.Generator().manual_seed(seed))
        crops = torch.Generator().manual_seed(seed)
        b = self.pairs.b.batch(idx, crops)  # the same draws: the same crop offsets as A's
        if self.mirror:
            flip = torch.rand(len(a), generator=crops) < 0.5
            a[flip], b[flip] = a[flip].flip(-1), b[flip].flip(-1)
        return (a, b), None


# name -> loader(cfg, progress) -> PairedData
PAIRED_DATASETS: Registry[Callable[[DataConfig, bool], PairedData]] = Registry("paired dataset", check=callable)


def load_paired(cfg: DataConfig, progress: bool = True) -> PairedData:
    """The pairs `cfg` describes: a built-in pair, a folder of side-by-side files, or (with
    data.source_b) two folders of files with matching names."""
    if cfg.source in PAIRED_DATASETS:
        if cfg.source_b:
            raise GankitError(f"{cfg.source} is a built-in pair (inputs and targets): drop data.source_b")
        return PAIRED_DATASETS.get(cfg.source)(cfg, progress)
    folder = Path(cfg.source).expanduser()
    if not folder.is_dir():
        raise GankitError(
            f"paired data {cfg.source!r} is neither a built-in pair ({', '.join(PAIRED_DATASETS.names())}) "
            "nor an existing folder: give a folder of side-by-side A|B images, or two folders "
            "(--a INPUTS --b TARGETS) whose files have the same names")
    preprocess = Preprocess.from_config(cfg)
    if cfg.source_b:
        pairs = _matched_files(folder, Path(cfg.source_b).expanduser())
    else:
        files = image_files(folder)
        if not files:
            raise GankitError(f"no image files in {folder}: give a folder of side-by-side A|B images "
                              "(.png, .jpg, .webp)")
        pairs = [(path, None) for path in files]
    a, b, failures = [], [], []
    wanted = limited(cfg, len(pairs))
    with tqdm(total=wanted, desc=f"decoding pairs in {folder.resolve().name}", unit="pair",
              disable=not progress) as bar:
        for path_a, path_b in pairs:
            if len(a) == wanted:
                break
            try:
                image_a, image_b = _decode_pair(path_a, path_b, preprocess)
            except GankitError:
                raise
            except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError, ...
                failures.append(f"{path_a}: {' '.join(str(err).split()) or type(err).__name__}")
                continue
            a.append(image_a)
            b.append(image_b)
            bar.update()
    if not a:
        raise GankitError(f"no decodable pair in {folder}: all {len(failures)} failed (first: "
                          f"{failures[0]}); replace or remove the damaged files")
    if failures:
        warnings.warn(f"skipped {len(failures)} of {len(a) + len(failures)} pairs that could not be "
                      f"decoded (first: {failures[0]})", stacklevel=2)
    channels = cfg.channels or max(x.shape[0] for x in a + b)
    cfg = dataclasses.replace(cfg, channels=channels)
    name_b = str(cfg.source_b) if cfg.source_b else str(folder)
    return PairedData(from_decoded(str(folder), a, None, None, cfg), from_decoded(name_b, b, None, None, cfg))


def _decode_pair(path_a: Path, path_b: Path | None, preprocess: Preprocess) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, B) as uint8 (C, h, w), each preprocessed on its own (a side-by-side file: its halves).
    A pair whose two sides differ in size cannot be aligned: a GankitError naming the file (not
    a skipped file, as an undecodable one is: it is the layout that is wrong, not the file)."""
    with Image.open(path_a) as img:
        if path_b is not None:
            with Image.open(path_b) as img_b:
                if img.size != img_b.size:
                    raise GankitError(f"{path_a} is {img.size[0]}x{img.size[1]} but its target {path_b} is "
                                      f"{img_b.size[0]}x{img_b.size[1]}: an input and its target must have "
                                      "the same size, pixel for pixel; resize or crop one of them")
                return preprocess(img), preprocess(img_b)
        width, height = img.size
        if width % 2:
            raise GankitError(f"{path_a} is {width} px wide, an odd width: a side-by-side pair holds A "
                              f"and B at the same size, so its width is even; check the file is an A|B "
                              "pair, or give inputs and targets as two folders (--a, --b)")
        half = width // 2
        return preprocess(img.crop((0, 0, half, height))), preprocess(img.crop((half, 0, width, height)))


def _matched_files(folder_a: Path, folder_b: Path) -> list[tuple[Path, Path]]:
    """Pairs of files with the same relative name up to the extension (A/x.png with B/x.jpg)."""
    if not folder_b.is_dir():
        raise GankitError(f"targets folder {folder_b} does not exist: give the folder of B images "
                          "whose names match the inputs'")
    files_a, files_b = image_files(folder_a), image_files(folder_b)
    for folder, files in ((folder_a, files_a), (folder_b, files_b)):
        if not files:
            raise GankitError(f"no image files in {folder}: give a folder of .png, .jpg or .webp images")
    by_name = {path.relative_to(folder_b).with_suffix(""): path for path in files_b}
    pairs = [(path, by_name.get(path.relative_to(folder_a).with_suffix(""))) for path in files_a]
    unmatched = [str(path.relative_to(folder_a)) for path, match in pairs if match is None]
    if unmatched:
        raise GankitError(f"{len(unmatched)} of {len(files_a)} inputs in {folder_a} have no target "
                          f"of the same name in {folder_b} (first: {unmatched[0]}): pair every "
                          "input with a target file of the same name, or remove it")
    if len(files_b) > len(files_a):
        warnings.warn(f"{len(files_b) - len(files_a)} targets in {folder_b} have no input of the "
                      f"same name in {folder_a}: they are not used", stacklevel=3)
    return pairs  # type: ignore[return-value]


# ---------------------------------------------------------------- built-in pairs (shipped digits)

def _edges(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 1, h, w) digits -> their outlines: the morphological gradient (3x3 max - min),
    an edges -> object task like the reference's edges2shoes."""
    x = images.float()
    dilated = torch.nn.functional.max_pool2d(x, 3, 1, 1)
    eroded = -torch.nn.functional.max_pool2d(-x, 3, 1, 1)
    return (dilated - eroded).clamp_(0, 255).round_().to(torch.uint8)


def mask_lower_half(images: torch.Tensor) -> torch.Tensor:
    """uint8 digits with their lower half blanked: G must complete the digit (inpainting)."""
    out = images.clone()
    out[..., images.shape[-2] // 2:, :] = 0
    return out


def _register_builtin(base: str, loader, kind: str, make_input) -> None:
    name = f"{base}-{kind}"

    def load(cfg: DataConfig, progress: bool = True) -> PairedData:
        # random crops with jitter: the pairs are made at the larger size, then cropped per batch
        stored = jittered(cfg.size, cfg.jitter) if cfg.crop == "random" else cfg.size
        digits = loader(dataclasses.replace(cfg, size=stored, crop="center", jitter=0.0,
                                            channels=cfg.channels or 1), progress)
        targets = digits.images
        inputs = to_channels(make_input(to_channels(targets, 1)), targets.shape[1])
        if stored != cfg.size:
            inputs, targets = list(inputs), list(targets)
        return PairedData(ImageData(inputs, None, None, name, cfg.size, digits.channels),
                          ImageData(targets, None, None, name, cfg.size, digits.channels))

    load.__doc__ = f"{base} digits: {kind} input -> the digit."
    PAIRED_DATASETS.register(name, load)


for _base, _loader in (("mnist5k", load_mnist5k), ("digits", load_digits)):
    _register_builtin(_base, _loader, "edges", _edges)
    _register_builtin(_base, _loader, "masked", mask_lower_half)
