"""What one training step works with (`StepContext`), and the discriminator's side of every
update strategy: its loss (targets, the adversarial loss, a gradient penalty through the
augmentation), the balance trick, replay of past fakes, and D's accuracies.

A strategy (updates.py, and each task's own) is then only the order of forward and backward
passes; everything here is shared.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TargetConfig
from ..contracts import ClassifyingDiscriminator, implements
from ..losses import AdversarialLoss, Penalty, make_targets
from ..losses.path_length import PathLengthPenalty
from .guard import StepGuard
from .replay import ReplayBuffer

Tensor = torch.Tensor


@dataclass
class Objective:
    """What D and G minimise: the recipe's adversarial loss and the stabilisers around it."""

    loss: AdversarialLoss
    targets: TargetConfig = field(default_factory=TargetConfig)
    penalty: Penalty | None = None
    penalty_weight: float = 0.0
    penalty_every: int = 1  # lazy regularisation (StyleGAN2): the penalty on every N-th step only
    drift: float = 0.0  # ProGAN's epsilon: + drift * E[D(real)^2], so a critic's scores cannot wander off
    path_length: PathLengthPenalty | None = None  # G's path-length regularisation (StyleGAN2)
    classifier_weight: float = 1.0  # AC-GAN: the class loss's weight, where D has a classifier head
    classifier_fakes: bool = True  # AC-GAN: D's head learns to name the fakes too (Odena et al.)
    d_skip_below: float | None = None  # skip D's step while its loss is below this
    weights: dict[str, float] = field(default_factory=dict)  # a task's own terms, e.g. cycle, l1


@dataclass
class StepContext:
    """Everything one training step reads: the nets and their optimisers, the objective, and how
    the step runs (device, precision, augmentation of D's view, the optimiser-step guard)."""

    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    objective: Objective
    device: torch.device
    autocast: Callable[[], AbstractContextManager]
    augment: Callable[[Tensor], Tensor] = field(default=lambda images: images)
    memory_format: torch.memory_format = torch.contiguous_format
    guard: StepGuard = field(default_factory=StepGuard)  # all optimiser steps: sync ranks, skip non-finite
    replay: ReplayBuffer | None = None  # past fakes mixed into D's fake batch (the task's)
    pools: dict[str, ReplayBuffer] = field(default_factory=dict)  # one per part of a D made of several
    step: int = 0  # the training step about to run (set by the loop; drives lazy regularisation)

    def __post_init__(self):
        self.g_params = [p for p in self.G.parameters() if p.requires_grad]
        self.d_params = [p for p in self.D.parameters() if p.requires_grad]
        # AC-GAN: D also names the class of what it sees, and both nets learn from that
        self.classifies = (implements(self.D, ClassifyingDiscriminator) and self.D.classifies
                           and self.objective.classifier_weight > 0)

    def backward(self, loss: Tensor, params: list, retain_graph: bool = False) -> None:
        """Gradients of `loss` for `params` only (scaled for fp16: see guard.py)."""
        self.guard.scale(loss).backward(inputs=params, retain_graph=retain_graph)

    def critic(self, images: Tensor, condition=None) -> Tensor:
        """D's logits for images as D sees them: augmented first."""
        return self.D(self.augment(images), condition)

    def judge(self, images: Tensor, condition=None, augmented: bool = False) -> tuple[Tensor, Tensor | None]:
        """D's logits and, where D classifies (AC-GAN), its class logits (B, K) from the same pass;
        else None. `augmented`: the images are already as D sees them."""
        seen = images if augmented else self.augment(images)
        if self.classifies:
            return self.D.judge(seen, condition)
        return self.D(seen, condition), None

    def latents(self, n: int) -> Tensor:
        return torch.randn(n, self.G.latent_dim, device=self.device)

    def generate(self, n: int, labels: Tensor | None) -> Tensor:
        return self.G(self.latents(n), labels).contiguous(memory_format=self.memory_format)


def d_stats(ctx: StepContext, real_logits: Tensor, fake_logits: Tensor) -> dict[str, Tensor]:
    """D's accuracies and the ADA signal, measured against the loss's decision boundary (a
    Wasserstein critic has none: its scores may drift as a whole, so only their gap is shown)."""
    real_logits, fake_logits = real_logits.detach().float(), fake_logits.detach().float()
    boundary = ctx.objective.loss.boundary
    if boundary is None:
        return {"d/score_gap": real_logits.mean() - fake_logits.mean()}
    return {
        "d/acc_real": (real_logits > boundary).float().mean(),
        "d/acc_fake": (fake_logits < boundary).float().mean(),
        # E[sign(D(real))]: the overfitting signal r_t of StyleGAN2-ADA (= 2 * acc_real - 1)
        "d/sign_real": (real_logits - boundary).sign().mean(),
    }


def discriminator_loss(ctx: StepContext, real_logits: Tensor, fake_logits: Tensor, real: Tensor,
                       fake: Tensor, labels: Tensor | None,
                       classes: tuple[Tensor, Tensor, Tensor] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """D's loss on its logits for the augmented images it saw, plus the gradient penalty. `real`
    and `fake` are the images before augmentation: the penalty differentiates D through the
    augmentation with respect to them, as StyleGAN2-ADA takes R1. `classes`: an AC-GAN D's
    (class logits of the reals, of the fakes, the fakes' labels): D also learns to name both
    (Odena et al. 2017: L_C = log P(C = c | real) + log P(C = c | fake), maximised by D and G),
    or the reals alone with `classifier_fakes` off."""
    real_target, fake_target, stats = make_targets(ctx.objective.targets, real_logits.shape[0],
                                                   fake_logits.shape[0], ctx.device)
    # in fp32: under bf16 autocast a 0.9 target would become 0.898
    adversarial = ctx.objective.loss.d_loss(real_logits.float(), fake_logits.float(), real_target, fake_target)
    stats["loss/d_adv"] = adversarial.detach()
    loss = adversarial
    if ctx.objective.penalty is not None and ctx.step % ctx.objective.penalty_every == 0:
        n = min(real.shape[0], fake.shape[0])
        penalty = ctx.objective.penalty.fn(ctx.critic, real[:n], fake[:n], labels[:n] if labels is not None else None)
        # weighted by the interval, so the penalty's average strength does not depend on it
        loss = loss + ctx.objective.penalty_weight * ctx.objective.penalty_every * penalty
        stats[f"loss/{ctx.objective.penalty.name}"] = penalty.detach()
    if classes is not None:
        real_classes, fake_classes, fake_labels = classes
        named = F.cross_entropy(real_classes.float(), labels)
        if ctx.objective.classifier_fakes:
            named = named + F.cross_entropy(fake_classes.float(), fake_labels)
        loss = loss + ctx.objective.classifier_weight * named
        stats["loss/d_class"] = named.detach()
        stats["d/class_acc_real"] = (real_classes.argmax(1) == labels).float().mean()
    if ctx.objective.drift:
        drift = real_logits.float().square().mean()
        loss = loss + ctx.objective.drift * drift
        stats["loss/drift"] = drift.detach()
    return loss, stats


def generator_loss(ctx: StepContext, fake_logits: Tensor, labels: Tensor | None,
                   fake_classes: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """G's adversarial loss on D's logits for its fakes; with an AC-GAN D, the loss of D's class
    logits for them against the labels they were drawn for; and on G's lazy-regularisation steps
    the path-length penalty on fresh latents (batch / batch_shrink of them, the batch's labels),
    weighted by its interval as the reference does."""
    loss = ctx.objective.loss.g_loss(fake_logits.float())
    stats: dict[str, Tensor] = {}
    if fake_classes is not None:
        named = F.cross_entropy(fake_classes.float(), labels)
        loss = loss + ctx.objective.classifier_weight * named
        stats["loss/g_class"] = named.detach()
    pl = ctx.objective.path_length
    if pl is not None and ctx.step % pl.every == 0:
        n = max(1, fake_logits.shape[0] // pl.batch_shrink)
        penalty = pl(ctx.G, ctx.latents(n), labels[:n] if labels is not None else None).mean()
        loss = loss + pl.weight * pl.every * penalty
        stats["loss/pl"] = penalty.detach()
        stats["pl/mean"] = pl.pl_mean.detach().clone()
    return loss, stats


def d_step(ctx: StepContext, stats: dict[str, Tensor]) -> None:
    """D's optimiser step, unless D's adversarial loss (penalties aside) is below `d_skip_below`:
    the balance trick, letting G catch up instead of making a perfect D whose gradients vanish."""
    skip = ctx.objective.d_skip_below is not None and float(stats["loss/d_adv"]) < ctx.objective.d_skip_below
    if ctx.objective.d_skip_below is not None:
        stats["d/skipped"] = torch.tensor(float(skip))
    if not skip:
        ctx.guard.step(ctx.opt_d, ctx.d_params)


def with_replay(ctx: StepContext, fake: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor | None, int]:
    """(D's fake batch: the first B - k fakes then k replayed ones, their labels, k)."""
    if ctx.replay is None:
        return fake, labels, 0
    k = ctx.replay.replay_count(fake.shape[0])
    if k:
        old, old_labels = ctx.replay.sample(k)  # before pushing: D sees k genuinely older fakes
    ctx.replay.push(fake, labels)
    if k == 0:
        return fake, labels, 0
    # not detached: in the joint update G's loss reads the fresh part's logits (d_loss's backward
    # is restricted to D's parameters, so no gradient of D's loss reaches G anyway)
    mixed = torch.cat([fake[: fake.shape[0] - k], old.to(fake.dtype)])
    mixed = mixed.contiguous(memory_format=ctx.memory_format)
    mixed_labels = torch.cat([labels[: labels.shape[0] - k], old_labels]) if labels is not None else None
    return mixed, mixed_labels, k


BATCH_COUPLED = (nn.modules.batchnorm._BatchNorm,)  # plus the minibatch layers, added below


def batch_coupled_layers(D: nn.Module) -> list[str]:
    """Names of D's layers whose output for one image depends on the others in its batch."""
    from ..nn import MinibatchDiscrimination, MinibatchStdDev

    kinds = BATCH_COUPLED + (MinibatchStdDev, MinibatchDiscrimination)
    return [name for name, m in D.named_modules() if isinstance(m, kinds)]
