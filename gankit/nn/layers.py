"""Small building blocks shared by several architectures."""

from __future__ import annotations

import torch
from torch import nn


class ShiftOnlyBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm with a learnable shift but no learnable scale (Keras `scale=False`).

    Followed by ReLU/LeakyReLU a scale is redundant (the next layer can absorb it), which is
    why the keras-io GAN-ADA DCGAN drops it. Works on (B, C) and (B, C, H, W) inputs.
    """

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=True)
        # The scale is a constant 1, not a parameter. It is passed as a weight rather than None:
        # on CUDA, batch norm with weight=None and a bias takes the native kernel, whose backward
        # (torch 2.11, seen on an H200) returns a 0-element bias gradient when only the input's
        # gradient is asked for, as when G's loss flows back through D (backward(inputs=G's
        # parameters)), and autograd rejects it. With a weight the usual path runs (cuDNN's).
        # Not persistent: state dicts (checkpoints, the shipped pretrained models) are unchanged.
        del self.weight
        self.register_buffer("weight", torch.ones(num_features), persistent=False)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        if isinstance(self.weight, torch.Tensor):  # the fixed scale (a buffer once __init__ is done)
            with torch.no_grad():
                self.weight.fill_(1.0)

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() not in (2, 4):
            raise ValueError(f"expected a 2D or 4D input, got {input.dim()}D")


class ShiftOnlySyncBatchNorm(nn.SyncBatchNorm):
    """ShiftOnlyBatchNorm with statistics over all ranks (`--set sync_batchnorm=true`): the same
    fixed unit scale and learnable shift, and the same state-dict keys, so a checkpoint moves
    between runs with and without it."""

    def __init__(self, num_features: int, eps: float, momentum: float, process_group=None):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=True, process_group=process_group)
        del self.weight
        self.register_buffer("weight", torch.ones(num_features), persistent=False)


def convert_sync_batchnorm(module: nn.Module, process_group=None) -> nn.Module:
    """torch's SyncBatchNorm.convert_sync_batchnorm, which also takes ShiftOnlyBatchNorm (torch's
    would assign its fixed scale to a Parameter slot and fail). Parameters and buffers are the
    same objects afterwards, as with torch's: build optimisers after converting or before, alike."""
    if isinstance(module, ShiftOnlyBatchNorm):
        synced = ShiftOnlySyncBatchNorm(module.num_features, module.eps, module.momentum, process_group)
        synced.bias = module.bias
        synced.weight = module.weight
        synced.running_mean, synced.running_var = module.running_mean, module.running_var
        synced.num_batches_tracked = module.num_batches_tracked
        return synced.train(module.training)
    if isinstance(module, nn.SyncBatchNorm):  # converted already
        return module
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return nn.SyncBatchNorm.convert_sync_batchnorm(module, process_group)
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child, process_group))
    return module


class MinibatchStdDev(nn.Module):
    """Appends one feature map: the mean standard deviation of the features across a group of
    samples (Karras et al. 2018, ProGAN). A batch of near-identical fakes (mode collapse) has a
    tell-tale low value that D can learn to reject, which pushes G towards variety.

    (B, C, H, W) -> (B, C + 1, H, W); samples are grouped in fours (or fewer if B needs it).
    """

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        group = next(g for g in range(min(self.group_size, b), 0, -1) if b % g == 0)
        y = x.float().reshape(group, b // group, c, h, w)  # sample i is in group column i % (b/g)
        std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()  # (B/g, C, H, W)
        stat = std.mean(dim=(1, 2, 3)).to(x.dtype)  # (B/g,)
        stat = stat.repeat(group).view(b, 1, 1, 1).expand(b, 1, h, w)
        return torch.cat([x, stat], dim=1)


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016: each sample learns how close it is to the others in its batch.

    f (B, A) -> M = f T (B, K, C); c_k(i, j) = exp(-||M_i,k - M_j,k||_1); o_i,k = sum_{j != i} c_k(i, j);
    output [f, o] (B, A + K). D sees reals and fakes in separate passes, so a collapsed fake batch
    (all o large) is easy to tell from a varied real one.
    """

    def __init__(self, in_features: int, kernels: int = 50, kernel_dim: int = 5):
        super().__init__()
        self.kernels, self.kernel_dim = kernels, kernel_dim
        self.out_features = in_features + kernels
        self.T = nn.Parameter(torch.randn(in_features, kernels * kernel_dim) * 0.1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        assert f.dim() == 2 and f.shape[1] == self.T.shape[0], f"expected (B, {self.T.shape[0]})"
        m = (f @ self.T).view(-1, self.kernels, self.kernel_dim)  # (B, K, C)
        l1 = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(dim=3)  # (B, B, K)
        o = torch.exp(-l1).sum(dim=1) - 1.0  # (B, K): minus exp(0) = 1, a sample's match with itself
        return torch.cat([f, o], dim=1)


def spectral_normalize(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every conv and linear weight of `module`:
    each layer's largest singular value is held at 1, so D is roughly 1-Lipschitz without a
    gradient penalty. One power iteration per forward pass, as in the paper."""
    from torch.nn.utils.parametrizations import spectral_norm

    for name, child in list(module.named_modules()):
        if isinstance(child, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and \
                not torch.nn.utils.parametrize.is_parametrized(child, "weight"):
            spectral_norm(child)
    return module


def split_at(layers: nn.Sequential, kinds: tuple[type, ...]) -> list[nn.Sequential]:
    """`layers` cut into blocks, each starting at a module of one of `kinds` (a conv or linear
    layer with the norm, activation and dropout after it): D's blocks for FreezeD."""
    blocks: list[list[nn.Module]] = []
    for module in layers:
        if isinstance(module, kinds) or not blocks:
            blocks.append([])
        blocks[-1].append(module)
    return [nn.Sequential(*block) for block in blocks]


def freeze_blocks(D: nn.Module, n: int) -> list[str]:
    """FreezeD (Mo et al. 2020): D's first n blocks, counted from the image, keep their weights;
    returns the names of the parameters frozen. D declares its blocks (`blocks_from_image`)."""
    frozen = {id(p) for block in D.blocks_from_image()[:n] for p in block.parameters()}
    names = []
    for name, p in D.named_parameters():
        if id(p) in frozen:
            p.requires_grad_(False)
            names.append(name)
    return names
