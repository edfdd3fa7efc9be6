"""The MLP GAN of Hands-On Machine Learning (ch. 17): dense nets, binary cross-entropy, the
textbook two-phase step (D on a concatenated real + fake batch, then G through a frozen D),
RMSprop with Keras' defaults, batches of 32."""

from __future__ import annotations

from ..models.mlp import MLPDiscriminator, MLPGenerator, MLPOptions, validate_options
from .base import RECIPES, DataSpec, Recipe


def build(options: MLPOptions, data: DataSpec):
    return (MLPGenerator(data.size, data.channels, options, data.num_classes),
            MLPDiscriminator(data.size, data.channels, options, data.num_classes))


RECIPES.register("mlp", Recipe(
    name="mlp",
    description="fully connected GAN of Hands-On ML (30-100-150-784 SELU, sigmoid), two-phase step",
    model_config=MLPOptions,
    build=build,
    defaults={"loss": "nonsaturating", "update": "two_phase", "batch": 32, "augment": {"mode": "none"},
              "optim": {"name": "rmsprop", "lr_g": 1e-3, "lr_d": 1e-3},
              },
    tiny={"latent_dim": 4, "g_hidden": [8], "d_hidden": [8]},
    validate=validate_options,
))
