"""The recipe contract and its registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from ..config import from_dict
from ..registry import Registry


@dataclass(frozen=True)
class DataSpec:
    """What a recipe needs to know about the data to shape its models."""

    size: int
    channels: int
    num_classes: int = 0  # 0: unconditional


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    model_config: type  # dataclass of this recipe's model options (config key `model`)
    build: Callable[[Any, DataSpec], tuple[nn.Module, nn.Module]]  # (model options, data) -> (G, D)
    defaults: dict = field(default_factory=dict)  # overrides of TrainConfig defaults
    tiny: dict = field(default_factory=dict)  # model options for a seconds-fast model (tests, dry runs)
    # options -> None, raising GankitError for values the models cannot use (checked before any
    # data is loaded or folder written)
    validate: Callable[[Any], None] = lambda options: None
    # what the nets learn (tasks/): "generation" (noise -> image), "unpaired" or "paired"
    # (translation). The loop asks the task, never the recipe's name.
    task: str = "generation"
    # the nets change shape with the images seen (progressive growing): the loop calls their
    # set_progress (the `Growing` contract) before every step
    grows: bool = False
    # share of the run, at its end, over which the learning rates fall to zero unless optim.decay
    # says otherwise (CycleGAN and pix2pix: 0.5, their references' 100 + 100 epochs)
    lr_decay: float = 0.0

    def options(self, values: dict) -> Any:
        return from_dict(self.model_config, values, "model")

    def check(self, options: Any, data: DataSpec | None = None) -> None:
        """Options and data the models cannot use are user errors, found without real weights."""
        self.validate(options)
        if data is not None:
            with torch.device("meta"):  # shapes only: no memory, no time
                self.build(options, data)

    def make(self, values: dict, data: DataSpec) -> tuple[nn.Module, nn.Module]:
        """(G, D) from the `model` section of a config."""
        return self.build(self.options(values), data)


RECIPES: Registry[Recipe] = Registry("recipe", lambda x: isinstance(x, Recipe))


def get_recipe(name: str) -> Recipe:
    return RECIPES.get(name)
