"""Experience replay for D: a buffer of past fakes mixed into D's fake batch.

Once the buffer holds images, `fraction` of each fake batch D judges is drawn from it at random
(Shrivastava et al. 2017; CycleGAN's image pool of 50 is the same idea). D keeps rejecting what G
produced a while ago, so G cannot escape D by cycling back to an old mode. New fakes fill the
buffer, then replace random slots, so it holds a sample of the recent past. The contents are saved
in checkpoints: a resumed run continues exactly.

`exchange` is the CycleGAN reference's own pool query, image by image: while the pool fills, new
fakes pass through and are kept; then each is, with probability `fraction`, swapped for a random
kept one. Unlike `replay_count`, which rounds `fraction * batch`, it replays with batches of one.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


class ReplayBuffer:
    def __init__(self, size: int, fraction: float):
        assert size > 0 and 0.0 < fraction <= 1.0
        self.size, self.fraction = size, fraction
        self.images: Tensor | None = None  # (size, C, H, W) on the training device
        self.labels: Tensor | None = None  # (size,) or None for unconditional data
        self.count = 0

    def replay_count(self, batch: int) -> int:
        """How many of a fake batch of `batch` come from the buffer now."""
        return min(int(round(self.fraction * batch)), self.count)

    def sample(self, k: int) -> tuple[Tensor, Tensor | None]:
        idx = torch.randint(self.count, (k,)).to(self.images.device)
        return self.images[idx], (self.labels[idx] if self.labels is not None else None)

    @torch.no_grad()
    def push(self, images: Tensor, labels: Tensor | None) -> None:
        images = images.detach()
        if images.shape[0] > self.size:  # only the newest `size` could survive anyway
            images = images[-self.size:]
            labels = labels[-self.size:] if labels is not None else None
        if self.images is None:
            self.images = torch.empty(self.size, *images.shape[1:], dtype=images.dtype, device=images.device)
            if labels is not None:
                self.labels = torch.zeros(self.size, dtype=labels.dtype, device=labels.device)
        free = min(self.size - self.count, images.shape[0])
        slots = torch.arange(self.count, self.count + free)
        if free < images.shape[0]:  # full: overwrite distinct random slots (duplicate indices in
            # one write are nondeterministic on CUDA)
            taken = torch.zeros(self.size, dtype=torch.bool)
            taken[slots] = True
            candidates = torch.nonzero(~taken).squeeze(1)
            pick = candidates[torch.randperm(len(candidates))[: images.shape[0] - free]]
            slots = torch.cat([slots, pick])
        slots = slots.to(images.device)
        self.images[slots] = images.to(self.images.dtype)
        if self.labels is not None and labels is not None:
            self.labels[slots] = labels
        self.count += free

    @torch.no_grad()
    def exchange(self, images: Tensor) -> Tensor:
        """D's fake batch: `images`, each swapped with probability `fraction` for a kept fake that
        it replaces (once the pool is full). Draws from the global RNG, which checkpoints save."""
        assert self.labels is None, "exchange keeps images only"
        images = images.detach()
        if self.images is None:
            self.images = torch.empty(self.size, *images.shape[1:], dtype=images.dtype, device=images.device)
        out = images.clone()
        # one draw per batch, whatever the pool holds: the RNG advances the same way every step
        swap = (torch.rand(len(images)) < self.fraction).tolist()
        slots = torch.randint(self.size, (len(images),)).tolist()
        for i in range(len(images)):  # in order, as the reference: a slot may be hit twice
            if self.count < self.size:
                self.images[self.count] = images[i]
                self.count += 1
            elif swap[i]:
                out[i] = self.images[slots[i]]
                self.images[slots[i]] = images[i]
        return out

    def state_dict(self) -> dict:
        if self.images is None:
            return {"count": 0}
        state = {"count": self.count, "images": self.images[: self.count].cpu()}
        if self.labels is not None:
            state["labels"] = self.labels[: self.count].cpu()
        return state

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.count = int(state["count"])
        self.images = self.labels = None
        if self.count:
            images = state["images"].to(device)
            self.images = torch.empty(self.size, *images.shape[1:], dtype=images.dtype, device=device)
            self.images[: self.count] = images
            if "labels" in state:
                self.labels = torch.zeros(self.size, dtype=state["labels"].dtype, device=device)
                self.labels[: self.count] = state["labels"].to(device)
