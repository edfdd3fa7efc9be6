"""Multi-process training on torch.distributed, started by torchrun.

    torchrun --nproc-per-node 4 -m gankit train ...        # one machine, 4 GPUs (or CPU processes)
    torchrun --nnodes 2 --node-rank R --master-addr HOST --nproc-per-node 8 -m gankit train ...
    gankit train --nproc 4 ...                              # the same as the first line

Each process (rank) trains on its own shard of every global batch (`--batch` images per rank),
with its own latents and dropout (seeded from the run seed and its rank); the optimiser steps
average the gradients of all ranks (training/guard.py), so every rank holds the same weights. Rank
0 alone writes logs, samples and checkpoints; the scalars it logs are averages over all ranks.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup() -> None:
    """Join the process group torchrun describes (idempotent; a no-op in a single process)."""
    if not launched_by_torchrun() or dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0)) if dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def broadcast_module(module: torch.nn.Module) -> None:
    """Every rank starts from rank 0's weights and buffers."""
    if world_size() > 1:
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def broadcast_object(obj):
    """Rank 0's value of a picklable object on every rank (e.g. the run folder's name)."""
    if world_size() == 1:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def mean_scalars(stats: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Each scalar averaged over the ranks (one all-reduce), so rank 0 logs the whole batch."""
    if world_size() == 1 or not stats:
        return stats
    keys = sorted(stats)
    values = torch.stack([torch.as_tensor(stats[k], dtype=torch.float32, device=device).reshape(()) for k in keys])
    dist.all_reduce(values)
    values /= world_size()
    return dict(zip(keys, values))


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank if it is true on any (stopping must happen at the same step everywhere)."""
    if world_size() == 1:
        return flag
    value = torch.tensor(float(flag), device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
