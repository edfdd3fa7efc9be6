"""A trained translator (CycleGAN, pix2pix), loaded from a checkpoint or run folder, and the
translation of single images or whole folders with it.

    T = load_translator("runs/h2z")
    zebras = T.translate(horses, "a2b")                       # (N, C, H, W) in [0, 1]
    translate_folder("runs/h2z", "photos/", "out/", "a2b")    # a folder of PNGs, same relative names
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .config import TrainConfig, from_dict, upgrade_saved_config
from .errors import GankitError
from .training import checkpoint as ckpt
from .training.device import select_device
from .variants import DataSpec, get_recipe
from .visualize import to_unit_range

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


class Translator:
    """The EMA generator(s) of a translation checkpoint (CycleGAN: both directions; pix2pix: a2b),
    rebuilt from the config stored inside it."""

    def __init__(self, module: torch.nn.Module, config: TrainConfig, step: int, device: torch.device):
        self.module, self.config, self.step, self.device = module, config, step, device
        self.size, self.channels = module.size, module.channels

    def check_direction(self, direction: str) -> None:
        directions = self.module.directions
        if direction not in directions:
            names = {"a2b": "a2b (domain A to B)", "b2a": "b2a (B to A)"}
            raise GankitError(f"--direction {direction!r} is not a direction of this model: use "
                              f"{' or '.join(names.get(d, d) for d in directions)}")

    @torch.no_grad()
    def translate(self, images: torch.Tensor, direction: str = "a2b", batch_size: int = 16) -> torch.Tensor:
        """(N, C, H, W) floats in [0, 1] of one domain -> the other's, the same shape, in [0, 1];
        `direction` is a2b or (two-way models) b2a. H and W must be multiples of 4."""
        from .visualize import from_unit_range

        self.check_direction(direction)
        out = [to_unit_range(self.module(from_unit_range(chunk, self.module.output_range).to(self.device),
                                         direction), self.module.output_range).cpu()
               for chunk in images.split(batch_size)]
        return torch.cat(out) if out else torch.empty(0)


def load_translator(path: str | Path, device: str = "cpu") -> Translator:
    """Load the (EMA) generators of a translation checkpoint file or run folder."""
    state = ckpt.load_checkpoint(path)
    config = from_dict(TrainConfig, upgrade_saved_config(state["config"]), "checkpoint config")
    recipe = get_recipe(config.recipe)
    if recipe.task not in ("unpaired", "paired"):
        raise GankitError(f"{path} is not a CycleGAN checkpoint, nor a pix2pix one (it holds a {config.recipe} model, "
                          "which generates images from noise): give a run of `gankit translate "
                          "train`, or use `gankit sample` for this one")
    channels = state.get("data", {}).get("channels") or config.data.channels or 3
    G, _ = recipe.make(config.model, DataSpec(size=config.data.size, channels=channels))
    try:
        G.load_state_dict(state["G_ema"])
    except (KeyError, RuntimeError) as err:
        raise GankitError(f"checkpoint {path} does not match its own config ({str(err)[:160]}): it "
                          "was damaged or edited; use another checkpoint") from None
    device_ = select_device(device)
    return Translator(G.to(device_).eval(), config, int(state["step"]), device_)


@dataclass
class FolderTranslation:
    translated: list[Path]  # the files written
    failed: list[Path] = field(default_factory=list)  # inputs that could not be decoded (skipped)
    step: int = 0  # the training step of the model used


def translate_folder(checkpoint: str | Path, source: str | Path, output: str | Path, direction: str = "a2b",
                     batch: int = 16, device: str = "cpu") -> FolderTranslation:
    """Translate an image file, or every image in a folder (recursively), with a trained
    translator. A file gives one file (`output` names it); a folder gives a folder of PNGs with the
    same relative names. Images are cropped and resized to the training size as in training (a
    random training crop becomes the centre one: at test time there is no single random answer).
    Undecodable files in a folder are skipped with a warning; a lone undecodable file is an error."""
    from .data.folder import decode_file, image_files
    from .data.image import Preprocess, to_channels
    from .visualize import grid_image, save_image_atomic

    source, output = Path(source), Path(output)
    if batch < 1:
        raise GankitError(f"--batch {batch}: use at least 1")
    if not source.exists():
        raise GankitError(f"input {source} does not exist: give an image file or a folder of images")
    if source.is_dir():
        if output.is_file():
            raise GankitError(f"output {output} is a file, but the input is a folder: give a folder name")
        files = image_files(source)
        if not files:
            raise GankitError(f"no image files in {source}: give a folder with .png, .jpg or .webp images")
        targets = [output / path.relative_to(source).with_suffix(".png") for path in files]
    else:
        if source.suffix.lower() not in IMAGE_SUFFIXES + (".bmp", ".gif"):
            raise GankitError(f"input {source} is not an image file: give a .png, .jpg or .webp file, or a folder")
        if output.suffix.lower() not in IMAGE_SUFFIXES:
            raise GankitError(f"output {output}: for one input image give a file name ending in .png, "
                              ".jpg or .webp")
        files, targets = [source], [output]
    translator = load_translator(checkpoint, device=device)
    translator.check_direction(direction)
    data = translator.config.data
    preprocess = Preprocess.from_config(dataclasses.replace(data, crop="center" if data.crop == "random" else data.crop))
    written, failed = [], []
    for start in range(0, len(files), batch):
        chunk, decoded = [], []
        for path, target in zip(files[start:start + batch], targets[start:start + batch]):
            try:
                decoded.append(to_channels(decode_file(path, preprocess, None), translator.channels))
                chunk.append(target)
            except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError, ...
                if len(files) == 1:
                    raise GankitError(f"cannot decode {path} ({str(err)[:120]}): give a readable image") from None
                failed.append(path)
        if not decoded:
            continue
        images = translator.translate(torch.stack(decoded).float().div_(255), direction, batch)
        for image, target in zip(images, chunk):
            written.append(save_image_atomic(grid_image(image[None], nrow=1, padding=0), target))
    if failed:
        warnings.warn(f"skipped {len(failed)} files that could not be decoded (first: {failed[0]})")
    return FolderTranslation(written, failed, translator.step)
