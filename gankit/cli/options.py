"""Command-line options made from the config's dataclass metadata (`config.option`).

Every TrainConfig field declared with `option(...)` becomes a flag with its help text, its type,
its default in the help, and, where a component owns a list of choices, those choices. A flag
maps back to its field by construction: nothing is mapped by hand, no choice is written twice.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Optional

import typer
import yaml

from ..config import TrainConfig, merge
from ..errors import GankitError

Path_ = tuple[str, ...]  # a field's place in the config, e.g. ("augment", "mode")


@dataclass(frozen=True)
class ConfigOption:
    path: Path_
    flag: str  # "--name", or "--name/--no-name" for booleans
    help: str
    type: type  # int, float, str or bool
    default: Any
    recipe_neutral: bool = True  # the default is TrainConfig's (select(..., recipes) shows theirs)

    @property
    def param(self) -> str:  # the Python parameter name the command receives it as
        return "__".join(self.path)


def _choices() -> dict[Path_, Callable[[], list[str]]]:
    """Where each choice-valued field's choices live: the components own them."""
    from .. import augment, data
    from ..losses import LOSSES, PENALTIES
    from ..training.checks import PRECISIONS
    from ..training.updates import UPDATES
    from ..variants import RECIPES

    return {("data", "crop"): lambda: list(data.CROPS), ("augment", "mode"): lambda: list(augment.MODES),
            ("augment", "pipe"): lambda: list(augment.PIPE_NAMES), ("recipe",): RECIPES.names,
            ("loss",): LOSSES.names, ("penalty",): lambda: ["none", *PENALTIES.names()],
            ("update",): UPDATES.names, ("precision",): lambda: list(PRECISIONS)}


def _base_type(hint: Any) -> type:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


@lru_cache(maxsize=None)
def config_options() -> tuple[ConfigOption, ...]:
    """Every flagged field of TrainConfig and its sections, in declaration order."""
    found = []

    def walk(cls: type, path: Path_) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            if dataclasses.is_dataclass(hint):
                walk(hint, path + (f.name,))
            elif "help" in f.metadata:
                kind = _base_type(hint)
                flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
                if kind is bool and "/" not in flag:
                    flag = f"{flag}/--no-{flag[2:]}"
                default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
                found.append(ConfigOption(path + (f.name,), flag, f.metadata["help"], kind, default))

    walk(TrainConfig, ())
    return tuple(found)


@lru_cache(maxsize=None)
def _recipe_overrides() -> frozenset[Path_]:
    """Fields some recipe sets its own default for (their help says so)."""
    from ..variants import RECIPES

    def paths(values: dict, prefix: Path_ = ()):
        for key, value in values.items():
            yield from paths(value, prefix + (key,)) if isinstance(value, dict) else [prefix + (key,)]

    return frozenset(p for name in RECIPES.names() for p in paths(RECIPES.get(name).defaults))


def help_text(option: ConfigOption) -> str:
    """The field's help, its choices where a component owns a list of them, and its default."""
    choices = _choices().get(option.path)
    text = option.help
    if choices is not None:
        text += f" One of: {', '.join(choices())}."
    if option.type is bool:
        shown = "on" if option.default else "off"
    else:
        shown = "unset" if option.default is None else option.default
    recipe = "; recipes may set their own" if option.path in _recipe_overrides() and option.recipe_neutral else ""
    return f"{text} [default: {shown}{recipe}]"


def typer_parameters(options: list[ConfigOption]) -> list[inspect.Parameter]:
    """One keyword parameter per option, defaulting to None (= not given on the command line).
    Choices are plain text, checked with the rest of the config: a wrong one is one error line
    naming the right ones, as any other bad option."""
    params = []
    for option in options:
        params.append(inspect.Parameter(
            option.param, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[option.type],
            default=typer.Option(None, *option.flag.split(" "), help=help_text(option))))
    return params


def command(fn: Callable, options: list[ConfigOption], extra: list[inspect.Parameter]) -> Callable:
    """`fn(config_values: dict, **extra)` as a typer command taking `options` as flags, plus the
    `extra` parameters of its own. config_values holds the given flags as nested config keys."""
    by_param = {option.param: option for option in options}
    params = typer_parameters(options) + extra

    def run(**kwargs):
        given: dict = {}
        for name, value in list(kwargs.items()):
            if name in by_param:
                kwargs.pop(name)
                if value is not None:
                    given = merge(given, nest(by_param[name].path, value))
        return fn(given, **kwargs)

    run.__signature__ = inspect.Signature(params)
    run.__annotations__ = {p.name: p.annotation for p in params}
    run.__doc__, run.__name__ = fn.__doc__, fn.__name__
    return run


def nest(path: Path_, value: Any) -> dict:
    out: dict = value
    for part in reversed(path):
        out = {part: out}
    return out


def parse_set(items: list[str]) -> dict:
    """`--set optim.lr_g=1e-4` -> {"optim": {"lr_g": 0.0001}} (values parsed as YAML scalars)."""
    out: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise GankitError(f"--set {item!r} must look like key=value, e.g. --set optim.lr_g=1e-4")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        out = merge(out, nest(tuple(key.split(".")), value))
    return out


def select(names: list[str], recipes: tuple[str, ...] = ()) -> list[ConfigOption]:
    """The options of these fields (dotted paths), in the order given. With `recipes` (a command
    that trains only those), the defaults shown are theirs where they set their own."""
    by_path = {".".join(option.path): option for option in config_options()}
    chosen = [by_path[name] for name in names]
    if not recipes:
        return chosen
    from ..variants import RECIPES

    def own(option: ConfigOption, recipe: str):
        value = RECIPES.get(recipe).defaults
        for key in option.path:
            if not isinstance(value, dict) or key not in value:
                return option.default
            value = value[key]
        return value

    shown = []
    for option in chosen:
        values = {recipe: own(option, recipe) for recipe in recipes}
        if len(set(map(repr, values.values()))) == 1:
            default = next(iter(values.values()))
        else:
            default = ", ".join(f"{v} ({recipe})" for recipe, v in values.items())
        shown.append(dataclasses.replace(option, default=default, recipe_neutral=False))
    return shown
