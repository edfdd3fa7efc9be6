"""Every optimiser step goes through here: gradients averaged across ranks (multi-process
training), unscaled (fp16 training with torch's GradScaler), then stepped only if they are finite.

A non-finite loss or gradient (an fp16 overflow, a diverging critic) must not reach the weights:
one NaN in Adam's moments poisons the run for good. The step is skipped and counted instead; the
loop rolls back to the last checkpoint when steps keep failing (see Trainer._recover).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


class StepGuard:
    def __init__(self, world_size: int = 1, scaler: torch.amp.GradScaler | None = None):
        self.world_size = world_size
        self.scaler = scaler  # fp16: losses are scaled up so small gradients survive in half precision
        self.skipped = 0  # steps skipped since the last good one of the same optimiser
        self.skipped_in_step = 0  # reset by the loop each training step

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        return self.scaler.scale(loss) if self.scaler is not None else loss

    def end_of_step(self) -> None:
        """Once per training step: the scaler halves its scale after an overflow, and grows it
        again after a run of good steps."""
        if self.scaler is not None:
            self.scaler.update()

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
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)  # records overflows for update(); grads now true size
        finite = bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()) if grads else True
        if not finite:
            optimizer.zero_grad(set_to_none=True)
            self.skipped += 1
            self.skipped_in_step += 1
            return False
        if self.scaler is not None:
            self.scaler.step(optimizer)
        else:
            optimizer.step()
        self.skipped = 0
        return True
