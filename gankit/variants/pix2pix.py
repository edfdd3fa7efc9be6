"""pix2pix (Isola et al. 2017): image-to-image translation learnt from aligned pairs.

Defaults follow junyanz/pytorch-CycleGAN-and-pix2pix's pix2pix: a U-Net G (as many levels as
halvings reach 1x1, unet_256 at 256 px) with dropout, the conditional 70x70 PatchGAN, the
BCE GAN loss plus 100 x L1 to the target, no pool of past fakes, Adam 2e-4 with beta1 0.5,
batches of one pair, random crops of pairs scaled up by 286/256 and x-flips, the same for input
and target. The constant-then-linear learning rate falls to zero over the second half of the
run (`lr_decay`, as the reference's 100 + 100 epochs). Off, as in CycleGAN: the EMA of G (decay
0: samples and `translate apply` use the trained weights) and augmentation of what D sees
(it would transform an output but not its input).
"""

from __future__ import annotations

from ..errors import GankitError
from ..models.pix2pix import ConditionalPatchDiscriminator, Pix2PixOptions, UNetGenerator, validate_options
from .base import RECIPES, DataSpec, Recipe


def build(options: Pix2PixOptions, data: DataSpec):
    if data.num_classes:
        raise GankitError("the pix2pix recipe takes no labels: train it without --conditional")
    return UNetGenerator(data.size, data.channels, options), ConditionalPatchDiscriminator(data.size, data.channels, options)


RECIPES.register("pix2pix", Recipe(
    name="pix2pix",
    description="pix2pix: paired translation input -> target (U-Net G, conditional 70x70 PatchGAN, GAN + 100 L1)",
    model_config=Pix2PixOptions,
    build=build,
    defaults={"loss": "nonsaturating", "update": "pix2pix", "batch": 1, "augment": {"mode": "none"},
              "data": {"crop": "random", "jitter": 0.117, "mirror": True},
              "replay": {"size": 0}, "ema_decay": 0.0,
              "optim": {"lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "beta2": 0.999},
              "grid_size": 8},  # sample sheets: 3 rows (input, output, target) of 8
    # 16 px: a 4-level U-Net and D's stride-2 layers down to 2
    tiny={"g_width": 4, "d_width": 4, "d_layers": 2},
    validate=validate_options,
    task="paired",
    lr_decay=0.5,
))
