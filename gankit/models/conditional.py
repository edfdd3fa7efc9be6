"""Ways to feed class labels into G and D (conditional GANs, Mirza & Osindero 2014).

    G: "onehot"      z' = [z, one_hot(y)]                     (Generative Deep Learning, keras)
       "embedding"   z' = [z, E_y], a learned vector per class
    D: "channels"    x' = [x, one_hot(y) as constant maps]    (Generative Deep Learning, keras)
       "projection"  logit += <E_y, phi(x)>, phi = D's pooled features (Miyato & Koyama 2018):
                     the label meets D's judgement at the end instead of the raw pixels
       "none"        D does not see the label; its classifier head names the class instead
                     (AC-GAN, Odena et al. 2017; the conv nets' model.d_classifier)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

G_LABEL_INPUTS = ("onehot", "embedding")
D_LABEL_INPUTS = ("channels", "projection")
AC_GAN_D_INPUT = "none"  # for a D with a classifier head only: the head carries the label


class LabelToLatent(nn.Module):
    """Appends a label code to z: (B, latent) -> (B, latent + out_features)."""

    def __init__(self, num_classes: int, mode: str = "onehot", embedding_dim: int = 50):
        super().__init__()
        assert mode in G_LABEL_INPUTS and num_classes > 0
        self.num_classes, self.mode = num_classes, mode
        self.embed = nn.Embedding(num_classes, embedding_dim) if mode == "embedding" else None
        self.out_features = embedding_dim if self.embed is not None else num_classes

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        assert labels is not None and labels.shape == z.shape[:1], "a conditional G needs one label per z"
        code = self.embed(labels) if self.embed is not None else \
            F.one_hot(labels, self.num_classes).to(z.dtype)
        return torch.cat([z, code.to(z.dtype)], dim=1)


def label_maps(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C + classes, H, W): one constant one-hot map per class."""
    assert labels is not None and labels.shape == images.shape[:1], "a conditional D needs one label per image"
    b, _, h, w = images.shape
    onehot = F.one_hot(labels, num_classes).to(images.dtype).view(b, num_classes, 1, 1)
    return torch.cat([images, onehot.expand(b, num_classes, h, w)], dim=1)


class Projection(nn.Module):
    """<E_y, phi(x)>, added to D's logit; phi (B, F) are D's features summed over space."""

    def __init__(self, num_classes: int, features: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, features)
        nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, phi: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        assert labels is not None and labels.shape == phi.shape[:1], "a conditional D needs one label per image"
        return (self.embed(labels) * phi).sum(dim=1)  # (B,)


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift are looked up per class (de Vries et al. 2017; Miyato &
    Koyama's and BigGAN's G): the normalised features are shaped by the label at every layer.
    Scales start at 1 and shifts at 0, so it starts as plain batch norm. (B, C, H, W), (B,) -> same."""

    def __init__(self, channels: int, num_classes: int, momentum: float = 0.1):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False, momentum=momentum)
        self.scale = nn.Embedding(num_classes, channels)
        self.shift = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        assert labels is not None and labels.shape == x.shape[:1], "a conditional norm needs one label per image"
        x = self.norm(x)
        return x * self.scale(labels)[:, :, None, None].to(x.dtype) + self.shift(labels)[:, :, None, None].to(x.dtype)


def class_rows(num_classes: int, per_class: int, latent_dim: int,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents and labels for a grid with one row per class and shared latents down each column,
    so a column shows what the label alone changes: (classes * per_class, latent), (classes * per_class,)."""
    z = torch.randn(per_class, latent_dim, generator=generator)
    return z.repeat(num_classes, 1), torch.arange(num_classes).repeat_interleave(per_class)
