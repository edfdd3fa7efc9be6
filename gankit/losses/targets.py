"""D's targets for reals and fakes: 1 and 0, or softened by smoothing, noise and flips.

    one-sided smoothing s   real target 1 - s; fakes stay 0 (Salimans et al. 2016: smoothing the
                            fake side would reward G for staying where it is)
    noise n                 real targets 1 - U(0, n), fake targets U(0, n), per sample. Generative
                            Deep Learning adds the noise outwards (1 + U, 0 - U); we pull inwards
                            because binary cross-entropy has no minimum for targets outside [0, 1]
                            and drives the logits to infinity
    flips f                 each sample's target swapped (real 0, fake 1) with probability f

Only losses that compare with targets (cross-entropy, least squares) accept them.
"""

from __future__ import annotations

import torch

from ..config import TargetConfig

Tensor = torch.Tensor


def make_targets(config: TargetConfig, n_real: int, n_fake: int,
                 device: torch.device) -> tuple[Tensor | float, Tensor | float, dict[str, Tensor]]:
    """(real targets, fake targets, scalars to report). Plain 1.0 / 0.0 when nothing is on."""
    if not config.active:
        return 1.0, 0.0, {}
    real = torch.full((n_real,), 1.0 - config.smoothing, device=device)
    fake = torch.zeros(n_fake, device=device)
    if config.noise:
        real -= config.noise * torch.rand(n_real, device=device)
        fake += config.noise * torch.rand(n_fake, device=device)
    stats = {}
    if config.flip:
        flip_real = torch.rand(n_real, device=device) < config.flip
        flip_fake = torch.rand(n_fake, device=device) < config.flip
        real = torch.where(flip_real, 1.0 - real, real)
        fake = torch.where(flip_fake, 1.0 - fake, fake)
        stats["targets/flipped"] = (flip_real.float().sum() + flip_fake.float().sum()) / (n_real + n_fake)
    return real, fake, stats
