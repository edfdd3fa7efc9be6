"""Perceptual path length (PPL; Karras et al. 2019, §4.2): how much the image changes when its
latent takes a tiny step along an interpolation path. A smooth latent space (small, even changes
along every path) scores low; StyleGAN2's path-length regularisation exists to lower it.

For n pairs of random latents (z0, z1) and a t on the path between them:

    PPL = mean over pairs of  d(G(path(t)), G(path(t + eps))) / eps^2,   eps = 1e-4

- space "w" (style generators): w0, w1 = mapping(z0), mapping(z1), path = lerp in w, the same w
  for every layer, no truncation; "z": path = slerp between z0 and z1 (any generator);
- sampling "end": t = 0; "full": t ~ U(0, 1);
- the mean keeps only the pairs between the 1st percentile (numpy "lower") and the 99th
  ("higher") of the distances, both included, to drop the rare paths that cross a sudden change.

As NVlabs/stylegan2-ada-pytorch metrics/perceptual_path_length.py computes it, with these
differences: d is the squared Euclidean distance of a registered feature extractor's features
(LPIPS-VGG16 is not shipped: numbers are comparable only between runs scored with the same
extractor), images go to the extractor whole, in [0, 1], at G's size (the reference crops faces
and downsamples to 256 px for LPIPS), noise inputs are G's one fixed eval-mode image (the
reference redraws its constant noise per batch), a conditional G's class is drawn uniformly (the
reference draws the dataset's labels), z is slerped at the Gaussian's own scale with
`gankit.latent.slerp` (the reference's slerp returns unit vectors, which only a mapping that
normalises z, as StyleGAN's does, can ignore), and the paths and the distances are computed in
float64 (the reference: float32 throughout).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from ..errors import GankitError
from ..latent import STYLE_HINT, broadcast_ws, is_style_generator, lerp, map_to_w, raw_images, slerp
from ..visualize import to_unit_range
from .features import load_feature_extractor

# Result keys
PPL = "ppl"
PPL_SPACE = "ppl_space"  # "w" or "z": where the paths ran ("auto" resolved)
PPL_SAMPLING = "ppl_sampling"  # "end" or "full"
PPL_PAIRS = "ppl_pairs"  # pairs kept by the 1%/99% filter, of the n drawn

SPACES = ("auto", "w", "z")  # auto: w for style generators, z otherwise
SAMPLINGS = ("end", "full")
EPSILON = 1e-4  # the step along the path (the reference's)
N_PAIRS = 2000  # gankit eval's --n; the references use 100,000 (StyleGAN) and 50,000 (StyleGAN2-ADA)
BATCH_PAIRS = 32  # pairs per forward pass: 2 x this many images
DRAW_BLOCK = 1000  # latents are drawn this many pairs at a time, so batch_size never changes them
PERCENTILES = (1, 99)  # the outlier filter's cut-offs


def check_ppl_options(space: str = "auto", sampling: str = "end", epsilon: float = EPSILON,
                      n: int = N_PAIRS, batch_size: int = BATCH_PAIRS) -> None:
    """The options that need no generator (checked before loading one): each error names the fix."""
    if space not in SPACES:
        raise GankitError(f"--ppl-space {space}: use one of {', '.join(SPACES)} "
                          "(auto: w for StyleGAN-style generators, z otherwise)")
    if sampling not in SAMPLINGS:
        raise GankitError(f"--ppl-sampling {sampling}: use end (t = 0, the path's start) or full "
                          "(t anywhere on the path)")
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise GankitError(f"epsilon={epsilon:g}: the step along the path must be a small positive "
                          f"number ({EPSILON:g} is the reference's)")
    if n < 2:
        raise GankitError(f"n={n} pairs are too few for perceptual path length: use at least 2 "
                          "(the 1%/99% outlier filter drops pairs only from 101 on; the references "
                          "use 50,000 to 100,000)")
    if batch_size < 1:
        raise GankitError(f"batch_size={batch_size}: use at least 1 pair per batch")


def resolve_space(G: nn.Module, space: str) -> str:
    """The space to walk, "w" or "z": `space` with "auto" resolved, checked against G."""
    style = is_style_generator(G)
    if space == "w" and not style:
        raise GankitError(f"--ppl-space w needs {STYLE_HINT}: use --ppl-space z (or auto) for this model")
    return ("w" if style else "z") if space == "auto" else space


def endpoint_blocks(latent_dim: int, n: int, sampling: str = "end", seed: int = 0,
                    num_classes: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
    """The pairs' (z0, z1, t, labels) in blocks of DRAW_BLOCK: z0, z1 (k, latent_dim), t (k,),
    labels (k,) or None, from a generator of their own seeded with `seed` (the global RNG is
    untouched). t is drawn for "end" too (then zeroed), so both samplings share their z."""
    g = torch.Generator().manual_seed(seed)
    for start in range(0, n, DRAW_BLOCK):
        k = min(DRAW_BLOCK, n - start)
        z0, z1 = torch.randn(2 * k, latent_dim, generator=g).chunk(2)
        t = torch.rand(k, generator=g)
        if sampling == "end":
            t = torch.zeros_like(t)
        labels = torch.randint(num_classes, (k,), generator=g) if num_classes else None
        yield z0, z1, t, labels


def path_endpoints(latent_dim: int, n: int, sampling: str = "end", seed: int = 0,
                   num_classes: int = 0) -> tuple[torch.Tensor, ...]:
    """(z0, z1, t, labels) of all n pairs at once: what `path_distances` walks along for the same
    arguments."""
    blocks = list(endpoint_blocks(latent_dim, n, sampling, seed, num_classes))
    z0, z1, t, labels = (list(part) for part in zip(*blocks))
    return torch.cat(z0), torch.cat(z1), torch.cat(t), None if labels[0] is None else torch.cat(labels)


def _weights_of(G: nn.Module) -> tuple[torch.device, torch.dtype]:
    tensor = next(iter(G.parameters()), None)
    return (tensor.device, tensor.dtype) if tensor is not None else (torch.device("cpu"), torch.float32)


def _pair_images(G: nn.Module, space: str, z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor,
                 labels: torch.Tensor | None, epsilon: float) -> torch.Tensor:
    """(B, latent_dim) x 2, t (B,) -> (2B, C, H, W) in [0, 1]: the images at t, then at t + eps.

    The paths are computed in float64 on the CPU and rounded once to G's dtype: each end is then
    correctly rounded, where float32 lerp/slerp would add a few ulps of error to an eps-sized step.
    """
    device, dtype = _weights_of(G)
    pair_labels = None if labels is None else torch.cat([labels, labels]).to(device)  # one class per pair
    t = t.double().unsqueeze(1)  # (B, 1)
    if space == "w":
        w = map_to_w(G, torch.cat([z0, z1]).to(device, dtype), pair_labels)  # (2B, w_dim), psi 1
        w0, w1 = w.cpu().double().chunk(2)
        path = torch.cat([lerp(w0, w1, t), lerp(w0, w1, t + epsilon)]).to(device, dtype)
        images = G.synthesis(broadcast_ws(path, G.num_ws))
    else:
        z0, z1 = z0.double(), z1.double()
        path = torch.cat([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)]).to(device, dtype)
        images = raw_images(G, path, pair_labels)  # a style G maps each z, as the reference does
    # StyleGAN's linear output may overshoot its range and is clipped here, as for KID: clipped
    # pixels do not change, so a G that overshoots scores slightly low.
    return to_unit_range(images, G.output_range)


@torch.no_grad()
def path_distances(G: nn.Module, extractor: nn.Module, n: int = N_PAIRS, space: str = "auto",
                   sampling: str = "end", epsilon: float = EPSILON, seed: int = 0,
                   batch_size: int = BATCH_PAIRS, device: str | torch.device | None = None,
                   progress: bool = False) -> np.ndarray:
    """(n,) float64: each pair's ||f(G(path(t))) - f(G(path(t + eps)))||^2 / eps^2, before the
    outlier filter. Same seed, same distances, whatever `batch_size`.

    G runs in eval mode (fixed noise inputs, no style mixing) where its weights are; `extractor`
    (images (B, C, H, W) in [0, 1] -> (B, D)) runs on `device` (None: G's device). Both go back
    to the mode they came in.
    """
    check_ppl_options(space, sampling, epsilon, n, batch_size)
    space = resolve_space(G, space)
    device = torch.device(device) if device is not None else _weights_of(G)[0]
    g_was_training, f_was_training = G.training, extractor.training
    G.eval()
    extractor.to(device).eval()
    out = []
    try:
        with tqdm(total=n, desc="path lengths", unit="pair", leave=False, disable=not progress) as bar:
            for block in endpoint_blocks(G.latent_dim, n, sampling, seed, G.num_classes):
                for start in range(0, len(block[0]), batch_size):
                    z0, z1, t, labels = (x if x is None else x[start:start + batch_size] for x in block)
                    images = _pair_images(G, space, z0, z1, t, labels, epsilon).to(device)
                    features = extractor(images)
                    if features.ndim != 2 or len(features) != len(images):
                        raise GankitError(f"the feature extractor returned shape {tuple(features.shape)} "
                                          f"for {len(images)} images: it must return (B, D) features")
                    # float64 from here: the squared steps are ~eps^2 = 1e-8 of the features'
                    # scale, and dividing by eps^2 should add no rounding of its own. The float32
                    # images and features are noisy already (a pixel near 0.5 rounds by ~3e-8
                    # next to steps of ~1e-5: ~0.1% per pair), noise that averages out over pairs.
                    f0, f1 = features.cpu().double().chunk(2)
                    out.append((f1 - f0).square().sum(dim=1) / epsilon ** 2)
                    bar.update(len(z0))
    finally:
        G.train(g_was_training)
        extractor.train(f_was_training)
    return torch.cat(out).numpy()


def filtered_mean(distances: np.ndarray) -> tuple[float, int]:
    """(mean, kept): the mean of the distances from the 1st percentile (numpy "lower": an actual
    value at or below it) to the 99th ("higher"), both included, as the reference filters
    outliers; nan and 0 when any distance is not finite (G made nan or inf images)."""
    distances = np.asarray(distances, dtype=np.float64)
    assert distances.ndim == 1 and len(distances) > 0, f"expected (n,) distances, got {distances.shape}"
    if not np.isfinite(distances).all():
        return float("nan"), 0
    low = np.percentile(distances, PERCENTILES[0], method="lower")
    high = np.percentile(distances, PERCENTILES[1], method="higher")
    kept = distances[(distances >= low) & (distances <= high)]
    return float(kept.mean()), len(kept)


def perceptual_path_length(G: nn.Module, extractor: nn.Module | str = "mnist", n: int = N_PAIRS,
                           space: str = "auto", sampling: str = "end", epsilon: float = EPSILON,
                           seed: int = 0, batch_size: int = BATCH_PAIRS,
                           device: str | torch.device | None = None, progress: bool = False,
                           weights: str | Path | None = None) -> dict:
    """{PPL, PPL_SPACE, PPL_SAMPLING, PPL_PAIRS} of generator `G` (an ImageGenerator module, or
    a loaded generator: its `.module` is used), measured with `extractor` (a module, or a
    registered name loaded with `weights`). Lower: images change more evenly along latent paths.

        G = load_generator("runs/stylegan")
        perceptual_path_length(G, "mnist", n=2000, space="w", sampling="end")[PPL]

    space: "w", "z" or "auto" (w for style generators). sampling: "end" (t = 0) or "full"
    (t ~ U(0, 1)). n: pairs drawn (the references use 100,000 and 50,000; the 1%/99% filter keeps
    about 98% of them). See `path_distances` for devices and modes.
    """
    G = G if isinstance(G, nn.Module) else G.module  # LoadedGenerator -> its module
    check_ppl_options(space, sampling, epsilon, n, batch_size)
    space = resolve_space(G, space)  # before loading an extractor
    if isinstance(extractor, str):
        extractor = load_feature_extractor(extractor, weights)
    distances = path_distances(G, extractor, n, space, sampling, epsilon, seed, batch_size, device,
                               progress)
    ppl, kept = filtered_mean(distances)
    return {PPL: ppl, PPL_SPACE: space, PPL_SAMPLING: sampling, PPL_PAIRS: kept}
