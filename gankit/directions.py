"""Editing directions in a style generator's w space, found without labels.

    sefa      closed-form factorisation (Shen & Zhou 2021, SeFa): the directions w that change the
              chosen layers' styles the most are the top eigenvectors of A^T A, A the layers'
              style affines (each output column scaled to unit norm, as their code does) stacked;
              no sampling, a property of the weights alone.
    ganspace  PCA of w over sampled latents (Härkönen et al. 2020, GANSpace): the directions
              along which the mapped w vary the most.

An edit moves the chosen layers' styles w -> w + amount * sigma * v, with sigma the standard
deviation of the sampled w along v, so an amount means the same for every direction and model
(2: two standard deviations of what G draws). SeFa's and GANSpace's code use raw units along
unit vectors, with ranges picked per model; this scale is gankit's choice, made so that one
`--amount` range fits every run.

    found = find_directions(G, "sefa", k=5)
    ws = edit_ws(ws, found, index=0, amount=2.0)        # (B, num_ws, w_dim)
    images = direction_strips(G, found)                 # a row per direction, amounts across
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .contracts import StyleAffines, implements
from .errors import GankitError
from .latent import STYLE_HINT, is_style_generator, map_to_w, model_device

METHODS = ("sefa", "ganspace")
LAYER_GROUPS = ("all", "coarse", "middle", "fine")  # thirds of the ws, coarsest first
STRIP_AMOUNTS = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)


@dataclass
class Directions:
    method: str
    vectors: torch.Tensor  # (k, w_dim) unit vectors, strongest first
    values: torch.Tensor  # (k,) SeFa's eigenvalues or GANSpace's variances: how strong each is
    sigmas: torch.Tensor  # (k,) standard deviation of sampled w along each: the unit of an amount
    layers: list[int]  # the ws indices an edit moves

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        if not path.parent.is_dir():
            raise GankitError(f"cannot write {path}: the folder {path.parent} does not exist; create it first")
        np.savez(path, method=self.method, vectors=self.vectors.numpy(), values=self.values.numpy(),
                 sigmas=self.sigmas.numpy(), layers=np.array(self.layers))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Directions":
        try:
            with np.load(path, allow_pickle=False) as f:
                return cls(str(f["method"]), torch.from_numpy(f["vectors"]), torch.from_numpy(f["values"]),
                           torch.from_numpy(f["sigmas"]), [int(i) for i in f["layers"]])
        except (OSError, KeyError, ValueError) as err:
            raise GankitError(f"cannot read directions from {path} ({str(err).splitlines()[0][:100]}): give a "
                              "file written by `gankit directions --save`") from None


def layer_indices(layers: str, num_ws: int) -> list[int]:
    """"all", "coarse", "middle", "fine" (thirds of the ws), or "a-b" / "a,b,c" ws indices."""
    text = str(layers).strip()
    third = max(1, num_ws // 3)
    groups = {"all": range(num_ws), "coarse": range(0, third), "middle": range(third, 2 * third),
              "fine": range(2 * third, num_ws)}
    try:
        if text in groups:
            chosen = list(groups[text])
        elif "-" in text:
            low, high = (int(part) for part in text.split("-"))
            chosen = list(range(low, high + 1))
        else:
            chosen = [int(part) for part in text.split(",")]
    except ValueError:
        chosen = []
    if not chosen or min(chosen) < 0 or max(chosen) >= num_ws:
        raise GankitError(f"--layers {layers}: use {', '.join(LAYER_GROUPS)}, a range such as 0-3 or a "
                          f"list such as 0,1,4 of the {num_ws} style layers (0 = coarsest)")
    return sorted(set(chosen))


def _check(G: torch.nn.Module, method: str, k: int) -> None:
    if not is_style_generator(G):
        raise GankitError(f"editing directions need {STYLE_HINT}: this model has no w space")
    if method not in METHODS:
        raise GankitError(f"unknown method {method!r}: use {' or '.join(METHODS)}")
    if not 1 <= k <= G.w_dim:
        raise GankitError(f"--k {k}: use 1 to {G.w_dim} (w has {G.w_dim} dimensions)")


@torch.no_grad()
def sampled_w(G: torch.nn.Module, n: int, seed: int = 0, label: int | None = None) -> torch.Tensor:
    """(n, w_dim) float64 mapped latents, from their own generator (the global RNG untouched)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.latent_dim, generator=g)
    labels = None
    if G.num_classes:
        labels = (torch.full((n,), label, dtype=torch.long) if label is not None
                  else torch.randint(G.num_classes, (n,), generator=g))
    device = model_device(G)
    chunks = [map_to_w(G, part.to(device), None if labels is None else lab.to(device)).double().cpu()
              for part, lab in zip(z.split(1000), labels.split(1000) if labels is not None else [None] * len(z.split(1000)))]
    return torch.cat(chunks)


@torch.no_grad()
def find_directions(G: torch.nn.Module, method: str = "sefa", k: int = 5, layers: str = "all",
                    n: int = 10_000, seed: int = 0, label: int | None = None) -> Directions:
    """The top `k` directions of `method` for the style layers `layers`; `n` sampled w set the
    scale of an amount (and are GANSpace's data)."""
    _check(G, method, k)
    chosen = layer_indices(layers, G.num_ws)
    if n < 2:
        raise GankitError(f"--n {n}: sample at least 2 latents (10000 is usual)")
    w = sampled_w(G, n, seed, label)  # (n, w_dim)
    if method == "sefa":
        if not implements(G, StyleAffines):
            raise GankitError("SeFa factorises the style affines, which this generator does not show: "
                              "use --method ganspace")
        weights = [weight.double().cpu() for index, weight in G.style_weights() if index in chosen]
        if not weights:
            raise GankitError(f"--layers {layers}: none of those style layers has a style conv to factorise")
        A = torch.cat(weights)  # (styles, w_dim): each row maps w to one style channel
        A = A / A.norm(dim=1, keepdim=True)  # SeFa normalises each style channel's weights
        values, vectors = torch.linalg.eigh(A.T @ A)  # ascending
        order = values.argsort(descending=True)[:k]
        values, vectors = values[order], vectors[:, order].T
    else:
        centred = w - w.mean(0)
        _, singular, right = torch.linalg.svd(centred, full_matrices=False)
        vectors, values = right[:k], singular[:k].square() / (n - 1)
    sigmas = (w @ vectors.T).std(0)  # (k,)
    return Directions(method, vectors.float(), values.float(), sigmas.float(), chosen)


def edit_ws(ws: torch.Tensor, found: Directions, index: int, amount: float) -> torch.Tensor:
    """ws (B, num_ws, w_dim) with the chosen layers moved `amount` standard deviations along
    direction `index`."""
    if not 0 <= index < len(found.vectors):
        raise GankitError(f"--direction {index}: the file has directions 0 to {len(found.vectors) - 1}")
    assert ws.dim() == 3 and ws.shape[2] == found.vectors.shape[1], f"ws: expected (B, num_ws, {found.vectors.shape[1]})"
    if max(found.layers) >= ws.shape[1]:
        raise GankitError(f"these directions move style layers up to {max(found.layers)}, but the model has "
                          f"{ws.shape[1]}: find directions for this model")
    step = (amount * found.sigmas[index] * found.vectors[index]).to(ws.device, ws.dtype)
    edited = ws.clone()
    edited[:, found.layers] += step
    return edited


@torch.no_grad()
def direction_strips(G: torch.nn.Module, found: Directions, amounts=STRIP_AMOUNTS, seed: int = 0,
                     truncation: float = 1.0, label: int | None = None) -> torch.Tensor:
    """One row per direction: the same random w moved by each amount, as images in [0, 1]:
    (k * len(amounts), C, H, W)."""
    from .latent import broadcast_ws, truncate
    from .visualize import to_unit_range

    w = sampled_w(G, 1, seed, label).float().to(model_device(G))  # (1, w_dim)
    if truncation != 1.0:
        w = truncate(w, G.w_avg.to(w.dtype), truncation)
    ws = broadcast_ws(w, G.num_ws)
    rows = [torch.cat([edit_ws(ws, found, i, a) for a in amounts]) for i in range(len(found.vectors))]
    return torch.cat([to_unit_range(G.synthesis(r), G.output_range).cpu() for r in rows])
