"""Export a trained generator or translator to ONNX or TorchScript, to run without gankit.

    export("runs/cats", format="onnx", out="cats.onnx")            # gankit export runs/cats --format onnx ...
    export("runs/h2z", format="torchscript", out="h2z.pt", direction="b2a")

What the file computes (B, the batch size, is free in both formats):
  generators   z (B, latent_dim) float32 [, labels (B,) int64 if conditional]
               [, truncation () float32 for StyleGAN-style generators: psi, 1 = off]
               -> image (B, C, S, S) float32 in [0, 1]
  translators  image (B, C, S, S) float32 in [0, 1] -> translated (B, C, S, S) float32 in [0, 1],
               one direction per file (a2b, or b2a for CycleGAN)
in eval mode, as gankit samples: EMA weights, StyleGAN's fixed noise images, pix2pix's dropout off.
The model's own output range is mapped to [0, 1] and clipped inside the file, as to_unit_range
does (StyleGAN's and ProGAN's outputs are linear and overshoot a little).

Both formats carry the same JSON metadata (inputs, outputs, recipe, size, classes, step, the
checkpoint's sha256):
  ONNX         metadata_props["gankit"]:
               onnxruntime.InferenceSession(f).get_modelmeta().custom_metadata_map["gankit"]
  TorchScript  an extra file "gankit.json":
               extra = {"gankit.json": ""}; torch.jit.load(f, _extra_files=extra); extra["gankit.json"]
`read_metadata(path)` does either.

How it is captured, and why:
  ONNX         torch.onnx.export(dynamo=True): torch.export's graph, translated by onnxscript,
               opset 18 (torchlib's own opset, so no version conversion runs). It captures every
               recipe gankit has (buffers made constants, below). The legacy exporter (dynamo=False)
               is deprecated since torch 2.9 and warns that it will be removed; it traces as
               torch.jit.trace does and so fails where tracing fails: a ProGAN saved in mid-growth,
               whose upsampling factor, computed from a traced shape, reaches F.interpolate as a tensor.
  TorchScript  torch.jit.trace of the same wrapper (deprecated in torch 2.14 but working; scripting
               would need every model written for TorchScript), checked at a second batch size:
               tracing records one path through the Python code, and a shape kept as a constant
               would show there. A mid-growth ProGAN is refused with advice to use ONNX.
  Buffers      become constants of the copy that is captured: an exported model has no state
               to update, and code that reads a buffer as a Python number (ProGAN's position in
               its growth schedule, `int(self.level)`) can only be captured with the value known;
               torch.export would otherwise see a symbolic value and fail.
"""

from __future__ import annotations

import copy
import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .errors import GankitError

FORMATS = {"onnx": (".onnx",), "torchscript": (".pt", ".ts")}  # format -> the suffixes --out may have
OPSET = 18  # torchlib (onnxscript's torch ops) is written at opset 18: no conversion pass
ONNX_KEY = "gankit"  # metadata_props key of the JSON
TORCHSCRIPT_FILE = "gankit.json"  # _extra_files name of the JSON
INSTALL_HINT = 'pip install "gankit[export]"'
EXAMPLE_BATCH = 2  # torch.export takes a batch of 0 or 1 as a fixed size; 2 is the smallest free one
CHECK_BATCH = 3  # the traced TorchScript is compared with the model at another batch size
CHECK_ATOL = 1e-4


@dataclass
class Exported:
    path: Path  # the file written
    format: str  # onnx | torchscript
    metadata: dict  # the JSON stored in the file


# ------------------------------------------------------------------------------------------
# What the file computes


class GeneratorGraph(nn.Module):
    """z [, labels] [, truncation] -> image (B, C, S, S) in [0, 1]: the exported generator.

    Truncation is an input, a 0-dim float tensor, rather than a value fixed at export: the maths
    w' = lerp(w_avg, w, psi) is plain tensor arithmetic with no Python branch on psi, so torch.export
    and torch.jit.trace both keep it as a graph input and one file serves every psi (a fixed psi
    would need one file per value). psi 1 gives exactly G(z) (lerp's end point); the file does not
    check psi's range (gankit accepts -1 to 2).
    """

    def __init__(self, G: nn.Module, conditional: bool, style: bool):
        super().__init__()
        self.G, self.conditional, self.style = G, conditional, style
        self.low, self.high = (float(v) for v in G.output_range)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        z = inputs[0]  # (B, latent_dim)
        labels = inputs[1] if self.conditional else None  # (B,) int64
        if self.style:  # mapping -> truncation -> synthesis, the path gankit.latent.raw_images takes
            psi = inputs[-1]  # () float
            w = self.G.mapping(z, labels)  # (B, w_dim)
            w = torch.lerp(self.G.w_avg.to(w.dtype), w, psi.to(w.dtype))
            x = self.G.synthesis(w.unsqueeze(1).expand(-1, self.G.num_ws, -1))  # (B, num_ws, w_dim) in
        else:
            x = self.G(z, labels)
        return ((x.float() - self.low) / (self.high - self.low)).clamp(0.0, 1.0)  # to_unit_range


class TranslatorGraph(nn.Module):
    """image (B, C, S, S) in [0, 1] -> the other domain's image in [0, 1], one direction."""

    def __init__(self, G: nn.Module, direction: str):
        super().__init__()
        self.G, self.direction = G, direction
        self.low, self.high = (float(v) for v in G.output_range)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:  # one input; varargs as GeneratorGraph
        x = inputs[0] * (self.high - self.low) + self.low  # from_unit_range; (B, C, S, S)
        y = self.G(x, self.direction)
        return ((y.float() - self.low) / (self.high - self.low)).clamp(0.0, 1.0)


def _frozen(module: nn.Module) -> nn.Module:
    """A copy of `module` whose buffers are plain tensor attributes: constants of the captured
    graph (see the module docstring)."""
    module = copy.deepcopy(module).cpu().eval()
    for sub in module.modules():
        for name in list(sub._buffers):
            value = sub._buffers.pop(name)
            object.__setattr__(sub, name, value)  # None stays None (e.g. an untracked norm's stats)
    for param in module.parameters():
        param.requires_grad_(False)
    return module


@dataclass
class _Plan:
    graph: nn.Module
    inputs: tuple[torch.Tensor, ...]  # examples, batch EXAMPLE_BATCH
    checks: tuple[torch.Tensor, ...]  # other examples, batch CHECK_BATCH
    names: list[str]
    specs: list[dict]  # per input: name, shape ("batch" free), dtype, what it is
    output: str  # the output's name
    kind: str  # generator | translator
    recipe: str
    step: int
    metadata: dict  # what this kind adds: latent_dim and classes, or the direction


def _generator_plan(path: Path) -> _Plan:
    from .generator import load_generator
    from .latent import PSI_RANGE

    loaded = load_generator(path)
    G, classes, style = loaded.module, loaded.num_classes, loaded.is_style
    graph = GeneratorGraph(_frozen(G), bool(classes), style)

    def inputs(batch: int, seed: int) -> tuple[torch.Tensor, ...]:
        g = torch.Generator().manual_seed(seed)
        out = [torch.randn(batch, loaded.latent_dim, generator=g)]
        if classes:
            out.append(torch.arange(batch, dtype=torch.long) % classes)
        if style:
            out.append(torch.tensor(0.7))  # not 1, so truncation's arithmetic is exercised
        return tuple(out)

    specs = [{"name": "z", "shape": ["batch", loaded.latent_dim], "dtype": "float32",
              "about": "latents drawn from N(0, 1)"}]
    if classes:
        specs.append({"name": "labels", "shape": ["batch"], "dtype": "int64", "range": [0, classes - 1],
                      "about": "class indices (class_names gives their names)"})
    if style:
        specs.append({"name": "truncation", "shape": [], "dtype": "float32", "default": 1.0,
                      "range": list(PSI_RANGE),
                      "about": "psi: w = w_avg + psi (w - w_avg); 1: off, 0.5-0.8: less variety, cleaner"})
    metadata = {"latent_dim": loaded.latent_dim, "num_classes": classes,
                "class_names": loaded.class_names if classes else [], "style": style}
    return _Plan(graph, inputs(EXAMPLE_BATCH, 0), inputs(CHECK_BATCH, 1), [s["name"] for s in specs],
                 specs, "image", "generator", loaded.config.recipe, loaded.step, metadata)


def _translator_plan(path: Path, direction: str | None) -> _Plan:
    from .translator import load_translator

    loaded = load_translator(path)
    direction = direction or loaded.module.directions[0]
    loaded.check_direction(direction)
    graph = TranslatorGraph(_frozen(loaded.module), direction)
    shape = (loaded.channels, loaded.size, loaded.size)
    g = torch.Generator().manual_seed(0)
    specs = [{"name": "image", "shape": ["batch", *shape], "dtype": "float32", "range": [0.0, 1.0],
              "about": f"images of domain {direction[0].upper()}"}]
    metadata = {"direction": direction, "directions": list(loaded.module.directions)}
    return _Plan(graph, (torch.rand(EXAMPLE_BATCH, *shape, generator=g),),
                 (torch.rand(CHECK_BATCH, *shape, generator=g),), ["image"], specs, "translated",
                 "translator", loaded.config.recipe, loaded.step, metadata)


# ------------------------------------------------------------------------------------------
# The formats


def _check_onnx_installed() -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise GankitError(f"--format onnx needs the onnx and onnxscript packages ({err.name} is not "
                          f"installed): {INSTALL_HINT}") from None


def _first_line(err: BaseException) -> str:
    """The first line of the innermost cause: the exporters wrap the error that says what failed."""
    while err.__cause__ is not None:
        err = err.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()  # the ONNX exporter colours its messages
    return (text.splitlines()[0] if text else type(err).__name__)[:200]


def _write_onnx(plan: _Plan, tmp: Path, text: str) -> None:
    batch = torch.export.Dim("batch")
    # forward(*inputs) takes its inputs as one argument, `inputs`; dim 0 is free in all but psi
    dynamic = {"inputs": tuple({0: batch} if x.dim() else None for x in plan.inputs)}
    try:
        with warnings.catch_warnings():  # the exporter's notes are for gankit's authors, not users
            warnings.simplefilter("ignore")
            program = torch.onnx.export(plan.graph, plan.inputs, None, dynamo=True, input_names=plan.names,
                                        output_names=[plan.output], dynamic_shapes=dynamic,
                                        opset_version=OPSET, external_data=False, verbose=False)
    except torch.onnx.OnnxExporterError as err:
        raise GankitError(f"cannot export this {plan.recipe} model to ONNX ({_first_line(err)}): "
                          "try --format torchscript") from None
    program.model.metadata_props[ONNX_KEY] = text
    program.save(tmp, external_data=False)


def _write_torchscript(plan: _Plan, tmp: Path, text: str) -> None:
    try:
        with warnings.catch_warnings():  # jit.trace is deprecated (FutureWarning) and notes every
            warnings.simplefilter("ignore")  # shape it reads; the check below is what counts
            traced = torch.jit.trace(plan.graph, plan.inputs, check_trace=False)
    except Exception as err:  # tracing runs the model's own Python: any error can come back
        raise GankitError(f"cannot trace this {plan.recipe} model to TorchScript "
                          f"({_first_line(err)}): try --format onnx") from None
    with torch.no_grad():
        difference = (traced(*plan.checks) - plan.graph(*plan.checks)).abs().max().item()
    if not difference <= CHECK_ATOL:
        raise GankitError(f"the traced TorchScript of this {plan.recipe} model differs from it at "
                          f"batch size {CHECK_BATCH} (by {difference:.3g}): try --format onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.save is deprecated, still works
        torch.jit.save(traced, str(tmp), _extra_files={TORCHSCRIPT_FILE: text})


WRITERS = {"onnx": _write_onnx, "torchscript": _write_torchscript}


def read_metadata(path: str | Path) -> dict:
    """The gankit metadata of an exported .onnx, .pt or .ts file."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        import onnx

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        if ONNX_KEY not in props:
            raise GankitError(f"{path} holds no gankit metadata: give a file written by `gankit export`")
        return json.loads(props[ONNX_KEY])
    extra = {TORCHSCRIPT_FILE: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated, still works
        torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    if not extra[TORCHSCRIPT_FILE]:
        raise GankitError(f"{path} holds no gankit metadata: give a file written by `gankit export`")
    return json.loads(extra[TORCHSCRIPT_FILE])


# ------------------------------------------------------------------------------------------
# The API


def check_request(format: str, out: str | Path) -> Path:
    """`out` as a Path if `format` and `out` make sense; else a GankitError (nothing is written)."""
    if format not in FORMATS:
        raise GankitError(f"--format {format!r}: use onnx or torchscript")
    out = Path(out).expanduser()
    suffixes = FORMATS[format]
    if out.suffix.lower() not in suffixes:
        raise GankitError(f"--out {out}: a {format} file name ends in {' or '.join(suffixes)}")
    if not out.parent.is_dir():
        raise GankitError(f"--out {out}: the folder {out.parent} does not exist; create it first")
    if out.is_dir():
        raise GankitError(f"--out {out} is a folder: give a file name")
    if format == "onnx":
        _check_onnx_installed()
    return out


def export(run: str | Path, *, format: str = "onnx", out: str | Path, direction: str | None = None) -> Exported:
    """Write the EMA generator of `run` (a run folder, checkpoint file or pretrained name) as an
    ONNX (`format="onnx"`, out *.onnx) or TorchScript (`"torchscript"`, out *.pt / *.ts) file.
    `direction` (a2b | b2a) picks a translator's direction (default a2b); generators take none.
    The file is written whole or not at all."""
    from . import __version__
    from .config import upgrade_saved_config
    from .pretrained import sha256, source_file
    from .training import checkpoint as ckpt
    from .variants import get_recipe

    out = check_request(format, out)
    source = source_file(run)
    if out.resolve() == source.resolve():
        raise GankitError(f"--out {out} is the checkpoint being exported: give another file name")
    recipe = upgrade_saved_config(ckpt.load_checkpoint(source)["config"])["recipe"]
    if get_recipe(recipe).task == "generation":
        if direction is not None:
            raise GankitError(f"--direction is for translators (CycleGAN, pix2pix); {run} holds a {recipe} "
                              "generator: drop --direction")
        plan = _generator_plan(source)
    else:
        plan = _translator_plan(source, direction)

    with torch.no_grad():
        image = plan.graph(*plan.inputs)  # (B, C, S, S): the output's shape, and a first check
    assert image.dim() == 4 and len(image) == EXAMPLE_BATCH, f"the model gave {tuple(image.shape)}"
    channels, size = image.shape[1], image.shape[2]
    metadata = {
        "kind": plan.kind, "recipe": plan.recipe, "step": plan.step, "size": size, "channels": channels,
        **plan.metadata,
        "format": format, **({"opset": OPSET} if format == "onnx" else {}),
        "inputs": plan.specs,
        "outputs": [{"name": plan.output, "shape": ["batch", channels, size, image.shape[3]],
                     "dtype": "float32", "range": [0.0, 1.0]}],
        "checkpoint": source.name, "checkpoint_sha256": sha256(source), "gankit_version": __version__,
    }
    tmp = out.with_name(f".{out.stem}.tmp-{os.getpid()}{out.suffix}")
    try:
        WRITERS[format](plan, tmp, json.dumps(metadata, indent=1))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return Exported(out, format, metadata)


__all__ = ["export", "read_metadata", "Exported", "FORMATS", "OPSET"]
