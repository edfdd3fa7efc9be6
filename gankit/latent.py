"""Latent-space tools: interpolation, style mixing and truncation. Pure maths, no file I/O.

Any generator `G(z, labels=None)` works for interpolation in z. A StyleGAN-style generator (one
with `mapping` and `synthesis`) also offers its intermediate space w:

    w  = G.mapping(z, labels)                      # (B, w_dim)
    ws = w repeated G.num_ws times                 # (B, num_ws, w_dim); layer 0 is the coarsest
    x  = G.synthesis(ws)                           # (B, C, H, W) in G.output_range
    truncation:  w' = w_avg + psi * (w - w_avg)    # psi 1: off, 0: the average image

Everything here returns images as floats in [0, 1] on the CPU, whatever device G is on.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .contracts import StyleGenerator, implements
from .errors import GankitError
from .visualize import to_unit_range

SPACES = ("auto", "z", "w")
# Outside this range truncation extrapolates so far from the average w that images stop looking
# like the data; a value such as 7 is almost surely a typo for 0.7. StyleGAN itself allows any psi.
PSI_RANGE = (-1.0, 2.0)
STYLE_HINT = "a StyleGAN-style generator (--recipe stylegan)"


def is_style_generator(G: torch.nn.Module) -> bool:
    return implements(G, StyleGenerator)  # the contract: mapping, synthesis, num_ws, w_avg


def check_psi(psi: float, G: torch.nn.Module | None = None) -> float:
    """`psi` itself if it is usable (with `G`, if G can truncate); else a GankitError."""
    psi = float(psi)
    if not (math.isfinite(psi) and PSI_RANGE[0] <= psi <= PSI_RANGE[1]):
        raise GankitError(f"--truncation {psi:g}: use a psi from {PSI_RANGE[0]:g} to {PSI_RANGE[1]:g} "
                          "(1: no truncation, 0.5 to 0.8: less variety, better images, 0: the average image)")
    # Plain generators get no z-truncation (BigGAN's resampling of |z| > threshold): its knob is a
    # threshold, not psi, so one flag would mean two things; and resampling replaces latents, so
    # the same seed would no longer give the same images, only pulled towards the average.
    if psi != 1.0 and G is not None and not is_style_generator(G):
        raise GankitError(f"truncation needs {STYLE_HINT}: drop --truncation (or use 1) for this model")
    return psi


# --------------------------------------------------------------------------------------------
# Interpolation maths


def lerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """a + t (b - a); `t` a number or a tensor that broadcasts against a[..., :1]."""
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Spherical interpolation over the last dimension (Shoemake 1985; for GAN latents, White 2016).

    Gaussian z in many dimensions lie near a sphere of radius sqrt(latent_dim); a straight line
    between two of them passes through the sparsely sampled middle (norm ~ 0.7 of the ends), which
    G rarely saw. slerp follows the great circle instead:
        omega = angle(a, b);  slerp = sin((1-t) omega) / sin(omega) a + sin(t omega) / sin(omega) b
    For (anti)parallel a, b sin(omega) ~ 0 and the circle is undefined: fall back to lerp.
    """
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1, eps=eps).clamp(-1.0, 1.0).unsqueeze(-1)
    omega = torch.acos(cos)
    sin = torch.sin(omega)
    safe = sin.clamp_min(eps)  # where sin ~ 0 the spherical branch is discarded; keep it finite
    spherical = (torch.sin((1.0 - t) * omega) / safe) * a + (torch.sin(t * omega) / safe) * b
    return torch.where(sin > eps, spherical, lerp(a, b, t))


def loop_path(keys: torch.Tensor, frames_per_segment: int,
              interpolate: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """(K, D) keyframes -> (K * frames_per_segment, D): key 0 -> key 1 -> ... -> key K-1 -> back
    towards key 0. Each segment holds t = 0, 1/f, ..., (f-1)/f, so the frame after the last would
    be key 0 again: the path loops without a repeated frame."""
    assert keys.dim() == 2 and len(keys) >= 2, f"expected (K >= 2, D) keyframes, got {tuple(keys.shape)}"
    t = (torch.arange(frames_per_segment, dtype=keys.dtype, device=keys.device) / frames_per_segment).unsqueeze(1)
    segments = [interpolate(keys[k:k + 1], keys[(k + 1) % len(keys)].unsqueeze(0), t)  # (f, D)
                for k in range(len(keys))]
    return torch.cat(segments)


# --------------------------------------------------------------------------------------------
# Running generators


def model_device(G: torch.nn.Module) -> torch.device:
    """The device of a model's first parameter (or buffer); the CPU for one with neither."""
    tensor = next(iter(G.parameters()), None)
    if tensor is None:
        tensor = next(iter(G.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _batched(fn: Callable[..., torch.Tensor], G: torch.nn.Module, *inputs: torch.Tensor | None,
             batch_size: int = 64) -> torch.Tensor:
    """fn(*chunks) over chunks of `batch_size` along dim 0, moved to G's device; [0, 1], on the CPU."""
    device, n = model_device(G), len(inputs[0])
    out = []
    for start in range(0, n, batch_size):
        chunk = [x if x is None else x[start:start + batch_size].to(device) for x in inputs]
        out.append(to_unit_range(fn(*chunk), G.output_range).cpu())
    return torch.cat(out) if out else torch.empty(0)


def default_label(G: torch.nn.Module, label: int | None) -> int | None:
    """The class a conditional G is held at: `label`, else class 0. A fixed class (not one drawn
    from the seed) so that changing --seed changes only the latents; None for unconditional G."""
    if not G.num_classes:
        return None
    return 0 if label is None else int(label)


def _labels(G: torch.nn.Module, label: int | None, n: int) -> torch.Tensor | None:
    label = default_label(G, label)
    return None if label is None else torch.full((n,), label, dtype=torch.long)


def truncate(w: torch.Tensor, w_avg: torch.Tensor, psi: float) -> torch.Tensor:
    """w' = w_avg + psi (w - w_avg): psi < 1 pulls styles towards the average (Karras et al. 2019)."""
    return w if psi == 1.0 else torch.lerp(w_avg.to(w.dtype), w, psi)


def map_to_w(G: torch.nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None,
             psi: float = 1.0) -> torch.Tensor:
    """(B, latent_dim) -> (B, w_dim): G's mapping, then truncation."""
    w = G.mapping(z, labels)
    assert w.shape == (len(z), G.w_dim), f"mapping gave {tuple(w.shape)}, expected ({len(z)}, {G.w_dim})"
    return truncate(w, G.w_avg, psi)


def broadcast_ws(w: torch.Tensor, num_ws: int) -> torch.Tensor:
    """(B, w_dim) -> (B, num_ws, w_dim): the same style for every layer."""
    return w.unsqueeze(1).expand(-1, num_ws, -1)


@torch.no_grad()
def load_ws(G: torch.nn.Module, source) -> torch.Tensor:
    """Latents from an .npz file (or a dict of arrays) as per-layer styles (B, num_ws, w_dim) on
    the CPU: `ws` as they are, `w` (B, w_dim) for every layer, or `z` (B, latent_dim) mapped
    (with `labels` (B,) for a conditional G). What `gankit project` writes and `edit` reads."""
    if not is_style_generator(G):
        raise GankitError(f"latents in w need {STYLE_HINT}")
    name = str(source) if not isinstance(source, dict) else "the latents"
    arrays = source if isinstance(source, dict) else _read_npz(source)
    shapes = {key: tuple(value.shape) for key, value in arrays.items()}
    if "ws" in arrays and shapes["ws"][1:] == (G.num_ws, G.w_dim):
        return torch.as_tensor(arrays["ws"]).float()
    if "w" in arrays and shapes["w"][1:] == (G.w_dim,):
        return broadcast_ws(torch.as_tensor(arrays["w"]).float(), G.num_ws).clone()
    if "z" in arrays and shapes["z"][1:] == (G.latent_dim,):
        labels = arrays.get("labels")
        if G.num_classes and labels is None:
            raise GankitError(f"{name}: this generator is conditional; add labels (B,) beside z")
        device = model_device(G)
        z = torch.as_tensor(arrays["z"]).float().to(device)
        y = None if labels is None else torch.as_tensor(labels).long().to(device)
        return broadcast_ws(map_to_w(G, z, y), G.num_ws).cpu().clone()
    raise GankitError(f"{name} holds {shapes}: this model takes ws (B, {G.num_ws}, {G.w_dim}), "
                      f"w (B, {G.w_dim}) or z (B, {G.latent_dim})")


def raw_images(G: torch.nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None,
            psi: float = 1.0) -> torch.Tensor:
    """G's raw output (its own output range) for z, truncated by `psi` (style generators only).
    psi 1 calls G exactly as training did; otherwise mapping -> truncate -> synthesis, the same
    path the interpolation and mixing tools take."""
    if psi == 1.0:
        return G(z, labels)
    check_psi(psi, G)
    return G.synthesis(broadcast_ws(map_to_w(G, z, labels, psi), G.num_ws))


def draw_latents(latent_dim: int, n: int, seed: int | None = 0, num_classes: int = 0,
                 label: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """z (n, latent_dim) and labels (n,) or None, drawn in the order LoadedGenerator.sample always
    has (z first, then random classes unless `label` fixes one): same seed, same images."""
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    z = torch.randn(n, latent_dim, generator=g)
    labels = None
    if label is not None:
        labels = torch.full((n,), int(label), dtype=torch.long)
    elif num_classes:
        labels = torch.randint(num_classes, (n,), generator=g)
    return z, labels


@torch.no_grad()
def truncated_sample(G: torch.nn.Module, n: int, psi: float = 1.0, seed: int | None = 0,
                     label: int | None = None, batch_size: int = 64) -> torch.Tensor:
    """(n, C, H, W) in [0, 1]: the images `LoadedGenerator.sample(n, seed)` gives, with the
    style generator's w pulled towards w_avg by `psi`. A conditional G draws random classes
    unless `label` fixes one (as `sample` does)."""
    psi = check_psi(psi, G)
    z, labels = draw_latents(G.latent_dim, n, seed, G.num_classes, label)
    return _batched(lambda z_, y: raw_images(G, z_, y, psi), G, z, labels, batch_size=batch_size)


@torch.no_grad()
def interpolation_path(G: torch.nn.Module, n_keyframes: int = 4, frames_per_segment: int = 16,
                       seed: int | None = 0, space: str = "auto", label: int | None = None,
                       psi: float = 1.0, batch_size: int = 64) -> torch.Tensor:
    """A looping walk through `n_keyframes` random latents: (n_keyframes * frames_per_segment,
    C, H, W) in [0, 1]; the frame after the last would be the first again.

    space "z": slerp between Gaussian z (any G). "w": map the keyframes to w and lerp there (style
    generators; w is not Gaussian, and its straight lines are what the synthesis was trained to
    make smooth). "auto": w for style generators, z otherwise. A conditional G is held at one class,
    `label` (default class 0). `psi` truncates (style generators only).
    """
    if space not in SPACES:
        raise GankitError(f"--space {space}: use one of {', '.join(SPACES)}")
    if n_keyframes < 2:
        raise GankitError(f"--keyframes {n_keyframes}: use at least 2 (a walk needs somewhere to go)")
    if frames_per_segment < 1:
        raise GankitError(f"--frames {frames_per_segment}: use at least 1 frame per keyframe")
    psi = check_psi(psi, G)
    style = is_style_generator(G)
    if space == "w" and not style:
        raise GankitError(f"--space w needs {STYLE_HINT}: use --space z (or auto) for this model")
    space = ("w" if style else "z") if space == "auto" else space

    g = torch.Generator().manual_seed(seed) if seed is not None else None
    keys = torch.randn(n_keyframes, G.latent_dim, generator=g)  # (K, latent_dim)
    n_frames = n_keyframes * frames_per_segment
    if space == "z":
        path = loop_path(keys, frames_per_segment, slerp)  # (frames, latent_dim)
        return _batched(lambda z, y: raw_images(G, z, y, psi), G, path, _labels(G, label, n_frames),
                        batch_size=batch_size)
    device = model_device(G)
    key_labels = _labels(G, label, n_keyframes)
    key_w = map_to_w(G, keys.to(device), None if key_labels is None else key_labels.to(device), psi)
    path = loop_path(key_w, frames_per_segment, lerp)  # (frames, w_dim)
    return _batched(lambda w: G.synthesis(broadcast_ws(w, G.num_ws)), G, path, batch_size=batch_size)


@torch.no_grad()
def interpolation_frames(G: torch.nn.Module, z_a: torch.Tensor, z_b: torch.Tensor, frames: int,
                         labels: torch.Tensor | None = None, psi: float = 1.0) -> torch.Tensor:
    """`frames` images from z_a's (1, latent_dim) to z_b's, both ends included, in [0, 1]: lerp
    of their w for style generators, slerp of z otherwise (as interpolation_path's "auto")."""
    psi = check_psi(psi, G)
    t = torch.linspace(0, 1, frames).unsqueeze(1)  # (frames, 1)
    y = None if labels is None else labels[:1].expand(frames)
    if not is_style_generator(G):
        return _batched(lambda z, lab: raw_images(G, z, lab, psi), G, slerp(z_a, z_b, t), y)
    device = model_device(G)
    ends = map_to_w(G, torch.cat([z_a, z_b]).to(device), None if y is None else y[:2].to(device), psi)
    path = lerp(ends[:1], ends[1:], t.to(device))  # (frames, w_dim)
    return _batched(lambda w: G.synthesis(broadcast_ws(w, G.num_ws)), G, path)


def mixed_ws(row_w: torch.Tensor, col_w: torch.Tensor, num_ws: int, crossover: int) -> torch.Tensor:
    """(R, w_dim), (C, w_dim) -> (R * C, num_ws, w_dim), row-major: cell (i, j) takes row i's style
    for layers < crossover (coarse: pose, shape) and column j's for the rest (fine: colour, texture).
    Per-layer styles (R, num_ws, w_dim), e.g. a projected photo's, are taken as they are."""
    rows, cols = len(row_w), len(col_w)
    row_ws = _per_layer(row_w, num_ws).unsqueeze(1).expand(rows, cols, num_ws, -1)
    col_ws = _per_layer(col_w, num_ws).unsqueeze(0).expand(rows, cols, num_ws, -1)
    coarse = (torch.arange(num_ws, device=row_w.device) < crossover).view(1, 1, num_ws, 1)
    return torch.where(coarse, row_ws, col_ws).reshape(rows * cols, num_ws, -1)


def _per_layer(w: torch.Tensor, num_ws: int) -> torch.Tensor:
    return w if w.ndim == 3 else broadcast_ws(w, num_ws)


@torch.no_grad()
def style_mix_grid(G: torch.nn.Module, rows: int = 4, cols: int = 4, seed: int | None = 0,
                   crossover: int | None = None, psi: float = 1.0, label: int | None = None,
                   batch_size: int = 64, row_ws: torch.Tensor | None = None,
                   col_ws: torch.Tensor | None = None) -> torch.Tensor:
    """The images of a (rows + 1) x (cols + 1) style-mixing grid, row-major, in [0, 1]:
    top-left blank (white), top row the column sources, left column the row sources, and cell
    (i, j) the row source's coarse styles (layers < crossover) with the column source's fine ones.

    `crossover` defaults to num_ws // 2: G says how many style layers it has but not which
    resolution each drives, so we cut at the middle: the coarse half (4x4 up to 8x8 or 16x16 for
    the usual two styles per resolution) from the row, the rest from the column. Lower it to take
    less from the rows. 0 gives the column images, num_ws the row images. A conditional G is
    held at one class, `label` (default class 0). Save with `save_grid(images, path, nrow=cols + 1)`.

    `row_ws` / `col_ws` (B, num_ws, w_dim), e.g. `load_ws` of files `gankit project` wrote, replace
    the random row / column sources (then `rows` / `cols` is their count): a photo's coarse styles
    with another's fine ones. They are drawn with G's fixed noise and truncated like the others.
    """
    if not is_style_generator(G):
        raise GankitError(f"style mixing needs {STYLE_HINT}: this model has no per-layer styles")
    num_ws = int(G.num_ws)
    for given, side in ((row_ws, "row"), (col_ws, "column")):
        if given is not None and (given.ndim != 3 or tuple(given.shape[1:]) != (num_ws, G.w_dim)):
            raise GankitError(f"the {side} latents have shape {tuple(given.shape)}: this generator takes "
                              f"(B, {num_ws}, {G.w_dim}) per-layer styles")
    rows = len(row_ws) if row_ws is not None else rows
    cols = len(col_ws) if col_ws is not None else cols
    if rows < 1 or cols < 1:
        raise GankitError(f"--rows {rows} --cols {cols}: use at least one row and one column")
    crossover = num_ws // 2 if crossover is None else int(crossover)
    if not 0 <= crossover <= num_ws:
        raise GankitError(f"--crossover {crossover}: use 0..{num_ws} (this generator has {num_ws} "
                          "style layers; the first `crossover` come from the row image)")
    psi = check_psi(psi, G)
    device = model_device(G)
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    z = torch.randn(rows + cols, G.latent_dim, generator=g).to(device)  # rows' sources, then columns'
    labels = _labels(G, label, rows + cols)
    w = map_to_w(G, z, None if labels is None else labels.to(device), psi)  # (rows + cols, w_dim)
    w = broadcast_ws(w, num_ws)
    w_avg = G.w_avg.to(device)
    row_w = w[:rows] if row_ws is None else truncate(row_ws.to(device, w.dtype), w_avg, psi)
    col_w = w[rows:] if col_ws is None else truncate(col_ws.to(device, w.dtype), w_avg, psi)
    sources = _batched(G.synthesis, G, torch.cat([row_w, col_w]), batch_size=batch_size)
    cells = _batched(G.synthesis, G, mixed_ws(row_w, col_w, num_ws, crossover), batch_size=batch_size)
    row_images, col_images = sources[:rows], sources[rows:]
    cells = cells.view(rows, cols, *cells.shape[1:])
    blank = torch.ones_like(sources[:1])
    top = torch.cat([blank, col_images])  # (cols + 1, C, H, W)
    body = torch.cat([row_images.unsqueeze(1), cells], dim=1)  # (rows, cols + 1, C, H, W)
    return torch.cat([top, body.flatten(0, 1)])


# ---- latents saved in files (what `gankit project` and `gankit edit --save-latent` write) -------

def _read_npz(path) -> dict:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as f:
            return {key: f[key] for key in f.files}
    except (OSError, ValueError) as err:
        raise GankitError(f"cannot read latents from {path} ({str(err).splitlines()[0][:100]}): give an .npz "
                          "that `gankit project` or `gankit edit --save-latent` wrote") from None


def file_latents(G: torch.nn.Module, path) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The latents of one .npz, in the space G draws from: ws (B, num_ws, w_dim) for a style
    generator (load_ws: ws, w or z), else (z (B, latent_dim), labels (B,) or None)."""
    if is_style_generator(G):
        return load_ws(G, path), None
    arrays = _read_npz(path)
    z = arrays.get("z")
    if z is None or z.ndim != 2 or z.shape[1] != G.latent_dim:
        found = ", ".join(f"{k} {tuple(v.shape)}" for k, v in arrays.items()) or "nothing"
        raise GankitError(f"{path} holds {found}: this generator draws from z (B, {G.latent_dim}); give "
                          "latents that `gankit project` wrote for it")
    labels = arrays.get("labels")
    if G.num_classes and labels is None:
        raise GankitError(f"{path}: this generator is conditional; add labels (B,) beside z")
    return torch.as_tensor(z).float(), None if labels is None else torch.as_tensor(labels).long()


@torch.no_grad()
def render_files(G: torch.nn.Module, paths: list, psi: float = 1.0) -> torch.Tensor:
    """The images of every latent in the .npz files, in order: (N, C, H, W) in [0, 1]. A file of
    one projected image with its noise maps (noise0, noise1, ...) is drawn with them, so it shows
    the reconstruction `gankit project` saved; other latents use G's fixed noise."""
    from .nn.equalized import NoiseInjection

    psi = check_psi(psi, G)
    device = model_device(G)
    out = []
    for path in paths:
        latents, labels = file_latents(G, path)
        if not is_style_generator(G):
            out.append(_batched(lambda z, y: raw_images(G, z, y, psi), G, latents, labels))
            continue
        if psi != 1.0:
            w_avg = G.w_avg.to(device)
            latents = truncate(latents.to(device), w_avg, psi).cpu()
        layers = [m for m in G.modules() if isinstance(m, NoiseInjection)]
        arrays = _read_npz(path)
        maps = [arrays.get(f"noise{i}") for i in range(len(layers))]
        own = len(latents) == 1 and all(m is not None and tuple(m.shape) == tuple(layer.fixed_noise.shape)
                                         for m, layer in zip(maps, layers))
        kept = [layer.fixed_noise for layer in layers]
        try:
            if own:
                for layer, m in zip(layers, maps):
                    layer.fixed_noise = torch.as_tensor(m).to(device, layer.fixed_noise.dtype)
            out.append(_batched(lambda ws: G.synthesis(ws), G, latents))
        finally:
            for layer, noise in zip(layers, kept):
                layer.fixed_noise = noise
    return torch.cat(out)


@torch.no_grad()
def walk_through_files(G: torch.nn.Module, paths: list, frames_per_segment: int = 16,
                       batch_size: int = 64) -> torch.Tensor:
    """A looping walk through the latents of the .npz files, in order (e.g. projected photos):
    (keyframes * frames_per_segment, C, H, W) in [0, 1]. Per-layer ws are lerped (style
    generators, drawn with G's fixed noise), z is slerped."""
    if frames_per_segment < 1:
        raise GankitError(f"--frames {frames_per_segment}: use at least 1 frame per keyframe")
    found = [file_latents(G, path) for path in paths]
    keys = torch.cat([latents for latents, _ in found])
    if len(keys) < 2:
        raise GankitError("a walk needs at least two latents: give two or more --through files (or one holding several)")
    if is_style_generator(G):
        path = loop_path(keys.flatten(1), frames_per_segment, lerp).view(-1, *keys.shape[1:])  # (frames, num_ws, w_dim)
        return _batched(lambda ws: G.synthesis(ws), G, path, batch_size=batch_size)
    labels = [labels for _, labels in found]
    if G.num_classes and len({int(y) for part in labels for y in part}) > 1:
        raise GankitError("the --through latents are of different classes: a walk stays in one class")
    path = loop_path(keys, frames_per_segment, slerp)
    y = None if not G.num_classes else labels[0][:1].expand(len(path))
    return _batched(lambda z, lab: raw_images(G, z, lab, 1.0), G, path, y, batch_size=batch_size)
