"""gankit list: what is registered."""

from __future__ import annotations

from typing import Optional

import typer

from ..errors import GankitError
from .app import DEVICE_HELP, IMAGE_SUFFIXES, app


@app.command("list")
def list_registered(
    section: Optional[str] = typer.Argument(None, help="Only this: recipes, tasks, losses, penalties, updates, augpipes, augment-ops, datasets, paired-datasets, features or presets."),
):
    """List the registered recipes, losses, penalties, update strategies, augmentation pipelines
    and ops, datasets, feature extractors and the bundled presets."""
    from ..augment import OP_NAMES, PIPE_NAMES
    from ..config import preset_names
    from ..data import DATASETS
    from ..data.paired import PAIRED_DATASETS
    from ..losses import LOSSES, PENALTIES
    from ..metrics import FEATURE_EXTRACTORS
    from ..training.updates import UPDATES
    from ..tasks import TASKS
    from ..variants import RECIPES

    sections = {"recipes": RECIPES.names(), "tasks": TASKS.names(), "losses": LOSSES.names(), "penalties": PENALTIES.names(),
                "updates": UPDATES.names(), "augpipes": list(PIPE_NAMES), "augment-ops": list(OP_NAMES),
                "datasets": DATASETS.names(), "paired-datasets": PAIRED_DATASETS.names(),
                "features": FEATURE_EXTRACTORS.names(), "presets": preset_names()}
    if section is not None and section not in sections:
        raise GankitError(f"nothing to list as {section!r}: use one of {', '.join(sections)}")
    sections["recipes"] = [f"{name} ({_d_blocks(name)})" for name in RECIPES.names()]
    for title, names in sections.items():
        if section in (None, title):
            label = {"presets": "presets (--config NAME)", "augpipes": "augpipes (--augpipe)",
                     "augment-ops": "augment-ops (--set augment.ops.NAME=multiplier)",
                     "paired-datasets": "paired-datasets (translate train --paired --a NAME)"}.get(title, title)
            typer.echo(f"{label}: {', '.join(names)}")


def _d_blocks(recipe: str, size: int = 32) -> str:
    """How many blocks --freeze-d can keep fixed in the recipe's D, at 32 px RGB."""
    import torch

    from ..contracts import FreezableDiscriminator, implements
    from ..variants import DataSpec, get_recipe

    with torch.device("meta"):
        _, D = get_recipe(recipe).make({}, DataSpec(size, 3))
    if not implements(D, FreezableDiscriminator):
        return "D: no FreezeD"
    return f"D: {len(D.blocks_from_image())} blocks at {size} px"
