"""What the models of each kind promise the rest of gankit, declared in one place.

The loop, the tasks and the tools rely on these attributes and call signatures and on nothing
else; tests/test_models.py checks every registered recipe's nets against them. They are Protocols
(structural: a model needs no base class); ask `implements(model, Contract)`, not isinstance (see
there why).

Shapes: B images, C channels, S pixels a side; images are floats in the model's `output_range`.
"""

from __future__ import annotations

import functools
import inspect
from typing import Generic, Protocol, runtime_checkable

import torch

Tensor = torch.Tensor


@runtime_checkable
class ImageGenerator(Protocol):
    """Noise (and, if conditional, a class label) to an image: the generation task's G."""

    latent_dim: int  # z is (B, latent_dim), drawn from N(0, 1)
    num_classes: int  # 0: unconditional; else labels are (B,) int64 in [0, num_classes)
    # (low, high) of the images it draws, e.g. (-1, 1) for tanh: where the task puts real images. A
    # linear output (StyleGAN's, ProGAN's, as their references) may overshoot; pictures and metrics clip.
    output_range: tuple[float, float]

    def __call__(self, z: Tensor, labels: Tensor | None = None) -> Tensor:  # -> (B, C, S, S)
        ...


@runtime_checkable
class Discriminator(Protocol):
    """An image (and its condition: a class label, or for paired translation the input image) to
    one logit per image: (B, ...) -> (B,) for one score, or (B, 1, p, p) for a patch of scores."""

    def __call__(self, images: Tensor, condition: Tensor | None = None) -> Tensor:
        ...


@runtime_checkable
class ClassifyingDiscriminator(Discriminator, Protocol):
    """A D with an auxiliary classifier (AC-GAN, Odena et al. 2017): from the same pass, the
    real/fake logit and logits over the classes. `classifies` is False when built without one."""

    classifies: bool

    def judge(self, images: Tensor, condition: Tensor | None = None) -> tuple[Tensor, Tensor]:
        ...  # -> (logits (B,), class logits (B, num_classes))


@runtime_checkable
class FreezableDiscriminator(Discriminator, Protocol):
    """A D made of blocks, for FreezeD (Mo et al. 2020): fine-tuning keeps the first N fixed.
    The head (the layers that make the logit) is not a block: it always trains."""

    def blocks_from_image(self) -> list[torch.nn.Module]:  # in the order the image meets them
        ...


@runtime_checkable
class StyleGenerator(ImageGenerator, Protocol):
    """A generator with a mapping network: styles w, mixing and truncation work on these."""

    num_ws: int  # style vectors the synthesis network takes, coarsest first
    w_dim: int
    w_avg: Tensor  # (w_dim,) running average of w, the centre of truncation

    def mapping(self, z: Tensor, labels: Tensor | None = None) -> Tensor:  # -> (B, w_dim)
        ...

    def synthesis(self, ws: Tensor) -> Tensor:  # (B, num_ws, w_dim) -> (B, C, S, S)
        ...


@runtime_checkable
class StyleAffines(StyleGenerator, Protocol):
    """A style generator that shows the affine maps from w to each style conv's style (SeFa's
    closed-form directions factorise them)."""

    def style_weights(self) -> list[tuple[int, Tensor]]:  # [(index into ws, weight (styles, w_dim))]
        ...


@runtime_checkable
class StyleTrainingPath(StyleGenerator, Protocol):
    """A style generator that says which styles training draws (G(z) = synthesis(styles(z)),
    style mixing included): path-length regularisation differentiates images w.r.t. them."""

    def styles(self, z: Tensor, labels: Tensor | None = None) -> Tensor:  # -> (B, num_ws, w_dim)
        ...


@runtime_checkable
class Growing(Protocol):
    """A net whose shape changes with training progress (progressive growing): the loop tells it
    how many images have been seen before every step (recipes that grow declare `grows`)."""

    def set_progress(self, images_seen: int) -> bool:
        """-> True when a new phase begins and the optimisers' moments should start over."""
        ...

    def reals_as_drawn(self, images: Tensor) -> Tensor:
        """Full-size reals (B, C, S, S) as G currently draws (during a fade, the same blend)."""
        ...

    @property
    def phase(self) -> tuple[int, float]:
        """(the resolution drawn now, the newest block's weight alpha in (0, 1]): for the logs."""
        ...


@runtime_checkable
class ImageTranslator(Protocol):
    """An image of one domain to the matching image of another: the translation tasks' G."""

    directions: tuple[str, ...]  # what `direction` may be: ("a2b", "b2a") or just ("a2b",)
    output_range: tuple[float, float]
    channels: int

    def __call__(self, images: Tensor, direction: str = "a2b") -> Tensor:  # (B, C, S, S) -> same
        ...


@runtime_checkable
class DomainDiscriminators(Protocol):
    """One discriminator per domain (unpaired translation): D(images, domain) judges images of
    that domain, and part(domain) is that discriminator alone (for its penalty and its pool)."""

    parts: tuple[str, ...]

    def __call__(self, images: Tensor, domain: str) -> Tensor:
        ...

    def part(self, domain: str) -> Discriminator:
        ...


def implements(obj: object, contract: type) -> bool:
    """Whether `obj` has every member that `contract` declares (attributes, methods, properties).

    Not isinstance: from Python 3.12 a runtime-checkable Protocol looks members up with
    inspect.getattr_static, which does not see an nn.Module's submodules, parameters and buffers
    (they live in _modules, _parameters and _buffers and are found through __getattr__), so a
    StyleGAN's G would fail isinstance(G, StyleGenerator) for want of `mapping` and `w_avg` on
    3.12 while passing on 3.11."""
    return all(hasattr(obj, name) for name in _members(contract))


@functools.cache
def _members(contract: type) -> tuple[str, ...]:
    names: set[str] = set()
    for cls in contract.__mro__:
        if cls in (Protocol, Generic, object) or not getattr(cls, "_is_protocol", False):
            continue
        names.update(inspect.get_annotations(cls))
        names.update(name for name in vars(cls) if not name.startswith("_") or name == "__call__")
    return tuple(sorted(names))
