"""A run's configuration, resolved and checked in one place.

    defaults (config.py)  <  the recipe's defaults  <  a preset (--config)  <  flags / --set

`resolve_config` layers them; `validate` asks each component to check its own section, and builds
the nets on the meta device (shapes only, no memory) to catch what only the architecture can
tell. Everything here runs before any data is decoded or any folder is made, so a typo costs
nothing.
"""

from __future__ import annotations

import warnings

import torch

from . import augment, data, losses, metrics, tasks
from .config import DEFAULT_STEPS, TrainConfig, from_dict, merge, to_dict
from .contracts import FreezableDiscriminator, StyleTrainingPath, implements
from .errors import GankitError
from .training import checks as training_checks
from .training.step import batch_coupled_layers
from .training.updates import UPDATES
from .variants import get_recipe


def resolve_config(overrides: dict | None = None) -> TrainConfig:
    """Dataclass defaults < the recipe's defaults < `overrides` (a preset merged with flags),
    validated. The model section becomes the recipe's own options, its defaults filled in."""
    overrides = overrides or {}
    recipe = get_recipe(overrides.get("recipe", TrainConfig.recipe))
    values = merge(merge(to_dict(TrainConfig()), recipe.defaults), overrides)
    config = from_dict(TrainConfig, values)
    options = recipe.options(config.model)  # rejects unknown model keys
    recipe.validate(options)
    config.model = to_dict(options)
    validate(config)
    return config


def validate(config: TrainConfig) -> None:
    """Every check, component by component; each error names the fix."""
    data.check_config(config.data)
    training_checks.check_config(config)
    losses.check_config(config)
    augment.check_config(config.augment)
    tasks.check_config(config)
    metrics.check_eval_config(config.eval)
    check_nets(config)


def check_nets(config: TrainConfig) -> None:
    """Build the nets on the meta device: a size or option the architecture cannot take fails
    here, and so do combinations the loop would only meet later."""
    recipe = get_recipe(config.recipe)
    spec = tasks.task_of(config.recipe).data_spec(config)
    with torch.device("meta"):
        G, D = recipe.make(config.model, spec)
    if config.freeze_d:
        if not implements(D, FreezableDiscriminator):
            raise GankitError(f"--freeze-d: the {config.recipe} recipe's D is not made of blocks that "
                              "FreezeD can keep fixed (progressive growing, or one D per domain): drop --freeze-d")
        blocks = len(D.blocks_from_image())
        if not 0 <= config.freeze_d <= blocks:
            raise GankitError(f"--freeze-d {config.freeze_d}: the {config.recipe} recipe's D has {blocks} "
                              f"blocks at {config.data.size} px: use 0 to {blocks}")
    if config.path_length.weight and not implements(G, StyleTrainingPath):
        raise GankitError(f"--pl-weight {config.path_length.weight:g}: path-length regularisation needs a "
                          f"style-based G (mapping and synthesis, as stylegan's); the {config.recipe} "
                          "recipe's G has none: use --pl-weight 0")
    coupled = batch_coupled_layers(D)
    if coupled and UPDATES.get(config.update).mixes_real_and_fake:
        raise GankitError(
            f"the {config.update} update passes reals and fakes through D together, but D's "
            f"{coupled[0]} mixes the samples of a batch (batch norm or a minibatch layer), which "
            "would let it compare reals with fakes: use --update alternating or a D without them")
    norms = [name for name, m in D.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if norms and config.penalty != "none":
        # (a minibatch stddev layer, as in ProGAN and StyleGAN2, couples samples only weakly)
        warnings.warn(f"the {config.penalty} penalty needs per-sample gradients, but D's batch norm "
                      f"({norms[0]}) mixes the samples of a batch: prefer model.d_norm=layer or none")


def complete_bounds(config: TrainConfig) -> TrainConfig:
    """A new run's length: 3000 steps when no bound is given; and the recipe's learning-rate decay
    over the end of the run (CycleGAN: the last half, as the reference's 100 + 100 epochs) when the
    run's length is known and no decay was set."""
    if config.steps is None and config.epochs is None and config.time_budget is None:
        config.steps = DEFAULT_STEPS
    share = config.optim.decay if config.optim.decay is not None else get_recipe(config.recipe).lr_decay
    if share and config.optim.decay_start is None:
        total, unit = ((config.steps, "steps") if config.steps is not None else (config.epochs, "epochs"))
        if total is None:
            if config.optim.decay is not None:
                raise GankitError("--decay needs a run length to take a share of: give --steps or --epochs")
            # the recipe's own decay: a time budget alone says nothing of where the run will end
            warnings.warn(f"the {config.recipe} recipe lowers its learning rates over the last "
                          f"{share:.0%} of a run, but --time-budget alone gives no run length: the rates "
                          "stay constant; add --steps or --epochs (the budget still stops the run early)",
                          stacklevel=2)
        else:
            config.optim.decay_start, config.optim.decay_length = total * (1 - share), total * share
            config.optim.decay_unit = unit
    return config
