"""Path-length regularisation of a style-based G (Karras et al. 2020, StyleGAN2 §3.2).

A fixed-size step in w should change the image by a fixed amount, whatever w. With y ~ N(0, I)
image-shaped and scaled by 1/sqrt(H W), the Jacobian-vector product J_w^T y is one backward
pass, and its length

    a = sqrt(mean over styles of ||J_w^T y||^2)

is pulled towards its running mean (pl_mean, decay 0.01):  penalty = (a - pl_mean)^2. That makes
the mapping from w to images smoother, which is what interpolation, projection and editing lean
on. As the reference (stylegan2-ada-pytorch, training/loss.py): on every 4th G step (lazy, the
term weighted by the interval), on half the batch, weight 2, the lengths taken w.r.t. the
per-layer styles after style mixing, and the running mean updated with a non-detached batch mean,
so its share of the gradient is kept. Unlike the reference, whose pl_mean lives in its loss object
and starts from 0 on every resume, gankit checkpoints it: a resumed run continues exactly.
"""

from __future__ import annotations

import math

import torch
from torch import nn

Tensor = torch.Tensor


class PathLengthPenalty(nn.Module):
    def __init__(self, weight: float = 2.0, every: int = 4, batch_shrink: int = 2, decay: float = 0.01):
        super().__init__()
        self.weight, self.every, self.batch_shrink, self.decay = weight, every, batch_shrink, decay
        self.register_buffer("pl_mean", torch.zeros(()))

    def forward(self, G, z: Tensor, labels: Tensor | None) -> Tensor:
        """(B,) penalties for latents z (B, latent_dim) through G's training path (`G.styles`
        then `G.synthesis`); updates pl_mean."""
        ws = G.styles(z, labels)  # (B, num_ws, w_dim), with style mixing as training draws it
        images = G.synthesis(ws)  # (B, C, H, W)
        noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
        grads, = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
        lengths = grads.float().square().sum(2).mean(1).sqrt()  # (B,)
        pl_mean = self.pl_mean.lerp(lengths.mean(), self.decay)
        self.pl_mean.copy_(pl_mean.detach())
        return (lengths - pl_mean).square()
