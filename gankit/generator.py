"""A trained generator, loaded from a checkpoint or run folder: sample, interpolate, mix styles.

    G = load_generator("runs/cats")          # the EMA generator of the latest checkpoint
    images = G.sample(16, seed=0)            # (16, C, H, W) floats in [0, 1]
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from .config import TrainConfig, from_dict, upgrade_saved_config
from .errors import DesignWarning, GankitError
from .training import checkpoint as ckpt
from .training.device import select_device
from .variants import DataSpec, get_recipe
from .visualize import to_unit_range


class LoadedGenerator:
    """The EMA generator of a checkpoint, rebuilt from the config stored inside it."""

    def __init__(self, module: torch.nn.Module, config: TrainConfig, step: int, device: torch.device,
                 class_names: list[str] | None = None):
        self.module, self.config, self.step, self.device = module, config, step, device
        self.num_classes = module.num_classes  # the ImageGenerator contract
        self.class_names = class_names or [str(i) for i in range(self.num_classes)]

    @property
    def latent_dim(self) -> int:
        return self.module.latent_dim

    def label_index(self, label: int | str) -> int:
        """A class index from an index or a class name ("name:X" / "index:N" when a class name
        is also a number); anything else is a user error."""
        if not self.num_classes:
            raise GankitError("this generator is unconditional: drop --label (train with --conditional "
                              "or --recipe cgan for class-conditional samples)")
        text = str(label)
        if text.startswith("name:"):
            if text[5:] not in self.class_names:
                raise GankitError(f"no class named {text[5:]!r}: use one of {', '.join(self.class_names[:10])}")
            return self.class_names.index(text[5:])
        as_index = text[6:] if text.startswith("index:") else text
        by_name = self.class_names.index(text) if text in self.class_names else None
        try:
            index = int(as_index)
        except ValueError:
            index = None
        if text.startswith("index:"):
            by_name = None
        if by_name is not None and index is not None and index != by_name and 0 <= index < self.num_classes:
            raise GankitError(f"label {text!r} is both the name of class {by_name} and the index of class "
                              f"{index} ({self.class_names[index]!r}): write name:{text} or index:{text}")
        if by_name is not None:
            return by_name
        if index is None or not 0 <= index < self.num_classes:
            raise GankitError(f"label {label!r} is not a class of this generator: use 0..{self.num_classes - 1} "
                              f"or one of {', '.join(self.class_names[:10])}")
        return index

    @property
    def is_style(self) -> bool:
        """True for a StyleGAN-style generator (mapping + synthesis): w space, mixing, truncation."""
        from .latent import is_style_generator

        return is_style_generator(self.module)

    def _label(self, label: int | str | None) -> int | None:
        return None if label is None else self.label_index(label)

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = 0, batch_size: int = 256,
               label: int | str | None = None, truncation: float = 1.0) -> torch.Tensor:
        """`n` images as floats in [0, 1], (n, C, H, W), on the CPU. Same seed, same images.
        A conditional generator draws random classes unless `label` fixes one. `truncation` psi
        < 1 pulls a style generator's w towards its average (the same images, less varied)."""
        from .latent import draw_latents

        z, labels = draw_latents(self.latent_dim, n, seed, self.num_classes, self._label(label))
        return self.generate(z, batch_size, labels, truncation=truncation)

    @torch.no_grad()
    def sample_by_class(self, per_class: int, seed: int | None = 0, truncation: float = 1.0) -> torch.Tensor:
        """One row of `per_class` images per class, the same latents down each column."""
        from .models.conditional import class_rows

        if not self.num_classes:
            raise GankitError("this generator is unconditional: --by-class needs a conditional GAN")
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        z, labels = class_rows(self.num_classes, per_class, self.latent_dim, g)
        return self.generate(z, labels=labels, truncation=truncation)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, batch_size: int = 256, labels: torch.Tensor | None = None,
                 truncation: float = 1.0) -> torch.Tensor:
        from .latent import check_psi, raw_images

        if self.num_classes and labels is None:
            raise GankitError("this generator is conditional: give one label per latent")
        psi = check_psi(truncation, self.module)
        label_chunks = labels.split(batch_size) if labels is not None else [None] * len(z.split(batch_size))
        out = [to_unit_range(raw_images(self.module, chunk.to(self.device),
                                        y if y is None else y.to(self.device), psi),
                             self.module.output_range).cpu()
               for chunk, y in zip(z.split(batch_size), label_chunks)]
        return torch.cat(out) if out else torch.empty(0)

    def interpolate(self, keyframes: int = 4, frames: int = 16, seed: int | None = 0, space: str = "auto",
                    truncation: float = 1.0, label: int | str | None = None) -> torch.Tensor:
        """A looping walk through `keyframes` random latents, `frames` per keyframe:
        (keyframes * frames, C, H, W) in [0, 1]. See `gankit.latent.interpolation_path`."""
        from .latent import interpolation_path

        return interpolation_path(self.module, keyframes, frames, seed=seed, space=space,
                                  label=self._label(label), psi=truncation)

    def style_ws(self, paths: list) -> torch.Tensor | None:
        """The per-layer styles (B, num_ws, w_dim) of every latent in the .npz files, in order
        (None for no files): what `style_mix` takes as row or column sources."""
        from .latent import load_ws

        return torch.cat([load_ws(self.module, path) for path in paths]) if paths else None

    def style_mix(self, rows: int = 4, cols: int = 4, seed: int | None = 0, crossover: int | None = None,
                  truncation: float = 1.0, label: int | str | None = None,
                  row_latents: list | None = None, col_latents: list | None = None) -> torch.Tensor:
        """The ((rows + 1) * (cols + 1), C, H, W) images of a style-mixing grid, row-major (save it
        with nrow = cols + 1). `row_latents` / `col_latents`: .npz files (`gankit project`'s) whose
        latents are the row / column sources instead of random ones, or their per-layer styles
        (B, num_ws, w_dim) as `style_ws` reads them. See `gankit.latent.style_mix_grid`."""
        from .latent import style_mix_grid

        def from_files(paths):
            return paths if paths is None or isinstance(paths, torch.Tensor) else self.style_ws(paths)

        return style_mix_grid(self.module, rows, cols, seed=seed, crossover=crossover, psi=truncation,
                              label=self._label(label), row_ws=from_files(row_latents),
                              col_ws=from_files(col_latents))


def load_generator(path: str | Path, device: str = "cpu") -> LoadedGenerator:
    """Load the EMA generator from a checkpoint file, a run folder (its latest checkpoint) or a
    registered pretrained model's name (`gankit pretrained list`)."""
    from .pretrained import source_file

    state = ckpt.load_checkpoint(source_file(path))
    config = from_dict(TrainConfig, upgrade_saved_config(state["config"]), "checkpoint config")
    if get_recipe(config.recipe).task != "generation":
        raise GankitError(f"{path} holds a {config.recipe} model, which translates images rather than "
                          "generating them from noise: use `gankit translate apply`")
    data = state.get("data", {})
    num_classes = int(data.get("num_classes", 0)) if config.conditional else 0
    class_names = (data.get("class_names") or None) if num_classes else None
    spec = DataSpec(size=config.data.size, channels=data.get("channels") or config.data.channels or 3,
                    num_classes=num_classes)
    with warnings.catch_warnings():  # advice about training this design is no use once it is trained
        warnings.simplefilter("ignore", DesignWarning)
        G, _ = get_recipe(config.recipe).make(config.model, spec)
    try:
        G.load_state_dict(state["G_ema"])
    except (KeyError, RuntimeError) as err:
        raise GankitError(
            f"checkpoint {path} does not match its own config ({str(err)[:160]}): it was damaged "
            "or edited; use another checkpoint"
        ) from None
    device_ = select_device(device)
    return LoadedGenerator(G.to(device_).eval(), config, int(state["step"]), device_, class_names)
