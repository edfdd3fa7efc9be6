"""GAN recipes: each names its models, its model options and its default hyper-parameters.

Adding a variant = one file here that registers a `Recipe`, plus its models under models/.
The training loop never looks at a recipe's name.
"""

from .base import RECIPES, DataSpec, Recipe, get_recipe
from . import convgan, cyclegan, dcgan, mlp, pix2pix, style  # noqa: F401,E402  (register the recipes)

__all__ = ["RECIPES", "DataSpec", "Recipe", "get_recipe"]
