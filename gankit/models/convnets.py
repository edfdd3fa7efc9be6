"""Configurable DCGAN-family generator and discriminator: the textbook DCGANs are presets of these.

G: z (B, latent) [+ label code] -> start: Linear -> (B, w0, s0, s0), or z as a 1x1 map -> ConvT s0x0
   -> norm [-> act]
   -> for each next width w_i: ConvT k /stride_i -> norm -> act
   -> ConvT k /stride_last -> tanh | sigmoid                              (B, C, size, size)
   with s0 = size / prod(strides). Hands-On ML's Fashion DCGAN is widths [128, 64], strides
   [2, 2], kernel 5; the TensorFlow tutorial's [256, 128, 64], [1, 2, 2]; GDL's LEGO DCGAN a
   "convT" start with [512, 256, 128, 64], [2, 2, 2, 2], kernel 4.
D: (B, C [+ classes], S, S) -> for each width: Conv k /2 -> norm (never on the first layer, as the
   DCGAN paper) -> act -> dropout
   -> [minibatch stddev] -> head: flatten [-> minibatch discrimination] -> Linear, or a conv over
   the whole remaining map (GDL) -> logit (B,) [+ projection of the label]
Convolutions followed by a norm have no bias (the norm's shift replaces it). Weights start as
Keras' glorot uniform, the initialiser the book models were tuned with.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import DesignWarning, GankitError
from ..nn import MinibatchDiscrimination, MinibatchStdDev, split_at
from .conditional import (AC_GAN_D_INPUT, D_LABEL_INPUTS, G_LABEL_INPUTS, ConditionalBatchNorm2d, LabelToLatent, Projection,
                          label_maps)

ACTIVATIONS = {
    "relu": lambda slope=0.2: nn.ReLU(inplace=True),
    # 0.2: the DCGAN paper, Hands-On ML and GDL; Keras' LeakyReLU() default (TF tutorial) is 0.3
    "leaky_relu": lambda slope=0.2: nn.LeakyReLU(slope, inplace=True),
    "selu": lambda slope=0.2: nn.SELU(inplace=True),
    "elu": lambda slope=0.2: nn.ELU(inplace=True),
}
NORMS = ("batch", "layer", "instance", "none")
OUTPUTS = {"tanh": ((-1.0, 1.0), nn.Tanh), "sigmoid": ((0.0, 1.0), nn.Sigmoid)}
MINIBATCH = ("none", "stddev", "discrimination")
HEADS = ("dense", "conv")


def make_norm(kind: str, channels: int, momentum: float) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels, momentum=momentum)
    if kind == "layer":  # over (C, H, W) of each sample: no mixing across the batch (WGAN-GP critic)
        return nn.GroupNorm(1, channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


def glorot_init(module: nn.Module) -> None:
    """Keras' default initialiser (glorot uniform, zero bias): the book models and the keras-io
    example were tuned with it."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def conv_transpose(c_in: int, c_out: int, kernel: int, stride: int, bias: bool) -> nn.ConvTranspose2d:
    """A "same" transposed conv: exactly `stride` times larger for any kernel (as Keras' padding="same")."""
    padding = math.ceil((kernel - stride) / 2)
    return nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding, output_padding=2 * padding - (kernel - stride),
                              bias=bias)


@dataclass
class ConvGANOptions:
    latent_dim: int = 100  # noise size (100 in the DCGAN paper and all three books)
    g_widths: list = field(default_factory=lambda: [256, 128, 64])  # G's channels, coarse to fine
    g_strides: list = field(default_factory=lambda: [1, 2, 2])  # upsampling after each width
    g_start: str = "dense"  # dense: Linear to the first map; convT: z as 1x1 map, ConvT to it (GDL)
    g_kernel: int = 5  # ConvT kernel size
    g_norm: str = "batch"  # batch | layer | instance | none
    g_activation: str = "leaky_relu"  # relu | leaky_relu | selu | elu
    g_project_activation: bool = True  # activation after the first map (Hands-On ML: only a norm)
    g_start_norm: str = "channel"  # channel: per-channel norm of the first map; unit: per Dense unit (TF tutorial)
    g_order: str = "norm_act"  # norm_act: conv -> norm -> act; act_norm: conv -> act -> norm (Hands-On ML)
    leaky_slope: float = 0.2  # negative slope of leaky_relu (Keras' default is 0.3)
    output: str = "tanh"  # tanh ([-1, 1] data) | sigmoid ([0, 1] data): the data pipeline follows
    bn_momentum: float = 0.01  # torch momentum = 1 - Keras momentum (Keras default 0.99; GDL 0.9)
    d_widths: list = field(default_factory=lambda: [64, 128])  # D's channels, one stride-2 conv each
    d_kernel: int = 5
    d_norm: str = "none"  # none | batch | layer | instance (never on D's first layer)
    d_activation: str = "leaky_relu"
    d_dropout: float = 0.3  # after every D conv (TF tutorial 0.3, Hands-On ML 0.4)
    d_head: str = "dense"  # dense: flatten -> Linear; conv: one conv over the last map (GDL)
    minibatch: str = "none"  # none | stddev (ProGAN) | discrimination (Salimans 2016), before the head
    g_label_input: str = "onehot"  # conditional G: onehot | embedding joined to z
    # conditional D: channels (one-hot maps) | projection | none (AC-GAN: only its classifier head)
    d_label_input: str = "channels"
    embedding_dim: int = 50  # size of the label embedding (g_label_input=embedding)
    # class-conditional batch norm in G: a scale and shift per class after each batch norm
    # (de Vries et al. 2017; SNGAN's projection G, BigGAN): the label reaches every layer
    g_label_norm: bool = False
    # AC-GAN (Odena et al. 2017): D also names the class of what it sees, from the features its
    # head reads; both nets learn from that loss (weight: --classifier-weight)
    d_classifier: bool = False


def validate_options(o: ConvGANOptions) -> None:
    choices = {"g_start": (o.g_start, ("dense", "convT")), "g_norm": (o.g_norm, NORMS),
               "d_norm": (o.d_norm, NORMS), "g_activation": (o.g_activation, tuple(ACTIVATIONS)),
               "d_activation": (o.d_activation, tuple(ACTIVATIONS)), "output": (o.output, tuple(OUTPUTS)),
               "d_head": (o.d_head, HEADS), "minibatch": (o.minibatch, MINIBATCH),
               "g_label_input": (o.g_label_input, G_LABEL_INPUTS),
               "d_label_input": (o.d_label_input, (*D_LABEL_INPUTS, AC_GAN_D_INPUT)),
               "g_start_norm": (o.g_start_norm, ("channel", "unit")),
               "g_order": (o.g_order, ("norm_act", "act_norm"))}
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise GankitError(f"model.{key}={value!r} is not valid: use one of {', '.join(allowed)}")
    if o.g_start_norm == "unit" and (o.g_start != "dense" or o.g_norm != "batch"):
        raise GankitError("model.g_start_norm=unit needs model.g_start=dense and model.g_norm=batch")
    if not 0.0 <= o.leaky_slope < 1.0:
        raise GankitError(f"model.leaky_slope={o.leaky_slope} must be in [0, 1)")
    for key in ("g_widths", "d_widths", "g_strides"):
        values = getattr(o, key)
        if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
            raise GankitError(f"model.{key}={values!r} must be a non-empty list of positive integers")
    if len(o.g_strides) != len(o.g_widths):
        raise GankitError(f"model.g_strides has {len(o.g_strides)} entries but model.g_widths has "
                          f"{len(o.g_widths)}: give one stride per width (the last one leads to the image)")
    if not set(o.g_strides) <= {1, 2}:
        raise GankitError(f"model.g_strides={o.g_strides}: each stride must be 1 or 2")
    if 1 in o.g_strides and o.g_kernel % 2 == 0:
        raise GankitError(f"model.g_kernel={o.g_kernel} is even, which cannot keep a stride-1 layer's "
                          "size: use an odd kernel (e.g. 5) or only stride 2 in model.g_strides")
    if o.latent_dim < 1 or o.g_kernel < 1 or o.d_kernel < 1 or o.embedding_dim < 1:
        raise GankitError("model.latent_dim, g_kernel, d_kernel and embedding_dim must be at least 1")
    if not 0.0 <= o.d_dropout < 1.0 or not 0.0 < o.bn_momentum <= 1.0:
        raise GankitError(f"model.d_dropout={o.d_dropout} must be in [0, 1) and model.bn_momentum="
                          f"{o.bn_momentum} in (0, 1] (torch convention: 1 - Keras momentum)")
    if o.g_label_norm and (o.g_norm != "batch" or o.g_start_norm != "channel"):
        raise GankitError("model.g_label_norm makes G's batch norms class-conditional: it needs "
                          "model.g_norm=batch and model.g_start_norm=channel")
    if o.minibatch == "discrimination" and o.d_head != "dense":
        raise GankitError("model.minibatch=discrimination works on flattened features: use "
                          "model.d_head=dense, or model.minibatch=stddev")


class ConvGenerator(nn.Module):
    def __init__(self, size: int, channels: int, o: ConvGANOptions, num_classes: int = 0):
        super().__init__()
        upsampling = math.prod(o.g_strides)
        if size % upsampling:
            raise GankitError(
                f"size {size} is not a multiple of {upsampling}, the generator's total upsampling "
                f"(model.g_strides={o.g_strides}): choose a size such as {upsampling * max(1, size // upsampling)}"
            )
        self.size, self.channels, self.latent_dim, self.num_classes = size, channels, o.latent_dim, num_classes
        self.start_size, self.start_width = size // upsampling, o.g_widths[0]
        if self.start_size < 4 and size >= 32:
            # GDL's LEGO nets start from 4x4 at 64 px. Run at 32 px with all four stages, they start
            # from 2x2 and collapse to one blob within ~100 steps; with one stage fewer they train
            # (benchmarks/zoo.py). A warning, not an error: it is a finding, not a rule. Test-sized
            # images below 32 px are left alone.
            fewer = math.ceil(math.log2(4 / max(self.start_size, 1)))  # stride-2 stages to remove
            warnings.warn(
                f"the generator's first map is {self.start_size}x{self.start_size} at size {size} "
                f"(model.g_strides={o.g_strides} upsample {upsampling}x): starts below 4x4 tend to "
                f"collapse; use {fewer} stride-2 stage{'s' if fewer > 1 else ''} fewer (remove "
                f"{'them' if fewer > 1 else 'it'} from model.g_widths and model.g_strides; with "
                "model.d_head=conv shorten model.d_widths alike)", DesignWarning, stacklevel=2)
        self.output_range, output_layer = OUTPUTS[o.output]
        if o.g_label_norm and not num_classes:
            raise GankitError("model.g_label_norm shapes G's batch norm by the class label: train a "
                              "conditional GAN (--conditional, labelled data) or drop it")
        self.label_code = LabelToLatent(num_classes, o.g_label_input, o.embedding_dim) if num_classes else None
        z_dim = o.latent_dim + (self.label_code.out_features if self.label_code else 0)
        bias = o.g_norm == "none"
        s0, w0 = self.start_size, self.start_width
        if o.g_start == "dense":
            self.project = nn.Linear(z_dim, w0 * s0 * s0, bias=bias)
        else:  # a ConvT whose kernel is the whole first map turns the 1x1 code into s0 x s0
            self.project = nn.ConvTranspose2d(z_dim, w0, s0, 1, 0, bias=bias)
        act = lambda: ACTIVATIONS[o.g_activation](o.leaky_slope)  # noqa: E731
        label_norm = bool(num_classes) and o.g_label_norm

        def norm_of(c: int) -> nn.Module:
            return ConditionalBatchNorm2d(c, num_classes, o.bn_momentum) if label_norm else make_norm(o.g_norm, c, o.bn_momentum)

        # TF tutorial: batch norm over the Dense layer's units, before the reshape
        self.unit_norm = nn.BatchNorm1d(w0 * s0 * s0, momentum=o.bn_momentum) if o.g_start_norm == "unit" else None
        start = [] if self.unit_norm is not None else [norm_of(w0)]
        if o.g_project_activation:
            start = start + [act()] if o.g_order == "norm_act" else [act()] + start
        self.start = nn.Sequential(*start)
        blocks: list[nn.Module] = []
        for c_in, c_out, stride in zip(o.g_widths, o.g_widths[1:], o.g_strides):
            norm = norm_of(c_out)
            blocks += [conv_transpose(c_in, c_out, o.g_kernel, stride, bias),
                       *((norm, act()) if o.g_order == "norm_act" else (act(), norm))]
        blocks += [conv_transpose(o.g_widths[-1], channels, o.g_kernel, o.g_strides[-1], True), output_layer()]
        self.blocks = nn.Sequential(*blocks)
        glorot_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        assert z.dim() == 2 and z.shape[1] == self.latent_dim, f"z: expected (B, {self.latent_dim})"
        if self.label_code is not None:
            z = self.label_code(z, labels)  # (B, latent + code)
        if isinstance(self.project, nn.Linear):
            x = self.project(z)
            if self.unit_norm is not None:
                x = self.unit_norm(x)
            x = x.view(-1, self.start_width, self.start_size, self.start_size)
        else:
            x = self.project(z[:, :, None, None])  # (B, w0, s0, s0)
        for layer in (*self.start, *self.blocks):  # a class-conditional norm also takes the labels
            x = layer(x, labels) if isinstance(layer, ConditionalBatchNorm2d) else layer(x)
        return x  # (B, C, size, size)


class ConvDiscriminator(nn.Module):
    def __init__(self, size: int, channels: int, o: ConvGANOptions, num_classes: int = 0):
        super().__init__()
        self.size, self.channels, self.num_classes = size, channels, num_classes
        self.label_input = o.d_label_input if num_classes else None
        if o.d_classifier and not num_classes:
            raise GankitError("model.d_classifier (AC-GAN) makes D name the class: train a conditional "
                              "GAN (--conditional, labelled data) or drop it")
        c_in = channels + (num_classes if self.label_input == "channels" else 0)
        padding = (o.d_kernel - 1) // 2
        layers: list[nn.Module] = []
        spatial = size
        for i, width in enumerate(o.d_widths):
            layers += [nn.Conv2d(c_in, width, o.d_kernel, 2, padding, bias=(o.d_norm == "none" or i == 0)),
                       make_norm(o.d_norm if i else "none", width, o.bn_momentum),
                       ACTIVATIONS[o.d_activation](o.leaky_slope)]
            if o.d_dropout:
                layers.append(nn.Dropout(o.d_dropout))
            c_in, spatial = width, (spatial + 2 * padding - o.d_kernel) // 2 + 1
            if spatial < 1:
                raise GankitError(f"size {size} is too small for {len(o.d_widths)} stride-2 D layers "
                                  f"(model.d_widths={o.d_widths}): use a larger --size or fewer widths")
        self.features = nn.Sequential(*layers)
        self.stddev = MinibatchStdDev() if o.minibatch == "stddev" else None
        head_channels = c_in + (1 if self.stddev else 0)
        if o.d_head == "conv":
            self.head = nn.Conv2d(head_channels, 1, spatial)  # valid: the whole map -> 1x1
            self.discrimination = None
        else:
            flat = head_channels * spatial * spatial
            self.discrimination = MinibatchDiscrimination(flat) if o.minibatch == "discrimination" else None
            self.head = nn.Linear(self.discrimination.out_features if self.discrimination else flat, 1)
        self.projection = Projection(num_classes, c_in) if self.label_input == "projection" else None
        head_features = head_channels if o.d_head == "conv" else self.head.in_features
        self.classifier = nn.Linear(head_features, num_classes) if num_classes and o.d_classifier else None
        self.classifies = self.classifier is not None  # the ClassifyingDiscriminator contract
        glorot_init(self)

    def blocks_from_image(self) -> list[nn.Module]:
        """D's blocks in the order the image meets them, the head excluded (FreezeD freezes the
        first N; the contract FreezableDiscriminator)."""
        return split_at(self.features, (nn.Conv2d,))  # conv, norm, activation (, dropout)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.judge(images, labels)[0]  # (B,)

    def judge(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits (B,), class logits (B, classes) with d_classifier, else None) from one pass."""
        assert images.shape[1:] == (self.channels, self.size, self.size), (
            f"images: expected (B, {self.channels}, {self.size}, {self.size}), got {tuple(images.shape)}")
        x = label_maps(images, labels, self.num_classes) if self.label_input == "channels" else images
        h = self.features(x)  # (B, C, s, s)
        x = self.stddev(h) if self.stddev is not None else h
        if isinstance(self.head, nn.Conv2d):
            logit = self.head(x).flatten(1).squeeze(1)
            f = x.sum(dim=(2, 3))  # what the classifier reads: the map pooled
        else:
            f = x.flatten(1)
            if self.discrimination is not None:
                f = self.discrimination(f)
            logit = self.head(f).squeeze(1)
        if self.projection is not None:
            logit = logit + self.projection(h.sum(dim=(2, 3)), labels)
        return logit, (self.classifier(f) if self.classifier is not None else None)
