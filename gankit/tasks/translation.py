"""Translation tasks: G maps an image of one domain to the matching image of another.

    unpaired  CycleGAN (Zhu et al. 2017): two unpaired domains A and B, a generator per direction,
              a discriminator per domain with its own pool of past fakes; the `cycle` update
    paired    pix2pix (Isola et al. 2017): pairs (input, target); one generator input -> target,
              a discriminator that sees the input beside the real or generated target; the
              `pix2pix` update

Batches are the images of both sides, in G's range on the device. The sample sheet shows what G
makes of fixed inputs drawn from a stream of their own (the training order is untouched). There
is no KID during training: benchmarks/cyclegan.py and benchmarks/pix2pix.py score translations.
"""

from __future__ import annotations

import dataclasses

import torch

from ..config import DataConfig, ReplayConfig, TrainConfig
from ..data import UnpairedData, load_unpaired
from ..data.paired import PairedData, PairedStream, load_paired
from ..data.streams import DomainStreams
from ..errors import GankitError
from ..losses.cycle import cycle_loss, identity_loss
from ..seeds import derive_seed
from ..training.replay import ReplayBuffer
from ..training.step import StepContext, d_stats, d_step, discriminator_loss
from ..training.updates import UPDATES, Update
from ..variants import DataSpec, get_recipe
from ..visualize import to_unit_range
from .base import TASKS, Task

Tensor = torch.Tensor


def check_translation(config: TrainConfig, task: str) -> None:
    """What no translation run can use."""
    if config.eval.every is not None:
        raise GankitError(f"KID evaluation during training scores a generator of images from "
                          f"noise; the {config.recipe} recipe translates images: drop --eval-every "
                          f"(benchmarks/{'cyclegan' if task == 'unpaired' else 'pix2pix'}.py scores translations)")
    if config.d_steps > 1 or config.g_steps > 1:
        raise GankitError(f"the {config.update} update makes one G and one D step per batch pair: "
                          "drop d_steps and g_steps")
    if config.conditional:
        raise GankitError(f"the {config.recipe} recipe takes no labels: train it without --conditional")


class UnpairedTranslationTask(Task):
    name = "unpaired"
    description = "image of domain A <-> image of domain B, from unpaired examples (CycleGAN)"

    @classmethod
    def check(cls, config: TrainConfig) -> None:
        if not config.data.source_b:
            raise GankitError(f"the {config.recipe} recipe translates between two domains: give domain "
                              "B with --set data.source_b=FOLDER (data.source is A), or use "
                              "`gankit translate train --a FOLDER --b FOLDER`")
        check_translation(config, cls.name)

    @classmethod
    def load_data(cls, cfg: DataConfig, progress: bool = True) -> UnpairedData:
        return load_unpaired(cfg, progress)

    @classmethod
    def data_spec(cls, config: TrainConfig, data: UnpairedData | None = None) -> DataSpec:
        if data is None:
            return DataSpec(config.data.size, config.data.channels or 3)
        return DataSpec(data.size, data.channels)

    def __init__(self, config: TrainConfig, data: UnpairedData, G: torch.nn.Module, device: torch.device,
                 memory_format: torch.memory_format = torch.contiguous_format, rank: int = 0,
                 world: int = 1):
        if world > 1:
            raise GankitError("multi-process training of unpaired data (CycleGAN) is not supported: "
                              "train it in one process")
        super().__init__(config, data, G, device, memory_format, rank, world)
        self.stream = DomainStreams(data.domains, config.batch, config.seed, config.data.mirror)
        sheet = DomainStreams(data.domains, config.grid_size, derive_seed(config.seed, "sheet"))
        self.sheet_inputs = tuple(stream.images(0)[0] for stream in sheet.streams)  # fixed A and B

    @classmethod
    def objective_weights(cls, config: TrainConfig) -> dict[str, float]:
        return objective_weights(config, ("gan", "cycle", "identity"))

    def make_buffers(self, cfg: ReplayConfig) -> tuple[ReplayBuffer | None, dict[str, ReplayBuffer]]:
        # one pool per domain's discriminator: one pool would hand a D fakes of the other domain
        return None, ({part: ReplayBuffer(cfg.size, cfg.fraction) for part in ("a", "b")} if cfg.size else {})

    def batch(self, k: int) -> tuple[tuple[Tensor, Tensor], int]:
        a, b = (stream.images(k)[0] for stream in self.stream.streams)
        return (self.to_model(a), self.to_model(b)), a.shape[0]

    @torch.no_grad()
    def sample_sheet(self, G: torch.nn.Module) -> tuple[Tensor, int | None]:
        return cycle_sheet(G, *(self.to_model(x) for x in self.sheet_inputs))


@torch.no_grad()
def cycle_sheet(G: torch.nn.Module, a: Tensor, b: Tensor) -> tuple[Tensor, int]:
    """Rows A, A->B, A->B->A, B, B->A, B->A->B of real images a and b (in G's range), as [0, 1]
    images on the CPU, and the images per row."""
    ab, ba = G(a, "a2b"), G(b, "b2a")
    rows = torch.cat([a, ab, G(ab, "b2a"), b, ba, G(ba, "a2b")])
    return to_unit_range(rows, G.output_range).cpu(), len(a)


def objective_weights(config: TrainConfig, names: tuple[str, ...]) -> dict[str, float]:
    """The translation losses' weights, read from the recipe's model options (CycleGANOptions,
    Pix2PixOptions: the fields `<name>_weight`), for the objective the update reads."""
    options = get_recipe(config.recipe).options(config.model)
    return {name: float(getattr(options, f"{name}_weight")) for name in names}


def cycle_update(ctx: StepContext, next_batch, d_steps: int = 1, g_steps: int = 1) -> dict[str, Tensor]:
    """CycleGAN's step, in the reference's order: both generators from one loss with the
    discriminators as they are, then both discriminators on fakes from their pools.

    G's loss: fool each D (adversarial), come back to the input through the other G (cycle, L1,
    weight lambda) and leave images already in the target domain alone (identity, L1, weight
    identity x lambda). D's loss per domain is discriminator_loss on that domain's patch
    discriminator: targets and penalties work as in the other strategies, and each D sees a fake
    batch that its pool half-fills with older fakes.
    """
    real_a, real_b = next_batch()
    G, D, w = ctx.G, ctx.D, ctx.objective.weights
    loss = ctx.objective.loss
    with ctx.autocast():
        fake_b, fake_a = G(real_a, "a2b"), G(real_b, "b2a")
        adversarial = (loss.g_loss(ctx.critic(fake_b, "b").float())
                       + loss.g_loss(ctx.critic(fake_a, "a").float()))
        cycle = cycle_loss(G(fake_b, "b2a"), real_a) + cycle_loss(G(fake_a, "a2b"), real_b)
        g_loss = w["gan"] * adversarial + w["cycle"] * cycle
        stats = {"loss/g_adv": adversarial.detach(), "loss/cycle": cycle.detach()}
        if w["identity"]:  # two more G passes per step: skipped when the weight is 0
            identity = identity_loss(G(real_b, "a2b"), real_b) + identity_loss(G(real_a, "b2a"), real_a)
            g_loss = g_loss + w["cycle"] * w["identity"] * identity
            stats["loss/identity"] = identity.detach()
    ctx.opt_g.zero_grad(set_to_none=True)
    ctx.backward(g_loss, ctx.g_params)  # D's weights get no gradient from G's loss
    ctx.guard.step(ctx.opt_g, ctx.g_params)

    d_losses, real_logits, fake_logits = {}, [], []
    with ctx.autocast():
        for part, real, fake in (("a", real_a, fake_a), ("b", real_b, fake_b)):
            pool = ctx.pools.get(part)
            fake = pool.exchange(fake) if pool is not None else fake.detach()
            one = dataclasses.replace(ctx, D=D.part(part))  # the loss and penalty see one D
            real_logits.append(one.critic(real, None))
            fake_logits.append(one.critic(fake, None))
            d_losses[part], part_stats = discriminator_loss(one, real_logits[-1], fake_logits[-1],
                                                            real, fake, None)
            for key, value in part_stats.items():  # averaged over the two discriminators
                stats[key] = stats.get(key, 0.0) + value / 2
            stats[f"loss/d_{part}"] = d_losses[part].detach()
    d_loss = d_losses["a"] + d_losses["b"]
    ctx.opt_d.zero_grad(set_to_none=True)
    ctx.backward(d_loss, ctx.d_params)
    d_step(ctx, stats)
    stats.update(d_stats(ctx, torch.cat([x.flatten() for x in real_logits]),
                         torch.cat([x.flatten() for x in fake_logits])))
    return {"loss/d": d_loss.detach(), "loss/g": g_loss.detach(), **stats}


TASKS.register("unpaired", UnpairedTranslationTask)
UPDATES.register("cycle", Update(cycle_update, lambda d_steps: 1,
                                 "CycleGAN: both generators (adversarial + cycle + identity L1), "
                                 "then both discriminators on pooled fakes", task="unpaired"))


class PairedTranslationTask(Task):
    name = "paired"
    description = "input image -> its target image, from aligned pairs (pix2pix)"

    @classmethod
    def check(cls, config: TrainConfig) -> None:
        check_translation(config, cls.name)
        if config.augment.mode != "none":
            raise GankitError(f"pix2pix's D judges an output beside its input, and augmenting D's view "
                              f"would transform the output alone: drop --aug {config.augment.mode} "
                              "(use --aug none)")
        if config.replay.size:
            raise GankitError("pix2pix's D judges a fake beside its own input, which a pool of past "
                              "fakes does not keep: drop the replay options (the reference uses none)")

    @classmethod
    def load_data(cls, cfg: DataConfig, progress: bool = True) -> PairedData:
        return load_paired(cfg, progress)

    @classmethod
    def data_spec(cls, config: TrainConfig, data: PairedData | None = None) -> DataSpec:
        if data is None:
            return DataSpec(config.data.size, config.data.channels or 3)
        return DataSpec(data.size, data.channels)

    @classmethod
    def objective_weights(cls, config: TrainConfig) -> dict[str, float]:
        return objective_weights(config, ("gan", "l1"))

    def __init__(self, config: TrainConfig, data: PairedData, G: torch.nn.Module, device: torch.device,
                 memory_format: torch.memory_format = torch.contiguous_format, rank: int = 0,
                 world: int = 1):
        super().__init__(config, data, G, device, memory_format, rank, world)
        self.stream = PairedStream(data, config.batch, config.seed, rank, world, config.data.mirror)
        # fixed pairs of their own stream for the sheet; the pairs' first images, unshuffled, would
        # show the same few every run of a folder sorted by name
        (self.sheet_inputs, self.sheet_targets), _ = PairedStream(
            data, config.grid_size, derive_seed(config.seed, "sheet")).images(0)

    def batch(self, k: int) -> tuple[tuple[Tensor, Tensor], int]:
        (a, b), _ = self.stream.images(k)
        return (self.to_model(a), self.to_model(b)), a.shape[0]

    @torch.no_grad()
    def sample_sheet(self, G: torch.nn.Module) -> tuple[Tensor, int | None]:
        """Rows: inputs, G's outputs, targets."""
        inputs = self.to_model(self.sheet_inputs)
        outputs = to_unit_range(G(inputs, "a2b"), G.output_range).cpu()
        return torch.cat([self.sheet_inputs, outputs, self.sheet_targets]), len(inputs)


def pix2pix_update(ctx: StepContext, next_batch, d_steps: int = 1, g_steps: int = 1) -> dict[str, Tensor]:
    """pix2pix's step, in the reference's order: G translates the inputs once; D steps on
    (input, target) against (input, G(input)); then G steps on fooling the new D plus lambda times
    the L1 distance to the target, through the same forward pass.

    The reference halves D's loss; Adam's steps do not depend on the loss's scale (up to its
    epsilon), so ours, the sum, trains the same.
    """
    inputs, targets = next_batch()
    w, loss = ctx.objective.weights, ctx.objective.loss
    with ctx.autocast():
        outputs = ctx.G(inputs, "a2b")
        fake = outputs.detach()
        real_logits = ctx.critic(targets, inputs)
        fake_logits = ctx.critic(fake, inputs)
        d_loss, stats = discriminator_loss(ctx, real_logits, fake_logits, targets, fake, inputs)
    ctx.opt_d.zero_grad(set_to_none=True)
    ctx.backward(d_loss, ctx.d_params)
    d_step(ctx, stats)
    stats.update(d_stats(ctx, real_logits, fake_logits))

    with ctx.autocast():
        adversarial = loss.g_loss(ctx.critic(outputs, inputs).float())
    l1 = (outputs.float() - targets.float()).abs().mean()
    g_loss = w["gan"] * adversarial + w["l1"] * l1
    ctx.opt_g.zero_grad(set_to_none=True)
    ctx.backward(g_loss, ctx.g_params)  # D's weights get no gradient from G's loss
    ctx.guard.step(ctx.opt_g, ctx.g_params)
    return {"loss/d": d_loss.detach(), "loss/g": g_loss.detach(), "loss/g_adv": adversarial.detach(),
            "loss/l1": l1.detach(), **stats}


TASKS.register("paired", PairedTranslationTask)
UPDATES.register("pix2pix", Update(pix2pix_update, lambda d_steps: 1,
                                   "pix2pix: D on (input, target) vs (input, G(input)), then G "
                                   "(adversarial + L1 to the target)", task="paired"))
