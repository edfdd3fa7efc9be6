"""Put a real image into a generator: the latent whose image matches it (GAN inversion).

For a StyleGAN-style generator this follows StyleGAN2-ADA's `projector.py`: one w for every
layer, starting at the mean of 10,000 mapped latents; Adam (lr 0.1) with a learning rate that
ramps up over the first 5% of the steps and down (cosine) over the last 25%; Gaussian noise added
to w, std 0.05 x the spread of w, falling quadratically to 0 over the first 75% (it keeps the
search from settling early); the per-layer noise maps optimised too, kept at zero mean and unit
variance, with their autocorrelation at every scale penalised (weight 1e5) so they cannot carry
the picture themselves. Each image is projected alone, as the reference does (the noise maps
belong to one image). For other generators the same schedule optimises z, from z = 0.

The distance: "vgg", LPIPS-style — VGG19 features (the ImageNet weights `gankit stylize` finds)
at relu1_2, relu2_2, relu3_4, relu4_4, relu5_4, each unit-normalised across channels, squared
differences averaged over space and summed; the reference's LPIPS uses VGG16 with learned
per-channel weights, which gankit does not ship, so every channel weighs the same here. Without
the VGG19 weights ("features", or "auto" offline): mean squared pixel difference plus the squared
distance of a registered feature extractor's features (e.g. `mnist` for digits).

    result = project(G, targets, steps=1000)       # targets (B, C, H, W) in [0, 1]
    result.latents, result.images, result.trajectory
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .errors import GankitError
from .latent import is_style_generator, map_to_w, model_device
from .nn.equalized import NoiseInjection
from .visualize import to_unit_range

DISTANCES = ("auto", "vgg", "features")
LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4")


@dataclass
class ProjectionResult:
    space: str  # "w": latents are ws (B, num_ws, w_dim); "z": (B, latent_dim)
    latents: torch.Tensor
    images: torch.Tensor  # (B, C, H, W) in [0, 1]: the reconstructions
    trajectory: torch.Tensor  # (frames, B, C, H, W) in [0, 1]: the images during the search
    losses: list[list[float]]  # per image, the distance at each step
    distance: str  # what was minimised, in words
    noise: list[dict[str, torch.Tensor]] = field(default_factory=list)  # per image, its noise maps


class PerceptualDistance(nn.Module):
    """(B, C, H, W) in [0, 1] -> squared distances (B,) to fixed targets."""

    def __init__(self, targets: torch.Tensor, features: Callable[[torch.Tensor], list[torch.Tensor]], what: str):
        super().__init__()
        self.features, self.what = features, what
        self.targets = [f.detach() for f in features(targets)]

    def one(self, index: int) -> "PerceptualDistance":
        """The same distance to the `index`-th target alone."""
        single = copy.copy(self)
        single.targets = [t[index:index + 1] for t in self.targets]
        return single

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return sum(((a - b).square().flatten(1).mean(1) if a.dim() > 2 else (a - b).square().sum(1))
                   for a, b in zip(self.features(images), self.targets))


def vgg_features(weights=None) -> Callable[[torch.Tensor], list[torch.Tensor]]:
    from .style_transfer import load_vgg19

    vgg = load_vgg19(weights, layers=LPIPS_LAYERS).eval().requires_grad_(False)

    def features(images: torch.Tensor) -> list[torch.Tensor]:
        rgb = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
        rgb = F.interpolate(rgb, size=max(rgb.shape[-1], 64), mode="bilinear", align_corners=False)
        out = vgg.to(images.device)(rgb)
        return [f / (f.square().sum(1, keepdim=True).sqrt() + 1e-10) for f in (out[n] for n in LPIPS_LAYERS)]

    return features


def pixel_and_extractor_features(extractor: nn.Module | None) -> Callable[[torch.Tensor], list[torch.Tensor]]:
    def features(images: torch.Tensor) -> list[torch.Tensor]:
        out = [images]
        if extractor is not None:
            out.append(extractor.to(images.device)(images).float())  # (B, D)
        return out

    return features


def make_distance(targets: torch.Tensor, distance: str = "auto", features: str | None = None,
                  vgg_weights=None) -> PerceptualDistance:
    """The distance to `targets`: see the module's docstring. "auto": vgg where the VGG19 weights
    are found, else pixels plus `features` (if given)."""
    from .metrics import load_feature_extractor

    if distance not in DISTANCES:
        raise GankitError(f"--distance {distance}: use one of {', '.join(DISTANCES)}")
    if distance in ("auto", "vgg"):
        try:
            return PerceptualDistance(targets, vgg_features(vgg_weights), "LPIPS-style VGG19 features")
        except GankitError:
            if distance == "vgg":
                raise
    extractor = load_feature_extractor(features).eval().requires_grad_(False) if features else None
    what = "pixels" + (f" and {features} features" if features else "")
    return PerceptualDistance(targets, pixel_and_extractor_features(extractor), what)


def learning_rate(step: int, steps: int, initial: float, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    """The reference's schedule: linear warm-up over `rampup`, cosine decay over `rampdown`."""
    t = step / steps
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return initial * ramp * min(1.0, t / rampup)


def noise_regularisation(maps: list[torch.Tensor]) -> torch.Tensor:
    """Sum over maps and scales (halving down to 8x8) of the squared mean products with the map
    shifted by one pixel along each axis: zero for white noise, large for noise that draws."""
    loss = maps[0].new_zeros(()) if maps else torch.zeros(())
    for noise in maps:
        x = noise  # (1, 1, H, W)
        while True:
            loss = loss + (x * torch.roll(x, 1, dims=3)).mean().square() + (x * torch.roll(x, 1, dims=2)).mean().square()
            if x.shape[2] <= 8:
                break
            x = F.avg_pool2d(x, 2)
    return loss


def drawn_shape(G: nn.Module, labels: torch.Tensor | None) -> tuple[int, ...]:
    """(C, H, W) of G's images, from one draw."""
    with torch.no_grad():
        z = torch.zeros(1, G.latent_dim, device=model_device(G))
        return tuple(G(z, None if labels is None else labels[:1].to(z.device)).shape[1:])


def load_targets(paths, data) -> torch.Tensor:
    """Image files as the run's data pipeline prepares its images (crop, size, channels):
    (B, C, size, size) in [0, 1]. `data`: the run's DataConfig."""
    from PIL import Image, UnidentifiedImageError

    from .data.image import Preprocess, to_channels

    prepare = Preprocess.from_config(data)
    images = []
    for path in paths:
        try:
            with Image.open(path) as img:
                pixels = prepare(img)
        except FileNotFoundError:
            raise GankitError(f"image {path} does not exist: check the path") from None
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise GankitError(f"cannot read {path} as an image ({str(err).splitlines()[0][:80]}): give a "
                              "PNG, JPEG or WebP file") from None
        images.append(to_channels(pixels, data.channels or pixels.shape[0]))
    return torch.stack(images).float() / 255


def project(G: nn.Module, targets: torch.Tensor, steps: int = 1000, distance: str = "auto",
            features: str | None = None, labels: torch.Tensor | None = None, seed: int = 0,
            w_avg_samples: int = 10_000, learning_rate_0: float = 0.1, noise_factor: float = 0.05,
            noise_ramp: float = 0.75, noise_weight: float = 1e5, snapshots: int = 40,
            vgg_weights=None, progress: Callable[[int, int, float], None] | None = None) -> ProjectionResult:
    """Latents whose images match `targets` (B, C, H, W) in [0, 1]; see the module docstring."""
    if steps < 1:
        raise GankitError(f"--steps {steps}: use at least 1 (the reference uses 1000)")
    if G.num_classes and labels is None:
        raise GankitError("this generator is conditional: give the class of the images (--label)")
    device = model_device(G)
    G = copy.deepcopy(G).eval().requires_grad_(False)  # the noise maps change: never the caller's G
    shape = drawn_shape(G, labels)
    if targets.dim() != 4 or tuple(targets.shape[1:]) != shape:
        raise GankitError(f"the images are {tuple(targets.shape[1:])} but the model draws {shape}: load them "
                          "at the model's size and channels (gankit project does)")
    targets = targets.to(device).float()
    measure = make_distance(targets, distance, features, vgg_weights)
    g = torch.Generator().manual_seed(seed)
    every = max(1, steps // snapshots)
    if is_style_generator(G):
        results = [_project_w(G, measure.one(i), targets[i:i + 1], None if labels is None else labels[i:i + 1].to(device),
                              steps, g, w_avg_samples, learning_rate_0, noise_factor, noise_ramp, noise_weight,
                              every, progress) for i in range(len(targets))]
        latents = torch.cat([r[0] for r in results])
        images = torch.cat([r[1] for r in results])
        trajectory = torch.cat([r[2] for r in results], dim=1)
        return ProjectionResult("w", latents, images, trajectory, [r[3] for r in results], measure.what,
                                [r[4] for r in results])
    z, images, trajectory, losses = _project_z(G, measure, targets, None if labels is None else labels.to(device),
                                               steps, learning_rate_0, every, progress)
    return ProjectionResult("z", z, images, trajectory, losses, measure.what)


def _project_w(G, measure, target, label, steps, g, w_avg_samples, lr0, noise_factor, noise_ramp, noise_weight,
               every, progress):
    device = target.device
    z = torch.randn(w_avg_samples, G.latent_dim, generator=g).to(device)
    with torch.no_grad():
        w_samples = map_to_w(G, z, None if label is None else label.expand(w_avg_samples)).float()  # (N, w_dim)
    w_avg = w_samples.mean(0, keepdim=True)
    w_std = ((w_samples - w_avg).square().sum() / w_avg_samples).sqrt()
    layers = [m for m in G.modules() if isinstance(m, NoiseInjection)]
    for layer in layers:  # fresh white noise, optimised with w
        layer.fixed_noise = torch.randn(layer.fixed_noise.shape, generator=g).to(device).requires_grad_(True)
    maps = [layer.fixed_noise for layer in layers]
    w = w_avg.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([w] + maps, betas=(0.9, 0.999), lr=lr0)
    frames, losses = [], []
    for step in range(steps):
        t = step / steps
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps, lr0)
        w_noise = torch.randn(w.shape, generator=g).to(device) * w_std * noise_factor * max(0.0, 1.0 - t / noise_ramp) ** 2
        ws = (w + w_noise).unsqueeze(1).repeat(1, G.num_ws, 1)
        image = to_unit_range_soft(G.synthesis(ws), G.output_range)
        dist = measure(image).sum()
        loss = dist + noise_weight * noise_regularisation(maps).to(device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # the reference keeps the noise maps white: zero mean, unit variance
            for noise in maps:
                noise -= noise.mean()
                noise *= noise.square().mean().rsqrt()
        losses.append(float(dist.detach()))
        if step % every == 0 or step == steps - 1:
            frames.append(image.detach().clamp(0, 1).cpu())
        if progress is not None:
            progress(step, steps, float(dist))
    with torch.no_grad():
        ws = w.detach().unsqueeze(1).repeat(1, G.num_ws, 1)
        final = to_unit_range(G.synthesis(ws), G.output_range).cpu()
    noise = {f"noise{i}": m.detach().cpu() for i, m in enumerate(maps)}
    return ws.cpu(), final, torch.stack(frames), losses, noise


def _project_z(G, measure, targets, labels, steps, lr0, every, progress):
    z = torch.zeros(len(targets), G.latent_dim, device=targets.device, requires_grad=True)
    optimizer = torch.optim.Adam([z], betas=(0.9, 0.999), lr=lr0)
    frames, losses = [], [[] for _ in range(len(targets))]
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps, lr0)
        images = to_unit_range_soft(G(z, labels), G.output_range)
        dist = measure(images)  # (B,)
        optimizer.zero_grad(set_to_none=True)
        dist.sum().backward()
        optimizer.step()
        for i, d in enumerate(dist.tolist()):
            losses[i].append(d)
        if step % every == 0 or step == steps - 1:
            frames.append(images.detach().clamp(0, 1).cpu())
        if progress is not None:
            progress(step, steps, float(dist.mean()))
    with torch.no_grad():
        final = to_unit_range(G(z, labels), G.output_range).cpu()
    return z.detach().cpu(), final, torch.stack(frames), losses


def to_unit_range_soft(images: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """G's output mapped to [0, 1] without clipping: the distance keeps its gradient everywhere."""
    low, high = value_range
    return (images.float() - low) / (high - low)


__all__ = ["DISTANCES", "ProjectionResult", "make_distance", "project"]
