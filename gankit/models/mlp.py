"""The fully connected GAN of Hands-On Machine Learning (ch. 17), for any image size.

G: z (B, 30) [+ label code] -> 100 -> 150 (SELU) -> C*S*S -> sigmoid -> (B, C, S, S)
D: (B, C, S, S) -> flatten [+ one-hot label] -> 150 -> 100 (SELU)
   [-> minibatch discrimination] -> 1 logit [+ projection of the label]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GankitError
from ..nn import MinibatchDiscrimination, split_at
from .conditional import D_LABEL_INPUTS, G_LABEL_INPUTS, LabelToLatent, Projection
from .convnets import ACTIVATIONS, OUTPUTS, glorot_init


@dataclass
class MLPOptions:
    latent_dim: int = 30  # Hands-On ML's codings size
    g_hidden: list = field(default_factory=lambda: [100, 150])
    d_hidden: list = field(default_factory=lambda: [150, 100])
    activation: str = "selu"  # relu | leaky_relu | selu | elu
    output: str = "sigmoid"  # sigmoid ([0, 1] data) | tanh ([-1, 1] data)
    minibatch: str = "none"  # none | discrimination (Salimans 2016) before D's output layer
    g_label_input: str = "onehot"  # conditional G: onehot | embedding joined to z
    d_label_input: str = "channels"  # conditional D: channels (one-hot joined to the pixels) | projection
    embedding_dim: int = 50


def validate_options(o: MLPOptions) -> None:
    for key, values in (("g_hidden", o.g_hidden), ("d_hidden", o.d_hidden)):
        if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
            raise GankitError(f"model.{key}={values!r} must be a non-empty list of positive integers")
    choices = {"activation": (o.activation, tuple(ACTIVATIONS)), "output": (o.output, tuple(OUTPUTS)),
               "minibatch": (o.minibatch, ("none", "discrimination")),
               "g_label_input": (o.g_label_input, G_LABEL_INPUTS),
               "d_label_input": (o.d_label_input, D_LABEL_INPUTS)}
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise GankitError(f"model.{key}={value!r} is not valid: use one of {', '.join(allowed)}")
    if o.latent_dim < 1 or o.embedding_dim < 1:
        raise GankitError("model.latent_dim and model.embedding_dim must be at least 1")


def _stack(sizes: list[int], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    def __init__(self, size: int, channels: int, o: MLPOptions, num_classes: int = 0):
        super().__init__()
        self.size, self.channels, self.latent_dim, self.num_classes = size, channels, o.latent_dim, num_classes
        self.output_range, output_layer = OUTPUTS[o.output]
        self.label_code = LabelToLatent(num_classes, o.g_label_input, o.embedding_dim) if num_classes else None
        z_dim = o.latent_dim + (self.label_code.out_features if self.label_code else 0)
        self.hidden = _stack([z_dim, *o.g_hidden], o.activation)
        self.out = nn.Sequential(nn.Linear(o.g_hidden[-1], channels * size * size), output_layer())
        glorot_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        assert z.dim() == 2 and z.shape[1] == self.latent_dim, f"z: expected (B, {self.latent_dim})"
        if self.label_code is not None:
            z = self.label_code(z, labels)
        return self.out(self.hidden(z)).view(-1, self.channels, self.size, self.size)


class MLPDiscriminator(nn.Module):
    def __init__(self, size: int, channels: int, o: MLPOptions, num_classes: int = 0):
        super().__init__()
        self.size, self.channels, self.num_classes = size, channels, num_classes
        self.label_input = o.d_label_input if num_classes else None
        extra = num_classes if self.label_input == "channels" else 0
        self.hidden = _stack([channels * size * size + extra, *o.d_hidden], o.activation)
        self.discrimination = MinibatchDiscrimination(o.d_hidden[-1]) if o.minibatch == "discrimination" else None
        self.head = nn.Linear(self.discrimination.out_features if self.discrimination else o.d_hidden[-1], 1)
        self.projection = Projection(num_classes, o.d_hidden[-1]) if self.label_input == "projection" else None
        glorot_init(self)

    def blocks_from_image(self) -> list[nn.Module]:
        """D's blocks in the order the image meets them, the head excluded (FreezeD freezes the
        first N; the contract FreezableDiscriminator)."""
        return split_at(self.hidden, (nn.Linear,))  # linear, activation

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        assert images.shape[1:] == (self.channels, self.size, self.size), (
            f"images: expected (B, {self.channels}, {self.size}, {self.size}), got {tuple(images.shape)}")
        x = images.flatten(1)  # (B, C*S*S)
        if self.label_input == "channels":
            assert labels is not None, "a conditional D needs labels"
            x = torch.cat([x, F.one_hot(labels, self.num_classes).to(x.dtype)], dim=1)
        h = self.hidden(x)
        f = self.discrimination(h) if self.discrimination is not None else h
        logit = self.head(f).squeeze(1)
        if self.projection is not None:
            logit = logit + self.projection(h, labels)
        return logit  # (B,)
