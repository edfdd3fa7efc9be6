"""The generation task: G draws images from noise (and, if conditional, a class label).

Data: one dataset (`ImageData`), batched as (images, labels) with labels None unless the run is
conditional. Updates: joint, alternating, two_phase (training/updates.py). Sample sheet: a fixed
set of latents, one row per class for a conditional G. Evaluation: KID of samples drawn with
their own latents, labels at the data's class frequencies.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..config import DataConfig, TrainConfig
from ..data import ImageData, load_dataset
from ..data.streams import BatchStream
from ..errors import GankitError
from ..models.conditional import class_rows
from ..nn.equalized import per_sample_noise
from ..seeds import derive_seed
from ..variants import DataSpec, get_recipe
from ..visualize import to_unit_range
from .base import TASKS, Task

Tensor = torch.Tensor
STANDIN_CLASSES = 2  # the class count nets are shaped with before the data says how many


class GenerationTask(Task):
    name = "generation"
    description = "noise (+ class label) -> image"

    @classmethod
    def check(cls, config: TrainConfig) -> None:
        if config.data.source_b:
            raise GankitError(f"data.source_b names a second domain, which only translation recipes use "
                              f"(the {config.recipe} recipe trains on one set of images): drop it")

    @classmethod
    def load_data(cls, cfg: DataConfig, progress: bool = True) -> ImageData:
        return load_dataset(cfg, progress)

    @classmethod
    def data_spec(cls, config: TrainConfig, data: ImageData | None = None) -> DataSpec:
        if data is None:
            return DataSpec(config.data.size, config.data.channels or 3,
                            STANDIN_CLASSES if config.conditional else 0)
        return DataSpec(data.size, data.channels, num_classes(data) if config.conditional else 0)

    def __init__(self, config: TrainConfig, data: ImageData, G: torch.nn.Module, device: torch.device,
                 memory_format: torch.memory_format = torch.contiguous_format, rank: int = 0,
                 world: int = 1):
        super().__init__(config, data, G, device, memory_format, rank, world)
        self.stream = BatchStream(data, config.batch, config.seed, rank, world, config.data.mirror)
        self.num_classes = G.num_classes
        # a growing G (progressive growing) draws at its current resolution: D sees reals the same way
        self.reals_as_drawn = G.reals_as_drawn if get_recipe(config.recipe).grows else None
        if self.num_classes:  # KID draws labels as often as the (held-out) data has them
            self.class_frequencies = torch.bincount(data.labels, minlength=self.num_classes).float()
        g = torch.Generator().manual_seed(derive_seed(config.seed, "grid"))
        if self.num_classes:  # one row per class, shared latents down each column
            per_class = max(1, config.grid_size // self.num_classes)
            self.grid_latents, self.grid_labels = class_rows(self.num_classes, per_class, G.latent_dim, g)
            self.grid_nrow = per_class
        else:
            self.grid_latents = torch.randn(config.grid_size, G.latent_dim, generator=g)
            self.grid_labels, self.grid_nrow = None, None

    def batch(self, k: int) -> tuple[tuple[Tensor, Tensor | None], int]:
        images, labels = self.stream.images(k)
        n = images.shape[0]
        images = self.to_model(images)
        if self.reals_as_drawn is not None:
            images = self.reals_as_drawn(images)
        return (images, labels.to(self.device) if labels is not None else None), n

    @torch.no_grad()
    def sample_sheet(self, G: torch.nn.Module) -> tuple[Tensor, int | None]:
        labels = self.grid_labels.split(256) if self.grid_labels is not None else None
        chunks = []
        for i, z in enumerate(self.grid_latents.split(256)):
            y = labels[i].to(self.device) if labels is not None else None
            chunks.append(to_unit_range(G(z.to(self.device), y), G.output_range).cpu())
        return torch.cat(chunks), self.grid_nrow

    def sampler(self, G: torch.nn.Module, seed: int) -> Callable[[int], Tensor]:
        latents = torch.Generator().manual_seed(derive_seed(seed, "eval"))
        # fresh noise inputs per sample, as the metrics of the reference are taken (grids keep fixed noise)
        noise = torch.Generator(device=self.device).manual_seed(derive_seed(seed, "eval-noise"))

        def sample(k: int) -> Tensor:
            z = torch.randn(k, G.latent_dim, generator=latents).to(self.device)
            labels = (torch.multinomial(self.class_frequencies, k, replacement=True, generator=latents)
                      .to(self.device) if self.num_classes else None)
            with per_sample_noise(G, noise):
                return to_unit_range(G(z, labels), G.output_range)

        return sample

    def data_facts(self) -> dict:
        return {**super().data_facts(), "num_classes": self.num_classes}


def num_classes(data: ImageData) -> int:
    """Classes of a labelled dataset; a conditional GAN on unlabelled data is a user error."""
    if data.labels is None:
        raise GankitError(
            f"a conditional GAN needs class labels, but {data.name} has none: for a folder use "
            "--labels (sub-folders) or --labels-csv FILE --label-column NAME, or train an "
            "unconditional GAN (--unconditional, or --recipe convgan instead of cgan)"
        )
    return len(data.class_names) if data.class_names else int(data.labels.max()) + 1


TASKS.register("generation", GenerationTask)
