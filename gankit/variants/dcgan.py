"""The default recipe: the keras-io GAN-ADA DCGAN with the non-saturating loss."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import GankitError
from ..models.dcgan import DCGANDiscriminator, DCGANGenerator
from .base import RECIPES, DataSpec, Recipe


@dataclass
class DCGANOptions:
    latent_dim: int = 64  # noise size of the keras-io example
    width: int = 128  # channels of every conv layer in G and D
    dropout: float = 0.4  # before D's final linear layer; slows D's memorisation of small data


def validate(options: DCGANOptions) -> None:
    if options.latent_dim < 1 or options.width < 1:
        raise GankitError(f"model.latent_dim={options.latent_dim} and model.width={options.width} "
                          "must be at least 1 (the defaults are 64 and 128)")
    if not 0.0 <= options.dropout < 1.0:
        raise GankitError(f"model.dropout={options.dropout} must be in [0, 1) (the default is 0.4)")


def build(options: DCGANOptions, data: DataSpec):
    if data.num_classes:
        raise GankitError("the dcgan recipe takes no labels: use --recipe cgan (or convgan / mlp with "
                          "--conditional) for a conditional GAN")
    generator = DCGANGenerator(data.size, data.channels, options.latent_dim, options.width)
    discriminator = DCGANDiscriminator(data.size, data.channels, options.width, options.dropout)
    return generator, discriminator


RECIPES.register(
    "dcgan",
    Recipe(
        name="dcgan",
        description="DCGAN of the keras-io GAN-ADA example (sigmoid output, BN, NS loss)",
        model_config=DCGANOptions,
        build=build,
        defaults={"loss": "nonsaturating", "update": "joint"},
        tiny={"latent_dim": 8, "width": 8},
        validate=validate,
    ),
)
