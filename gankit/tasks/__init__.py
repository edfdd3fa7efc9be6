"""What a run trains: a task (the contract between the loop and a kind of GAN) per kind.

    generation   noise (+ label) -> image   (dcgan, convgan, cgan, mlp, wgan-gp, progan, stylegan)
    unpaired     image <-> image, unpaired  (cyclegan)
    paired       image -> image, paired     (pix2pix)

A recipe names its task (`Recipe.task`), an update strategy the task it trains (`Update.task`).
"""

from __future__ import annotations

from ..errors import GankitError
from ..training.updates import UPDATES
from ..variants import get_recipe
from .base import TASKS, Task
from . import generation, translation  # noqa: F401,E402  (register the tasks and their updates)

__all__ = ["TASKS", "Task", "check_config", "task_of"]


def task_of(recipe: str) -> type[Task]:
    return TASKS.get(get_recipe(recipe).task)


def check_config(config) -> None:
    """The recipe's task, the update strategy and the task's own options agree."""
    task = task_of(config.recipe)
    update = UPDATES.get(config.update)
    if update.task != task.name:
        fitting = [name for name in UPDATES.names() if UPDATES.get(name).task == task.name]
        raise GankitError(f"the {config.update} update trains the {update.task} task, but the "
                          f"{config.recipe} recipe is a {task.name} recipe ({task.description}): use "
                          f"--update {' or '.join(fitting)}")
    if not update.several_steps and (config.d_steps > 1 or config.g_steps > 1) and task.name == "generation":
        raise GankitError(
            f"the {config.update} update makes one D and one G step from one pass (d_steps={config.d_steps}, "
            f"g_steps={config.g_steps}): use --update alternating for several D or G steps")
    task.check(config)
