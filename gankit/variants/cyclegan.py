"""CycleGAN (Zhu et al. 2017): unpaired image-to-image translation between two domains.

Defaults follow junyanz/pytorch-CycleGAN-and-pix2pix: ResNet generators, 70x70 PatchGAN
discriminators, least-squares loss, cycle weight 10, identity 0.5 x 10, a pool of 50 past fakes
per discriminator, Adam 2e-4 with beta1 0.5, batches of one image. The constant-then-linear
learning rate falls to zero over the second half of the run (`lr_decay`, as the reference's 100 +
100 epochs), from Python and the command line alike. Off here, unlike the GAN recipes:
the EMA of G (decay 0 makes the "EMA" copy G itself, so samples and `translate apply` use the
trained weights, as the reference does) and augmentation of what D sees.
"""

from __future__ import annotations

from ..errors import GankitError
from ..models.cyclegan import CycleDiscriminators, CycleGANOptions, CycleGenerators, validate_options
from .base import RECIPES, DataSpec, Recipe


def build(options: CycleGANOptions, data: DataSpec):
    if data.num_classes:
        raise GankitError("the cyclegan recipe takes no labels: train it without --conditional")
    return (CycleGenerators(data.size, data.channels, options),
            CycleDiscriminators(data.size, data.channels, options))


RECIPES.register("cyclegan", Recipe(
    name="cyclegan",
    description="CycleGAN: unpaired translation A <-> B (ResNet G, 70x70 PatchGAN, LSGAN, cycle + identity L1)",
    model_config=CycleGANOptions,
    build=build,
    # the reference's data augmentation: random 256 crops of images scaled to 286, and x-flips
    defaults={"loss": "lsgan", "update": "cycle", "batch": 1, "augment": {"mode": "none"},
              "data": {"crop": "random", "jitter": 0.117, "mirror": True},
              "replay": {"size": 50, "fraction": 0.5}, "ema_decay": 0.0,
              "optim": {"lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "beta2": 0.999},
              "grid_size": 8},  # sample sheets: 6 rows (A, A->B, A->B->A, B, ...) of 8
    # 16 px needs D's stride-2 layers down to 2; one residual block keeps the shape of the net
    tiny={"g_width": 4, "g_blocks": 1, "d_width": 4, "d_layers": 2},
    validate=validate_options,
    task="unpaired",
    lr_decay=0.5,
))
