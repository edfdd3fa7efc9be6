"""Every optimiser step goes through here: gradients averaged across ranks (multi-process
training), then stepped only if they are finite.

A non-finite loss or gradient (an fp16 overflow, a diverging critic) must not reach the weights:
one NaN in Adam's moments poisons the run for good. The step is skipped and counted instead; the
loop rolls back to the last checkpoint when steps keep failing (see Trainer._recover).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


class StepGuard:
    def __init__(self, world_size: int = 1):
        self.world_size = world_size
        self.skipped = 0  # steps skipped since the last good one of the same optimiser
        self.skipped_in_step = 0  # reset by the loop each training step

    def step(self, optimizer: torch.optim.Optimizer, params: list[nn.Parameter]) -> bool:
        grads = [p.grad for p in params if p.grad is not None]
        if self.world_size > 1 and grads:
            # One all-reduce of the flattened gradients per step (as StyleGAN2-ADA does): the
            # update strategies call backward several times per step with `inputs=`, which
            # DistributedDataParallel's reducer does not support.
            flat = torch.cat([g.flatten() for g in grads])
            dist.all_reduce(flat)
            flat /= self.world_size
            offset = 0
            for g in grads:
                g.copy_(flat[offset:offset + g.numel()].view_as(g))
                offset += g.numel()
        finite = bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()) if grads else True
        if not finite:
            optimizer.zero_grad(set_to_none=True)
            self.skipped += 1
            self.skipped_in_step += 1
            return False
        optimizer.step()
        self.skipped = 0
        return True
