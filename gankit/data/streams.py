"""Batch streams: which images make batch k, a function of (seed, k) alone.

That is what makes a resumed run draw exactly the batches an uninterrupted one would, and lets
several ranks shard every epoch between them without talking to each other.
"""

from __future__ import annotations

import torch

from ..seeds import derive_seed
from .dataset import ImageData


class BatchStream:
    """Global batch g holds positions [g*B, (g+1)*B) of an endless sequence of per-epoch
    permutations. With several ranks, rank r's batch k is global batch k*world + r: the ranks
    shard every epoch between them (as a DistributedSampler does) and never see the same image
    in one step."""

    def __init__(self, data: ImageData, batch: int, seed: int, rank: int = 0, world: int = 1,
                 mirror: bool = False):
        self.data, self.batch, self.seed, self.rank, self.world = data, batch, seed, rank, world
        self.mirror = mirror
        self._perms: dict[int, torch.Tensor] = {}

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.pop(min(self._perms))
            g = torch.Generator().manual_seed(derive_seed(self.seed, "order", epoch))
            self._perms[epoch] = torch.randperm(len(self.data), generator=g)
        return self._perms[epoch]

    def indices(self, k: int) -> torch.Tensor:
        n = len(self.data)
        g = k * self.world + self.rank
        positions = range(g * self.batch, (g + 1) * self.batch)
        return torch.stack([self._permutation(p // n)[p % n] for p in positions])

    def images(self, k: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = self.indices(k)
        crops = torch.Generator().manual_seed(derive_seed(self.seed, "crop", k * self.world + self.rank))
        images = self.data.batch(idx, crops)  # (B, C, S, S) in [0, 1]
        if self.mirror:  # after the crop's draws, so mirroring leaves the crops of a run unchanged
            flip = torch.rand(len(images), generator=crops) < 0.5
            images[flip] = images[flip].flip(-1)
        labels = self.data.labels[idx] if self.data.labels is not None else None
        return images, labels


class DomainStreams:
    """Batch k of each domain of unpaired data, each domain in its own order: the images of A and
    B in one step are paired by nothing but chance. Yields ((A, B), None) as a stream yields
    (images, labels)."""

    def __init__(self, domains, batch: int, seed: int, mirror: bool = False):
        self.streams = [BatchStream(domain, batch, derive_seed(seed, "domain", i), mirror=mirror)
                        for i, domain in enumerate(domains)]

    def images(self, k: int) -> tuple[tuple[torch.Tensor, ...], None]:
        return tuple(stream.images(k)[0] for stream in self.streams), None
