"""The task contract: what a run trains, declared once, so the loop never asks a model or a
dataset what it is.

A task names its data (how it is loaded and batched), the update strategies that can train it,
its sample sheet, how it is evaluated, and the state it keeps beyond the nets (pools of past
fakes). A recipe names its task; the loop calls the task.

    generation   noise (+ a class label) -> image          tasks/generation.py
    unpaired     image of domain A <-> image of domain B   tasks/translation.py (CycleGAN)
    paired       input image -> its target image           tasks/translation.py (pix2pix)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar

import torch

from ..config import DataConfig, ReplayConfig, TrainConfig
from ..registry import Registry
from ..training.replay import ReplayBuffer
from ..variants import DataSpec
from ..visualize import from_unit_range

Tensor = torch.Tensor


class Task(ABC):
    name: ClassVar[str]
    description: ClassVar[str]

    # ------------------------------------------------------------ before any data is loaded
    @classmethod
    @abstractmethod
    def check(cls, config: TrainConfig) -> None:
        """Refuse, with the fix, options this task cannot train with (update, data, evaluation)."""

    @classmethod
    @abstractmethod
    def load_data(cls, cfg: DataConfig, progress: bool = True) -> Any:
        """The training data, decoded."""

    @classmethod
    @abstractmethod
    def data_spec(cls, config: TrainConfig, data: Any | None = None) -> DataSpec:
        """What the recipe needs to shape its nets; before loading (`data` None) a stand-in with
        the same architecture, for checks on shapes alone."""

    @classmethod
    def objective_weights(cls, config: TrainConfig) -> dict[str, float]:
        """Weights of the task's own loss terms (cycle, identity, L1), from the recipe's options."""
        return {}

    # ------------------------------------------------------------ a run
    def __init__(self, config: TrainConfig, data: Any, G: torch.nn.Module, device: torch.device,
                 memory_format: torch.memory_format = torch.contiguous_format, rank: int = 0,
                 world: int = 1):
        self.config, self.data, self.device, self.memory_format = config, data, device, memory_format
        self.rank, self.world = rank, world
        self.value_range = G.output_range
        self.replay, self.pools = self.make_buffers(config.replay)

    @abstractmethod
    def batch(self, k: int) -> tuple[Any, int]:
        """Batch k of this rank on the device, in G's value range, and the images it holds."""

    @abstractmethod
    def sample_sheet(self, G: torch.nn.Module) -> tuple[Tensor, int | None]:
        """What the run's samples/step-N.png shows: images in [0, 1] on the CPU, images per row."""

    def sampler(self, G: torch.nn.Module, seed: int) -> Callable[[int], Tensor]:
        """sample(k) -> k images in [0, 1] for KID during training (the generation task's)."""
        raise NotImplementedError(f"the {self.name} task is not evaluated by KID")  # check() refuses it

    def make_buffers(self, cfg: ReplayConfig) -> tuple[ReplayBuffer | None, dict[str, ReplayBuffer]]:
        """(one buffer of past fakes, or per-part pools), none unless replay is on."""
        return (ReplayBuffer(cfg.size, cfg.fraction) if cfg.size else None), {}

    def state_dict(self) -> dict:
        return {"replay": self.replay.state_dict() if self.replay is not None else {},
                "pools": {part: pool.state_dict() for part, pool in self.pools.items()}}

    def load_state_dict(self, state: dict) -> None:
        if self.replay is not None:
            self.replay.load_state_dict(state["replay"], self.device)
        for part, pool in self.pools.items():
            pool.load_state_dict(state["pools"][part], self.device)

    def data_facts(self) -> dict:
        """What the checkpoint records of the data (for `gankit sample` and friends)."""
        return {"name": self.data.name, "size": self.data.size, "channels": self.data.channels,
                "num_images": len(self.data), "class_names": self.data.class_names,
                "num_classes": 0}

    # ------------------------------------------------------------ helpers
    def to_model(self, images: Tensor) -> Tensor:
        """[0, 1] images on the CPU -> G's value range on the training device."""
        images = from_unit_range(images, self.value_range)
        if self.device.type == "cuda":  # page-locked memory: the copy below overlaps with compute
            images = images.pin_memory()
        return images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)


TASKS: Registry[type[Task]] = Registry("task", lambda x: isinstance(x, type) and issubclass(x, Task))
