"""Pretrained generators by name: what a model is, and where its file is found.

    gankit pretrained list                  the entries, and whether each is on this machine
    gankit pretrained get NAME              find it (or download it) and print its path
    gankit train --init-from NAME ...       fine-tune it; `gankit sample NAME` samples it

An entry is a gankit checkpoint (G, D, G_ema and the config that builds them) with its recipe,
data, size, training budget and sha256. Its file is looked for, in order, in the package's own
`pretrained/` folder, in the folder `$GANKIT_PRETRAINED` names, and in the cache
(`<torch hub dir>/gankit/`); where none has it and the entry has a URL, it is downloaded into the
cache when the network answers (the same find-or-download steps as the Inception and VGG19
weights: `gankit.weights.find_or_download`). Offline without the file: one line saying where
to put it. Every file found is checked against the entry's sha256.

`source_file(source)` turns what `--init-from` and `load_generator` take — a registered name, an
https URL, a run folder or a checkpoint — into a checkpoint file.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import torch

from . import weights as weight_files
from .errors import GankitError
from .registry import Registry

ENV = "GANKIT_PRETRAINED"
PACKAGE_DIR = Path(__file__).parent / "pretrained"


@dataclass(frozen=True)
class Pretrained:
    name: str
    recipe: str
    data: str  # what it was trained on
    size: int
    channels: int
    budget: str  # e.g. "3000 steps, batch 128 (384 kimg)"
    file: str  # the checkpoint's file name, the same in every place it is looked for
    sha256: str  # of the whole file
    url: str | None = None  # where it can be downloaded; None: made locally by its script
    script: str = ""  # what makes it (scripts/...), with its options
    description: str = ""


PRETRAINED: Registry[Pretrained] = Registry("pretrained model", lambda x: isinstance(x, Pretrained))


def cache_dir() -> Path:
    return Path(torch.hub.get_dir()) / "gankit"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def places(entry: Pretrained) -> list[Path]:
    """Where the entry's file is looked for, in order."""
    folders = [PACKAGE_DIR] + ([Path(os.environ[ENV]).expanduser()] if os.environ.get(ENV) else []) + [cache_dir()]
    return [folder / entry.file for folder in folders]


def where(entry: Pretrained) -> Path | None:
    """The entry's file on this machine, or None."""
    return next((path for path in places(entry) if path.is_file()), None)


def find(name: str) -> Path:
    """The checkpoint file of the registered model `name`: found, else downloaded; checked."""
    if name not in PRETRAINED:
        known = ", ".join(PRETRAINED.names()) or "none registered"
        raise GankitError(f"unknown pretrained model {name!r}: use one of {known} (`gankit pretrained list`)")
    entry = PRETRAINED.get(name)
    folders = [path.parent for path in places(entry)]  # the package, $GANKIT_PRETRAINED, the cache
    path = weight_files.find_or_download(
        f"the pretrained model {name}", entry.file, folders, url=entry.url, sha256_prefix=entry.sha256,
        instead=f" (or in the folder ${ENV} names)" + (f"; or make it with {entry.script}" if entry.url is None else ""))
    digest = sha256(path)
    if digest != entry.sha256:
        raise GankitError(f"{path} is not the pretrained model {name}: its sha256 is {digest[:16]}…, "
                          f"the entry's {entry.sha256[:16]}…; delete the file and get it again "
                          f"(`gankit pretrained get {name}`)")
    return path


def source_file(source: str | Path) -> Path:
    """A registered name, an https URL (downloaded into the cache), a run folder or a checkpoint
    file -> the checkpoint file."""
    from .training import checkpoint as ckpt

    text = str(source)
    if text in PRETRAINED:
        return find(text)
    if text.startswith(("https://", "http://")):
        target = cache_dir() / "urls" / Path(urllib.parse.urlsplit(text).path).name
        if target.is_file():
            return target
        if not weight_files.network_reachable(text):
            raise GankitError(f"cannot download {text}: there is no network here; download it "
                              f"elsewhere and give its path (or put it at {target})")
        return weight_files.download(text, target, "")
    return ckpt.resolve_checkpoint(Path(text).expanduser())


def read_index(index: Path) -> list[Pretrained]:
    """The entries an index.yaml lists (written by scripts/make_pretrained.py)."""
    import yaml

    if not index.is_file():
        return []
    try:
        return [Pretrained(**fields) for fields in yaml.safe_load(index.read_text()) or []]
    except (yaml.YAMLError, TypeError) as err:
        raise GankitError(f"{index} is not a list of pretrained entries ({str(err).splitlines()[0][:120]}): "
                          "restore it from the package, or remake it with scripts/make_pretrained.py") from None


def register_builtin_entries() -> None:
    """The entries gankit trains itself, listed in the package's pretrained/index.yaml (each
    with the script that makes it; their files ship beside it)."""
    for entry in read_index(PACKAGE_DIR / "index.yaml"):
        if entry.name not in PRETRAINED:
            PRETRAINED.register(entry.name, entry)


register_builtin_entries()
