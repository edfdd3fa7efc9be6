"""The Python API: `train(...)` and `load_generator(...)`.

    from gankit import train, load_generator
    result = train(data={"source": "digits", "size": 32}, steps=200)
    G = load_generator(result.run_dir)
    images = G.sample(16)          # (16, C, H, W) floats in [0, 1]
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from .config import TrainConfig, from_dict, merge, to_dict, upgrade_saved_config
from .errors import DesignWarning, GankitError
from .resolve import complete_bounds, resolve_config, validate
from .run import build_run
from .tasks import task_of
from .training import checkpoint as ckpt
from .training import distributed
from .training.device import select_device
from .training.trainer import TrainResult
from .variants import DataSpec, get_recipe
from .visualize import to_unit_range

# Options that may change when a run is resumed: they bound or observe the run but do not change
# what one step computes. Anything else would silently make a different run.
RESUMABLE = {"steps", "epochs", "time_budget", "sample_every", "checkpoint_every",
             "keep_checkpoints", "log_every", "progress", "device", "guard_patience", "max_rollbacks",
             "runs_dir"}


def _absolute_paths(options: dict) -> dict:
    """`options` with its local paths made absolute. The run records its config (config.yaml and
    every checkpoint), and a relative folder would break `--resume` or `eval` started from another
    working directory. Built-in dataset names stay names."""
    from .data import DATASETS

    def absolute(value):
        if isinstance(value, str) and value and Path(value).expanduser().exists():
            return str(Path(value).expanduser().resolve())
        return value

    options = dict(options)
    if isinstance(options.get("data"), dict):
        data = options["data"] = dict(options["data"])
        for key in ("source", "source_b", "labels_csv", "bbox", "root"):
            if key in data and not (key.startswith("source") and data[key] in DATASETS):
                data[key] = absolute(data[key])
    if isinstance(options.get("eval"), dict) and "inception_weights" in options["eval"]:
        options["eval"] = {**options["eval"], "inception_weights": absolute(options["eval"]["inception_weights"])}
    return options


def train(config: TrainConfig | dict | None = None, *, resume: str | Path | None = None,
          **overrides) -> TrainResult:
    """Train a GAN. `config` (a TrainConfig or a dict of options) and keyword `overrides`
    (nested dicts for sections, e.g. `data={"source": "digits"}`) layer over the defaults.
    `resume` (a run folder or checkpoint) continues a run; only RESUMABLE options may change."""
    if isinstance(config, TrainConfig):
        config = to_dict(config)
    options = merge(config or {}, overrides)
    distributed.setup()  # under torchrun: join the process group (a no-op otherwise)
    if resume is not None:
        return _resume(resume, options)
    config = complete_bounds(resolve_config(_absolute_paths(options)))
    return build_run(config).train()


def _resume(path: str | Path, options: dict) -> TrainResult:
    path = Path(path)
    checkpoint_file = ckpt.resolve_checkpoint(path)
    in_run = checkpoint_file.parent.name == ckpt.CHECKPOINT_DIR
    run_dir = checkpoint_file.parent.parent if in_run else None
    if in_run and checkpoint_file != ckpt.list_checkpoints(run_dir)[-1]:
        # Continuing an older checkpoint in place would overwrite, then prune, the newer ones.
        raise GankitError(
            f"{checkpoint_file.name} is not the newest checkpoint of {run_dir}: resume the run "
            "folder, or copy that file elsewhere and resume the copy to branch a new run"
        )
    state = ckpt.load_checkpoint(checkpoint_file)
    saved = upgrade_saved_config(state["config"])
    options = _absolute_paths(options)  # paths given now are relative to this directory
    for key, value in options.items():
        changed = merge(saved[key], value) if isinstance(value, dict) and key in saved else value
        if key not in RESUMABLE and saved.get(key) != changed:
            raise GankitError(
                f"option {key} cannot change when resuming (the run used {saved.get(key)!r}): "
                "drop it, or start a new run without --resume"
            )
    config = from_dict(TrainConfig, merge(saved, options), "config")
    validate(config)
    if run_dir is None:  # a checkpoint file from elsewhere: continue it in a new run folder
        config.name = None
    return build_run(config, state=state, run_dir=run_dir).train()


class LoadedGenerator:
    """The EMA generator of a checkpoint, rebuilt from the config stored inside it."""

    def __init__(self, module: torch.nn.Module, config: TrainConfig, step: int, device: torch.device,
                 class_names: list[str] | None = None):
        self.module, self.config, self.step, self.device = module, config, step, device
        self.num_classes = getattr(module, "num_classes", 0)
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

    def style_mix(self, rows: int = 4, cols: int = 4, seed: int | None = 0, crossover: int | None = None,
                  truncation: float = 1.0, label: int | str | None = None) -> torch.Tensor:
        """The ((rows + 1) * (cols + 1), C, H, W) images of a style-mixing grid, row-major (save it
        with nrow = cols + 1). See `gankit.latent.style_mix_grid`."""
        from .latent import style_mix_grid

        return style_mix_grid(self.module, rows, cols, seed=seed, crossover=crossover, psi=truncation,
                              label=self._label(label))


def load_generator(path: str | Path, device: str = "cpu") -> LoadedGenerator:
    """Load the EMA generator from a checkpoint file or a run folder (its latest checkpoint)."""
    state = ckpt.load_checkpoint(path)
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


class Translator:
    """The generators of an unpaired translation checkpoint (cyclegan), rebuilt from its config."""

    def __init__(self, module: torch.nn.Module, config: TrainConfig, step: int, device: torch.device):
        self.module, self.config, self.step, self.device = module, config, step, device
        self.size, self.channels = module.size, module.channels

    @torch.no_grad()
    def translate(self, images: torch.Tensor, direction: str, batch_size: int = 16) -> torch.Tensor:
        """(N, C, H, W) floats in [0, 1] of one domain -> the other's, the same shape, in [0, 1];
        `direction` is a2b or b2a. H and W must be multiples of 4."""
        from .models.cyclegan import DIRECTIONS
        from .visualize import from_unit_range

        if direction not in DIRECTIONS:
            raise GankitError(f"--direction {direction!r} is not a direction: use a2b (domain A to B) "
                              "or b2a (B to A)")
        out = [to_unit_range(self.module(from_unit_range(chunk, self.module.output_range).to(self.device),
                                         direction), self.module.output_range).cpu()
               for chunk in images.split(batch_size)]
        return torch.cat(out) if out else torch.empty(0)


def load_translator(path: str | Path, device: str = "cpu") -> Translator:
    """Load the (EMA) generators of a translation checkpoint file or run folder."""
    state = ckpt.load_checkpoint(path)
    config = from_dict(TrainConfig, upgrade_saved_config(state["config"]), "checkpoint config")
    recipe = get_recipe(config.recipe)
    if recipe.task not in ("unpaired", "paired"):
        raise GankitError(f"{path} is not a CycleGAN checkpoint (it holds a {config.recipe} model, "
                          "which generates images from noise): give a run of `gankit translate "
                          "train`, or use `gankit sample` for this one")
    channels = state.get("data", {}).get("channels") or config.data.channels or 3
    G, _ = recipe.make(config.model, DataSpec(size=config.data.size, channels=channels))
    try:
        G.load_state_dict(state["G_ema"])
    except (KeyError, RuntimeError) as err:
        raise GankitError(f"checkpoint {path} does not match its own config ({str(err)[:160]}): it "
                          "was damaged or edited; use another checkpoint") from None
    device_ = select_device(device)
    return Translator(G.to(device_).eval(), config, int(state["step"]), device_)


__all__ = ["train", "load_generator", "load_translator", "LoadedGenerator", "Translator", "TrainResult"]
