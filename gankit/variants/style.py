"""Progressive growing (ProGAN) and the StyleGAN-style generator.

    progan    pixel norm, equalized learning rate, minibatch stddev, growing from 4x4 with fade-in;
              WGAN-GP loss as the paper (n_critic 1, Adam 1e-3, betas (0, 0.99))
    stylegan  mapping network, constant input, noise, modulated convs (or AdaIN), style mixing,
              truncation; residual D with minibatch stddev; non-saturating loss with lazy R1
              (every 16 steps), Adam 2.5e-3, betas (0, 0.99), as StyleGAN2-ADA
"""

from __future__ import annotations

from ..models.progan import ProDiscriminator, ProGANOptions, ProGenerator
from ..models.progan import validate_options as validate_progan
from ..models.stylegan import StyleDiscriminator, StyleGANOptions, StyleGenerator
from ..models.stylegan import validate_options as validate_stylegan
from .base import RECIPES, DataSpec, Recipe


def build_progan(options: ProGANOptions, data: DataSpec):
    return (ProGenerator(data.size, data.channels, options, data.num_classes),
            ProDiscriminator(data.size, data.channels, options, data.num_classes))


def build_stylegan(options: StyleGANOptions, data: DataSpec):
    return (StyleGenerator(data.size, data.channels, options, data.num_classes),
            StyleDiscriminator(data.size, data.channels, options, data.num_classes))


RECIPES.register("progan", Recipe(
    name="progan",
    description="progressive growing with fade-in, pixel norm, equalized lr, minibatch stddev (WGAN-GP)",
    model_config=ProGANOptions,
    build=build_progan,
    defaults={"loss": "wasserstein", "penalty": "gp", "drift": 0.001, "update": "alternating", "d_steps": 1,
              "augment": {"mode": "none"},  # a critic has no real/fake boundary for ADA to read
              "optim": {"lr_g": 1e-3, "lr_d": 1e-3, "beta1": 0.0, "beta2": 0.99},
              # The paper's G smoothing, 0.999 per minibatch of 16, is a half-life of ~11 kimg: kept in
              # images so it holds at this batch of 64 (0.999 per step here would be 44 kimg). The
              # ramp-up (StyleGAN2-ADA's, not ProGAN's) keeps the average from holding on to the
              # random start in a short run: at 0.999 per step the 10-minute tutorial run (618 steps)
              # drew noise from its EMA G while its raw G drew digit shapes.
              "ema_kimg": 10, "ema_rampup": 0.05, "batch": 64},
    tiny={"latent_dim": 8, "channel_base": 64, "channel_max": 8, "fade_kimg": 0.02, "stable_kimg": 0.02},
    validate=validate_progan,
    grows=True,
))

RECIPES.register("stylegan", Recipe(
    name="stylegan",
    description="StyleGAN-style G (mapping, const input, noise, modulated convs / AdaIN, mixing, "
                "truncation), residual D, lazy R1",
    model_config=StyleGANOptions,
    build=build_stylegan,
    defaults={"loss": "nonsaturating", "penalty": "r1", "penalty_weight": 0.05, "penalty_every": 16,
              "update": "alternating", "optim": {"lr_g": 2.5e-3, "lr_d": 2.5e-3, "beta1": 0.0, "beta2": 0.99},
              # StyleGAN2-ADA's auto config: a half-life of 10 kimg per 32 images of batch, ramped up
              "ema_kimg": -1, "ema_rampup": 0.05, "batch": 64,
              "path_length": {"weight": 2.0}},  # on every 4th G step, half the batch (StyleGAN2)
    tiny={"latent_dim": 8, "w_dim": 8, "mapping_layers": 2, "channel_base": 64, "channel_max": 8},
    validate=validate_stylegan,
))
