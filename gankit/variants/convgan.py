"""DCGAN-family recipes on the configurable conv nets (models/convnets.py).

    convgan   the TensorFlow DCGAN tutorial's nets, non-saturating loss, Adam 1e-4 (betas 0.9)
    cgan      the same nets conditioned on class labels (one-hot into G and D)
    wgan-gp   WGAN-GP (Gulrajani et al. 2017): a critic without batch norm or dropout,
              Wasserstein loss, gradient penalty 10, 5 critic steps per G step, Adam (0.5, 0.9);
              Generative Deep Learning's version is the `wgan-gp-gdl` preset
The Hands-On ML and GDL LEGO DCGANs are presets of `convgan` in configs/.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..models.convnets import ConvDiscriminator, ConvGANOptions, ConvGenerator, validate_options
from .base import RECIPES, DataSpec, Recipe


def build(options: ConvGANOptions, data: DataSpec):
    return (ConvGenerator(data.size, data.channels, options, data.num_classes),
            ConvDiscriminator(data.size, data.channels, options, data.num_classes))


TINY = {"latent_dim": 8, "g_widths": [8, 8], "g_strides": [2, 2], "g_kernel": 3,
        "d_widths": [8, 8], "d_kernel": 3}
# The TF tutorial trains both nets from one pair of tapes (our joint update) with Adam 1e-4.
# The book models train without augmentation; `--aug ada` adds it.
TF_TUTORIAL = {"loss": "nonsaturating", "update": "joint", "augment": {"mode": "none"},
               "optim": {"lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.9, "beta2": 0.999}}


@dataclass
class WGANGPOptions(ConvGANOptions):
    # The critic of Gulrajani et al.'s DCGAN experiments: no batch norm (it would make the
    # per-sample gradient penalty meaningless) and no dropout (a random critic has noisy gradients)
    d_widths: list = field(default_factory=lambda: [64, 128, 256])
    d_norm: str = "none"
    d_dropout: float = 0.0


def _register(name: str, description: str, options_type: type, defaults: dict) -> None:
    RECIPES.register(name, Recipe(name=name, description=description, model_config=options_type,
                                  build=build, defaults=defaults, tiny=TINY, validate=validate_options))


_register("convgan", "DCGAN family (TensorFlow tutorial nets; Hands-On ML / GDL presets in configs/)",
          ConvGANOptions, TF_TUTORIAL)
_register("cgan", "conditional DCGAN: labels into G (one-hot / embedding) and D (maps / projection)",
          ConvGANOptions, {**TF_TUTORIAL, "conditional": True})
_register("wgan-gp", "WGAN-GP: critic without batch norm, Wasserstein loss, gradient penalty 10, "
          "5 critic steps per G step", WGANGPOptions,
          {"loss": "wasserstein", "penalty": "gp", "update": "alternating", "d_steps": 5, "augment": {"mode": "none"},
           "optim": {"lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "beta2": 0.9}})
