"""How one training step updates G and D. The loop calls `UPDATES[config.update]`.

    joint        one G pass and one D pass on the fakes feed both losses (keras GAN-ADA, the
                 TensorFlow DCGAN tutorial: two tapes over one forward pass)
    alternating  d_steps D steps on fresh batches with G frozen, then g_steps G steps (WGAN-GP)
    two_phase    Hands-On ML's textbook step: D on one concatenated real + fake batch with targets
                 1 / 0, then G through D with D's weights frozen
    cycle        CycleGAN's step on a pair of unpaired batches (A, B): both generators from one
                 loss (adversarial + cycle + identity), then both discriminators on pooled fakes

Every image D sees goes through `nets.augment` (the hook augmentation pipelines plug into). Except
in two_phase, reals and fakes go through D in separate passes, so batch norm never mixes their
statistics. D's side of every strategy is `discriminator_loss`: targets (smoothing, noise, flips),
the adversarial loss, a gradient penalty, and experience replay all live there, so a strategy is
only the order of passes.
"""

from __future__ import annotations

import dataclasses
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from ..config import TargetConfig
from ..losses import AdversarialLoss, Penalty, make_targets
from ..losses.cycle import cycle_loss, identity_loss
from ..registry import Registry
from .guard import StepGuard
from .replay import ReplayBuffer

Tensor = torch.Tensor
Batch = tuple[Tensor, Tensor | None]  # (images in G's value range on the device, labels or None)


@dataclass
class Nets:
    """What an update step touches."""

    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    loss: AdversarialLoss
    device: torch.device
    autocast: Callable[[], AbstractContextManager]
    augment: Callable[[Tensor], Tensor] = field(default=lambda images: images)
    memory_format: torch.memory_format = torch.contiguous_format
    targets: TargetConfig = field(default_factory=TargetConfig)
    penalty: Penalty | None = None
    penalty_weight: float = 0.0
    replay: ReplayBuffer | None = None
    d_skip_below: float | None = None  # skip D's step while its loss is below this
    penalty_every: int = 1  # lazy regularisation (StyleGAN2): the penalty on every N-th step only
    step: int = 0  # the training step about to run (set by the loop; drives lazy regularisation)
    guard: StepGuard = field(default_factory=StepGuard)  # all optimiser steps: sync ranks, skip non-finite
    pools: dict[str, ReplayBuffer] = field(default_factory=dict)  # one per part of a D made of several

    def __post_init__(self):
        self.g_params = [p for p in self.G.parameters() if p.requires_grad]
        self.d_params = [p for p in self.D.parameters() if p.requires_grad]

    def backward(self, loss: Tensor, params: list, retain_graph: bool = False) -> None:
        """Gradients of `loss` for `params` only (scaled for fp16: see guard.py)."""
        self.guard.scale(loss).backward(inputs=params, retain_graph=retain_graph)

    def critic(self, images: Tensor, labels: Tensor | None) -> Tensor:
        """D's logits for images as D sees them: augmented first."""
        return self.D(self.augment(images), labels)

    def latents(self, n: int) -> Tensor:
        return torch.randn(n, self.G.latent_dim, device=self.device)

    def generate(self, n: int, labels: Tensor | None) -> Tensor:
        return self.G(self.latents(n), labels).contiguous(memory_format=self.memory_format)


UpdateFn = Callable[[Nets, Callable[[], Batch], int, int], dict[str, Tensor]]


@dataclass(frozen=True)
class Update:
    step: UpdateFn  # (nets, next_batch, d_steps, g_steps) -> scalars to report
    batches_per_step: Callable[[int], int]  # d_steps -> real batches one step draws (for --epochs)
    description: str = ""
    mixes_real_and_fake: bool = False  # one D pass over reals and fakes together
    data_kind: str = "images"  # what next_batch yields: "images" or "unpaired" ((A, B), None)


UPDATES: Registry[Update] = Registry("update", lambda x: isinstance(x, Update))


def _d_stats(nets: Nets, real_logits: Tensor, fake_logits: Tensor) -> dict[str, Tensor]:
    """D's accuracies and the ADA signal, measured against the loss's decision boundary (a
    Wasserstein critic has none: its scores may drift as a whole, so only their gap is shown)."""
    real_logits, fake_logits = real_logits.detach().float(), fake_logits.detach().float()
    boundary = nets.loss.boundary
    if boundary is None:
        return {"d/score_gap": real_logits.mean() - fake_logits.mean()}
    return {
        "d/acc_real": (real_logits > boundary).float().mean(),
        "d/acc_fake": (fake_logits < boundary).float().mean(),
        # E[sign(D(real))]: the overfitting signal r_t of StyleGAN2-ADA (= 2 * acc_real - 1)
        "d/sign_real": (real_logits - boundary).sign().mean(),
    }


def discriminator_loss(nets: Nets, real_logits: Tensor, fake_logits: Tensor, real: Tensor,
                       fake: Tensor, labels: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
    """D's loss on its logits for the augmented images it saw, plus the gradient penalty. `real`
    and `fake` are the images before augmentation: the penalty differentiates D through the
    augmentation with respect to them, as StyleGAN2-ADA takes R1."""
    real_target, fake_target, stats = make_targets(nets.targets, real_logits.shape[0],
                                                   fake_logits.shape[0], nets.device)
    # in fp32: under bf16 autocast a 0.9 target would become 0.898
    adversarial = nets.loss.d_loss(real_logits.float(), fake_logits.float(), real_target, fake_target)
    stats["loss/d_adv"] = adversarial.detach()
    loss = adversarial
    if nets.penalty is not None and nets.step % nets.penalty_every == 0:
        n = min(real.shape[0], fake.shape[0])
        penalty = nets.penalty.fn(nets.critic, real[:n], fake[:n], labels[:n] if labels is not None else None)
        # weighted by the interval, so the penalty's average strength does not depend on it
        loss = loss + nets.penalty_weight * nets.penalty_every * penalty
        stats[f"loss/{nets.penalty.name}"] = penalty.detach()
    return loss, stats


def _d_step(nets: Nets, stats: dict[str, Tensor]) -> None:
    """D's optimiser step, unless D's adversarial loss (penalties aside) is below `d_skip_below`:
    the balance trick, letting G catch up instead of making a perfect D whose gradients vanish."""
    skip = nets.d_skip_below is not None and float(stats["loss/d_adv"]) < nets.d_skip_below
    if nets.d_skip_below is not None:
        stats["d/skipped"] = torch.tensor(float(skip))
    if not skip:
        nets.guard.step(nets.opt_d, nets.d_params)


def _with_replay(nets: Nets, fake: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor | None, int]:
    """(D's fake batch: the first B - k fakes then k replayed ones, their labels, k)."""
    if nets.replay is None:
        return fake, labels, 0
    k = nets.replay.replay_count(fake.shape[0])
    if k:
        old, old_labels = nets.replay.sample(k)  # before pushing: D sees k genuinely older fakes
    nets.replay.push(fake, labels)
    if k == 0:
        return fake, labels, 0
    # not detached: in the joint update G's loss reads the fresh part's logits (d_loss's backward
    # is restricted to D's parameters, so no gradient of D's loss reaches G anyway)
    mixed = torch.cat([fake[: fake.shape[0] - k], old.to(fake.dtype)])
    mixed = mixed.contiguous(memory_format=nets.memory_format)
    mixed_labels = torch.cat([labels[: labels.shape[0] - k], old_labels]) if labels is not None else None
    return mixed, mixed_labels, k


def joint_update(nets: Nets, next_batch: Callable[[], Batch], d_steps: int = 1, g_steps: int = 1) -> dict[str, Tensor]:
    """One G pass and one D pass on the fakes feed both losses, as a persistent GradientTape does
    in the keras-io GAN-ADA example: each net's gradient is taken before either net moves. This
    saves a G forward and a D forward on the fakes per step (~25-30% of the step on CPU)."""
    real, labels = next_batch()
    n = real.shape[0]
    with nets.autocast():
        fake = nets.generate(n, labels)
        real_logits = nets.critic(real, labels)
        d_fake, d_labels, k = _with_replay(nets, fake, labels)
        d_fake_logits = nets.critic(d_fake, d_labels)  # B - k fresh fakes and k replayed ones
        g_fake_logits = d_fake_logits
        if k:  # G's loss needs all B fresh fakes: the k that replay displaced get their own pass,
            # so D's batch statistics (minibatch stddev, discrimination) see B images each time
            rest_labels = labels[n - k:] if labels is not None else None
            rest = nets.critic(fake[n - k:], rest_labels)
            g_fake_logits = torch.cat([d_fake_logits[: n - k], rest])
        d_loss, stats = discriminator_loss(nets, real_logits, d_fake_logits, real, d_fake, labels)
        g_loss = nets.loss.g_loss(g_fake_logits.float())
    nets.opt_g.zero_grad(set_to_none=True)
    nets.opt_d.zero_grad(set_to_none=True)
    # `inputs=` keeps each loss's gradient to its own net: d_loss never touches G and vice versa.
    nets.backward(g_loss, nets.g_params, retain_graph=True)
    nets.backward(d_loss, nets.d_params)
    _d_step(nets, stats)
    nets.guard.step(nets.opt_g, nets.g_params)
    if k:
        stats["replay/fraction"] = torch.tensor(k / n)
    return {"loss/d": d_loss.detach(), "loss/g": g_loss.detach(), **stats,
            **_d_stats(nets, real_logits, g_fake_logits)}


def _g_steps(nets: Nets, labels: Tensor | None, n: int, g_steps: int) -> Tensor:
    """`g_steps` G steps through D (D's weights untouched: only G's parameters get gradients)."""
    for _ in range(g_steps):
        with nets.autocast():
            g_loss = nets.loss.g_loss(nets.critic(nets.generate(n, labels), labels).float())
        nets.opt_g.zero_grad(set_to_none=True)
        nets.backward(g_loss, nets.g_params)
        nets.guard.step(nets.opt_g, nets.g_params)
    return g_loss


def alternating_update(nets: Nets, next_batch: Callable[[], Batch], d_steps: int = 1,
                       g_steps: int = 1) -> dict[str, Tensor]:
    """`d_steps` D steps on fresh batches with G frozen, then `g_steps` G steps through the new D."""
    for _ in range(d_steps):
        real, labels = next_batch()
        with nets.autocast():
            with torch.no_grad():
                fake = nets.generate(real.shape[0], labels)
            fake, fake_labels, k = _with_replay(nets, fake, labels)
            real_logits = nets.critic(real, labels)
            fake_logits = nets.critic(fake, fake_labels)
            d_loss, stats = discriminator_loss(nets, real_logits, fake_logits, real, fake, labels)
        nets.opt_d.zero_grad(set_to_none=True)
        nets.backward(d_loss, nets.d_params)
        _d_step(nets, stats)
    stats.update(_d_stats(nets, real_logits, fake_logits))
    if k:
        stats["replay/fraction"] = torch.tensor(k / real.shape[0])
    g_loss = _g_steps(nets, labels, real.shape[0], g_steps)
    return {"loss/d": d_loss.detach(), "loss/g": g_loss.detach(), **stats}


def two_phase_update(nets: Nets, next_batch: Callable[[], Batch], d_steps: int = 1,
                     g_steps: int = 1) -> dict[str, Tensor]:
    """Hands-On ML's train_gan: phase one trains D on [reals; fakes] with targets [1; 0] in one
    pass, phase two trains G through D with D frozen. One pass means batch norm in D would see a
    mixed batch; the book's D has none."""
    for _ in range(d_steps):
        real, labels = next_batch()
        n = real.shape[0]
        with nets.autocast():
            with torch.no_grad():
                fake = nets.generate(n, labels)
            fake, fake_labels, k = _with_replay(nets, fake, labels)
            real_seen, fake_seen = nets.augment(real), nets.augment(fake)
            both_labels = torch.cat([labels, fake_labels]) if labels is not None else None
            logits = nets.D(torch.cat([real_seen, fake_seen]), both_labels)
            real_logits, fake_logits = logits[:n], logits[n:]
            d_loss, stats = discriminator_loss(nets, real_logits, fake_logits, real, fake, labels)
        nets.opt_d.zero_grad(set_to_none=True)
        nets.backward(d_loss, nets.d_params)
        _d_step(nets, stats)
    stats.update(_d_stats(nets, real_logits, fake_logits))
    if k:
        stats["replay/fraction"] = torch.tensor(k / n)
    g_loss = _g_steps(nets, labels, n, g_steps)
    return {"loss/d": d_loss.detach(), "loss/g": g_loss.detach(), **stats}


def cycle_update(nets: Nets, next_batch: Callable[[], Batch], d_steps: int = 1,
                 g_steps: int = 1) -> dict[str, Tensor]:
    """CycleGAN's step (Zhu et al. 2017), in the reference's order: both generators from one loss
    with the discriminators as they are, then both discriminators on fakes from their pools.

    G's loss: fool each D (adversarial), come back to the input through the other G (cycle, L1,
    weight lambda) and leave images already in the target domain alone (identity, L1). D's loss
    per domain is discriminator_loss on one patch discriminator: targets and penalties work as in
    the other strategies, and each D sees a fake batch that its pool half-fills with older fakes.
    """
    (real_a, real_b), _ = next_batch()
    G, D = nets.G, nets.D
    with nets.autocast():
        fake_b, fake_a = G(real_a, "a2b"), G(real_b, "b2a")
        adversarial = (nets.loss.g_loss(nets.critic(fake_b, "b").float())
                       + nets.loss.g_loss(nets.critic(fake_a, "a").float()))
        cycle = cycle_loss(G(fake_b, "b2a"), real_a) + cycle_loss(G(fake_a, "a2b"), real_b)
        g_loss = G.gan_weight * adversarial + G.cycle_weight * cycle
        stats = {"loss/g_adv": adversarial.detach(), "loss/cycle": cycle.detach()}
        if G.identity_weight:  # two more G passes per step: skipped when the weight is 0
            identity = identity_loss(G(real_b, "a2b"), real_b) + identity_loss(G(real_a, "b2a"), real_a)
            g_loss = g_loss + G.cycle_weight * G.identity_weight * identity
            stats["loss/identity"] = identity.detach()
    nets.opt_g.zero_grad(set_to_none=True)
    nets.backward(g_loss, nets.g_params)  # D's weights get no gradient from G's loss
    nets.guard.step(nets.opt_g, nets.g_params)

    d_losses, real_logits, fake_logits = {}, [], []
    with nets.autocast():
        for part, real, fake in (("a", real_a, fake_a), ("b", real_b, fake_b)):
            pool = nets.pools.get(part)
            fake = pool.exchange(fake) if pool is not None else fake.detach()
            one = dataclasses.replace(nets, D=getattr(D, part))  # the loss and penalty see one D
            real_logits.append(one.critic(real, None))
            fake_logits.append(one.critic(fake, None))
            d_losses[part], part_stats = discriminator_loss(one, real_logits[-1], fake_logits[-1],
                                                            real, fake, None)
            for key, value in part_stats.items():  # averaged over the two discriminators
                stats[key] = stats.get(key, 0.0) + value / 2
            stats[f"loss/d_{part}"] = d_losses[part].detach()
    d_loss = d_losses["a"] + d_losses["b"]
    nets.opt_d.zero_grad(set_to_none=True)
    nets.backward(d_loss, nets.d_params)
    _d_step(nets, stats)
    stats.update(_d_stats(nets, torch.cat([x.flatten() for x in real_logits]),
                          torch.cat([x.flatten() for x in fake_logits])))
    return {"loss/d": d_loss.detach(), "loss/g": g_loss.detach(), **stats}


UPDATES.register("joint", Update(joint_update, lambda d_steps: 1,
                                 "one forward pass feeds both losses (keras GAN-ADA, TF tutorial)"))
UPDATES.register("alternating", Update(alternating_update, lambda d_steps: d_steps,
                                       "d_steps D steps, then g_steps G steps (WGAN-GP)"))
UPDATES.register("two_phase", Update(two_phase_update, lambda d_steps: d_steps,
                                     "D on a concatenated real+fake batch, then G (Hands-On ML)",
                                     mixes_real_and_fake=True))
UPDATES.register("cycle", Update(cycle_update, lambda d_steps: 1,
                                 "CycleGAN: both generators (adversarial + cycle + identity L1), "
                                 "then both discriminators on pooled fakes", data_kind="unpaired"))


BATCH_COUPLED = (nn.modules.batchnorm._BatchNorm,)  # plus the minibatch layers, added below


def batch_coupled_layers(D: nn.Module) -> list[str]:
    """Names of D's layers whose output for one image depends on the others in its batch."""
    from ..nn import MinibatchDiscrimination, MinibatchStdDev

    kinds = BATCH_COUPLED + (MinibatchStdDev, MinibatchDiscrimination)
    return [name for name, m in D.named_modules() if isinstance(m, kinds)]
