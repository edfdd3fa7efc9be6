"""The recipe contract and its registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

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


RECIPES: Registry[Recipe] = Registry("recipe", lambda x: isinstance(x, Recipe))


def get_recipe(name: str) -> Recipe:
    return RECIPES.get(name)
