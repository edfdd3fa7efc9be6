"""How one training step of a generation task updates G and D. The loop calls
`UPDATES[config.update]`; each task registers the strategies it can run.

    joint        one G pass and one D pass on the fakes feed both losses (keras GAN-ADA, the
                 TensorFlow DCGAN tutorial: two tapes over one forward pass)
    alternating  d_steps D steps on fresh batches with G frozen, then g_steps G steps (WGAN-GP)
    two_phase    Hands-On ML's textbook step: D on one concatenated real + fake batch with targets
                 1 / 0, then G through D with D's weights frozen

Every image D sees goes through the augmentation (`ctx.critic`). Except in two_phase, reals and
fakes go through D in separate passes, so batch norm never mixes their statistics. D's side of
every strategy is step.discriminator_loss, so a strategy is only the order of passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..registry import Registry
from .step import StepContext, d_stats, d_step, discriminator_loss, generator_loss, with_replay

Tensor = torch.Tensor
Batch = tuple[Tensor, Tensor | None]  # (images in G's value range on the device, labels or None)
UpdateFn = Callable[[StepContext, Callable[[], Batch], int, int], dict[str, Tensor]]


@dataclass(frozen=True)
class Update:
    step: UpdateFn  # (ctx, next_batch, d_steps, g_steps) -> scalars to report
    batches_per_step: Callable[[int], int]  # d_steps -> real batches one step draws (for --epochs)
    description: str = ""
    mixes_real_and_fake: bool = False  # one D pass over reals and fakes together
    task: str = "generation"  # the task whose batches it takes (tasks/)
    several_steps: bool = False  # takes d_steps / g_steps > 1


UPDATES: Registry[Update] = Registry("update", lambda x: isinstance(x, Update))


def joint_update(ctx: StepContext, next_batch: Callable[[], Batch], d_steps: int = 1, g_steps: int = 1) -> dict[str, Tensor]:
    """One G pass and one D pass on the fakes feed both losses, as a persistent GradientTape does
    in the keras-io GAN-ADA example: each net's gradient is taken before either net moves. This
    saves a G forward and a D forward on the fakes per step (~25-30% of the step on CPU)."""
    real, labels = next_batch()
    n = real.shape[0]
    with ctx.autocast():
        fake = ctx.generate(n, labels)
        real_logits, real_classes = ctx.judge(real, labels)
        d_fake, d_labels, k = with_replay(ctx, fake, labels)
        d_fake_logits, d_fake_classes = ctx.judge(d_fake, d_labels)  # B - k fresh fakes and k replayed ones
        g_fake_logits, g_fake_classes = d_fake_logits, d_fake_classes
        if k:  # G's loss needs all B fresh fakes: the k that replay displaced get their own pass,
            # so D's batch statistics (minibatch stddev, discrimination) see B images each time
            rest_labels = labels[n - k:] if labels is not None else None
            rest, rest_classes = ctx.judge(fake[n - k:], rest_labels)
            g_fake_logits = torch.cat([d_fake_logits[: n - k], rest])
            if rest_classes is not None:
                g_fake_classes = torch.cat([d_fake_classes[: n - k], rest_classes])
        classes = (real_classes, d_fake_classes, d_labels) if real_classes is not None else None
        d_loss, stats = discriminator_loss(ctx, real_logits, d_fake_logits, real, d_fake, labels, classes)
        g_loss, g_stats = generator_loss(ctx, g_fake_logits, labels, g_fake_classes)
    ctx.opt_g.zero_grad(set_to_none=True)
    ctx.opt_d.zero_grad(set_to_none=True)
    # `inputs=` keeps each loss's gradient to its own net: d_loss never touches G and vice versa.
    ctx.backward(g_loss, ctx.g_params, retain_graph=True)
    ctx.backward(d_loss, ctx.d_params)
    d_step(ctx, stats)
    ctx.guard.step(ctx.opt_g, ctx.g_params)
    if k:
        stats["replay/fraction"] = torch.tensor(k / n)
    return {"loss/d": d_loss.detach(), "loss/g": g_loss.detach(), **stats, **g_stats,
            **d_stats(ctx, real_logits, g_fake_logits)}


def _g_steps(ctx: StepContext, labels: Tensor | None, n: int, g_steps: int) -> tuple[Tensor, dict[str, Tensor]]:
    """`g_steps` G steps through D (D's weights untouched: only G's parameters get gradients)."""
    for _ in range(g_steps):
        with ctx.autocast():
            fake_logits, fake_classes = ctx.judge(ctx.generate(n, labels), labels)
            g_loss, g_stats = generator_loss(ctx, fake_logits, labels, fake_classes)
        ctx.opt_g.zero_grad(set_to_none=True)
        ctx.backward(g_loss, ctx.g_params)
        ctx.guard.step(ctx.opt_g, ctx.g_params)
    return g_loss, g_stats


def alternating_update(ctx: StepContext, next_batch: Callable[[], Batch], d_steps: int = 1,
                       g_steps: int = 1) -> dict[str, Tensor]:
    """`d_steps` D steps on fresh batches with G frozen, then `g_steps` G steps through the new D."""
    for _ in range(d_steps):
        real, labels = next_batch()
        with ctx.autocast():
            with torch.no_grad():
                fake = ctx.generate(real.shape[0], labels)
            fake, fake_labels, k = with_replay(ctx, fake, labels)
            real_logits, real_classes = ctx.judge(real, labels)
            fake_logits, fake_classes = ctx.judge(fake, fake_labels)
            classes = (real_classes, fake_classes, fake_labels) if real_classes is not None else None
            d_loss, stats = discriminator_loss(ctx, real_logits, fake_logits, real, fake, labels, classes)
        ctx.opt_d.zero_grad(set_to_none=True)
        ctx.backward(d_loss, ctx.d_params)
        d_step(ctx, stats)
    stats.update(d_stats(ctx, real_logits, fake_logits))
    if k:
        stats["replay/fraction"] = torch.tensor(k / real.shape[0])
    g_loss, g_stats = _g_steps(ctx, labels, real.shape[0], g_steps)
    return {"loss/d": d_loss.detach(), "loss/g": g_loss.detach(), **stats, **g_stats}


def two_phase_update(ctx: StepContext, next_batch: Callable[[], Batch], d_steps: int = 1,
                     g_steps: int = 1) -> dict[str, Tensor]:
    """Hands-On ML's train_gan: phase one trains D on [reals; fakes] with targets [1; 0] in one
    pass, phase two trains G through D with D frozen. One pass means batch norm in D would see a
    mixed batch; the book's D has none."""
    for _ in range(d_steps):
        real, labels = next_batch()
        n = real.shape[0]
        with ctx.autocast():
            with torch.no_grad():
                fake = ctx.generate(n, labels)
            fake, fake_labels, k = with_replay(ctx, fake, labels)
            real_seen, fake_seen = ctx.augment(real), ctx.augment(fake)
            both_labels = torch.cat([labels, fake_labels]) if labels is not None else None
            logits, both_classes = ctx.judge(torch.cat([real_seen, fake_seen]), both_labels, augmented=True)
            real_logits, fake_logits = logits[:n], logits[n:]
            classes = (both_classes[:n], both_classes[n:], fake_labels) if both_classes is not None else None
            d_loss, stats = discriminator_loss(ctx, real_logits, fake_logits, real, fake, labels, classes)
        ctx.opt_d.zero_grad(set_to_none=True)
        ctx.backward(d_loss, ctx.d_params)
        d_step(ctx, stats)
    stats.update(d_stats(ctx, real_logits, fake_logits))
    if k:
        stats["replay/fraction"] = torch.tensor(k / n)
    g_loss, g_stats = _g_steps(ctx, labels, n, g_steps)
    return {"loss/d": d_loss.detach(), "loss/g": g_loss.detach(), **stats, **g_stats}


UPDATES.register("joint", Update(joint_update, lambda d_steps: 1,
                                 "one forward pass feeds both losses (keras GAN-ADA, TF tutorial)"))
UPDATES.register("alternating", Update(alternating_update, lambda d_steps: d_steps,
                                       "d_steps D steps, then g_steps G steps (WGAN-GP)", several_steps=True))
UPDATES.register("two_phase", Update(two_phase_update, lambda d_steps: d_steps,
                                     "D on a concatenated real+fake batch, then G (Hands-On ML)",
                                     mixes_real_and_fake=True, several_steps=True))
