"""A local web page to play with a trained model: `gankit serve RUN|PRETRAINED` (Gradio).

    page = build_page("runs/digits")      # a gr.Blocks; page.launch() serves it
    serve("runs/digits", host="127.0.0.1", port=7860)

What the page offers follows what the model is (its contracts, not its recipe's name):

- any generator: samples for a seed and a count; a class for conditional ones; a truncation
  slider for StyleGAN-style ones; an interpolation between two seeds (an animated GIF);
- StyleGAN-style generators also: a style-mixing grid;
- translators (CycleGAN, pix2pix runs): an uploaded image translated (each direction it has).

Every picture can be downloaded as a PNG from its corner. A facts panel shows the recipe, the
data, the step and the best KID measured during training, with the run's training-progress GIF
when it has sample grids. The handlers are plain functions of the page's inputs (`Handlers`), so
they are tested without a browser; a browser test drives the page itself. A bad upload is a
message on the page, never a server traceback. Gradio is an optional extra: `pip install
"gankit[demo]"`.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from .errors import GankitError

MAX_UPLOAD_PIXELS = 4096 * 4096  # a bigger upload is refused on the page, not decoded
MAX_SAMPLES = 64


def _gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a local page
    try:
        import gradio as gr
    except ImportError:
        raise GankitError('the web page needs Gradio: pip install "gankit[demo]"') from None
    return gr


def load_model(source: str | Path):
    """(kind, model, best KID or None): "translator" and a Translator for CycleGAN / pix2pix runs,
    else "generator" and a LoadedGenerator. Any other source is one GankitError line."""
    from .config import TrainConfig, from_dict, upgrade_saved_config
    from .generator import load_generator
    from .pretrained import source_file
    from .training import checkpoint as ckpt
    from .translator import load_translator
    from .variants import get_recipe

    path = source_file(source)
    state = ckpt.load_checkpoint(path)
    config = from_dict(TrainConfig, upgrade_saved_config(state["config"]), "checkpoint config")
    if get_recipe(config.recipe).task in ("unpaired", "paired"):
        return "translator", load_translator(path), state.get("best_kid")
    return "generator", load_generator(path), state.get("best_kid")


def to_pil(image: torch.Tensor) -> Image.Image:
    """(C, H, W) in [0, 1] -> a PIL image (grey or RGB)."""
    from .visualize import grid_image

    return grid_image(image.unsqueeze(0), nrow=1, padding=0)


@dataclass
class Handlers:
    """What each control of the page does, as functions of its inputs -> PIL images."""

    model: object  # LoadedGenerator or Translator
    kind: str  # "generator" | "translator"

    @property
    def style(self) -> bool:
        from .latent import is_style_generator

        return self.kind == "generator" and is_style_generator(self.model.module)

    def _label(self, label):
        return None if label in (None, "") or not self.model.num_classes else self.model.label_index(str(label))

    def samples(self, seed: float, n: float, truncation: float = 1.0, label=None) -> Image.Image:
        from .visualize import grid_image

        n = int(max(1, min(MAX_SAMPLES, n)))
        images = self.model.sample(n, seed=int(seed), label=self._label(label),
                                   truncation=truncation if self.style else 1.0)
        return grid_image(images, nrow=min(8, n))

    def interpolation(self, seed_a: float, seed_b: float, frames: float = 16, truncation: float = 1.0,
                      label=None) -> str:
        """A GIF (path) going from seed A's sample to seed B's and back."""
        from .latent import draw_latents, interpolation_frames
        from .visualize import save_animation

        frames = int(max(2, min(64, frames)))
        za, ya = draw_latents(self.model.latent_dim, 1, int(seed_a), self.model.num_classes, self._label(label))
        zb, _ = draw_latents(self.model.latent_dim, 1, int(seed_b), self.model.num_classes, self._label(label))
        images = interpolation_frames(self.model.module, za, zb, frames, labels=ya,
                                      psi=truncation if self.style else 1.0)
        out = Path(tempfile.mkdtemp(prefix="gankit-serve-")) / "interpolation.gif"
        save_animation(torch.cat([images, images.flip(0)[1:-1]]), out, fps=12)  # a loop: no frame twice
        return str(out)

    def mixing(self, seed: float, rows: float = 3, cols: float = 3, truncation: float = 1.0, label=None) -> Image.Image:
        from .visualize import grid_image

        rows, cols = int(max(1, min(8, rows))), int(max(1, min(8, cols)))
        images = self.model.style_mix(rows, cols, seed=int(seed), truncation=truncation, label=self._label(label))
        return grid_image(images, nrow=cols + 1)

    def translate(self, upload: Image.Image | None, direction: str = "a2b") -> Image.Image:
        from .data.image import background_rgb, fit, to_grey_or_rgb

        if upload is None:
            raise GankitError("upload an image first")
        if upload.width * upload.height > MAX_UPLOAD_PIXELS:
            raise GankitError(f"the image is {upload.width} x {upload.height}: upload one of at most "
                              f"{MAX_UPLOAD_PIXELS // 1_000_000} megapixels")
        data = self.model.config.data
        img = fit(to_grey_or_rgb(upload, background_rgb(data.background)), self.model.size, "center")
        img = img.convert("L" if self.model.channels == 1 else "RGB")
        pixels = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
        x = pixels.view(img.height, img.width, -1).permute(2, 0, 1).float().div(255).unsqueeze(0)
        return to_pil(self.model.translate(x, direction)[0])


def facts(kind: str, model, best_kid: float | None = None) -> str:
    config = model.config
    lines = [f"**{config.recipe}** on `{config.data.source}`, {config.data.size} px, step {model.step}"]
    if kind == "generator" and model.num_classes:
        lines.append(f"classes: {', '.join(model.class_names[:20])}")
    if best_kid is not None and best_kid != float("inf"):
        lines.append(f"best KID during training: {best_kid:.4f}")
    return "  \n".join(lines)


def progress_animation_of(source: str | Path) -> str | None:
    """The run's training-progress GIF (made from its samples/ grids), or None."""
    from .visualize import progress_gif

    run = Path(source)
    if not (run / "samples").is_dir() or not any((run / "samples").glob("step-*.png")):
        return None
    out = Path(tempfile.mkdtemp(prefix="gankit-serve-")) / "progress.gif"
    try:
        progress_gif(run, out, duration=300)
    except GankitError:
        return None
    return str(out)


def build_page(source: str | Path):
    """The page for `source` (a run folder, a checkpoint or a pretrained name), as a gr.Blocks."""
    gr = _gradio()
    kind, model, best_kid = load_model(source)
    handlers = Handlers(model, kind)

    def on_page(fn):
        """A handler whose GankitError is a message on the page (gr.Error), never a traceback."""
        def wrapped(*args):
            try:
                return fn(*args)
            except GankitError as err:
                raise gr.Error(str(err)) from None
        return wrapped

    with gr.Blocks(title=f"gankit: {Path(str(source)).name}") as page:
        gr.Markdown(f"# gankit · {Path(str(source)).name}\n" + facts(kind, model, best_kid))
        if kind == "generator":
            classes = [""] + (list(model.class_names) if model.num_classes else [])  # "": random classes
            with gr.Tab("Samples"):
                with gr.Row():
                    seed = gr.Number(0, label="seed", precision=0, elem_id="seed")
                    count = gr.Slider(1, MAX_SAMPLES, value=16, step=1, label="how many", elem_id="count")
                    psi = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="truncation ψ", visible=handlers.style,
                                    elem_id="truncation")
                    label = gr.Dropdown(classes, value="", label="class", visible=bool(model.num_classes), elem_id="label")
                button = gr.Button("Sample", variant="primary", elem_id="sample")
                picture = gr.Image(type="pil", format="png", label="samples", elem_id="samples")
                button.click(on_page(handlers.samples), [seed, count, psi, label], picture)
            with gr.Tab("Interpolation"):
                with gr.Row():
                    seed_a = gr.Number(0, label="seed A", precision=0)
                    seed_b = gr.Number(1, label="seed B", precision=0)
                    frames = gr.Slider(2, 64, value=16, step=1, label="frames")
                walk = gr.Button("Interpolate", elem_id="interpolate")
                animation = gr.Image(type="filepath", label="A → B → A", elem_id="walk")
                walk.click(on_page(handlers.interpolation), [seed_a, seed_b, frames, psi, label], animation)
            if handlers.style:
                with gr.Tab("Style mixing"):
                    with gr.Row():
                        mix_seed = gr.Number(0, label="seed", precision=0)
                        rows = gr.Slider(1, 8, value=3, step=1, label="rows (their coarse styles)")
                        cols = gr.Slider(1, 8, value=3, step=1, label="columns (their fine styles)")
                    mix = gr.Button("Mix", elem_id="mix")
                    grid = gr.Image(type="pil", format="png", label="style mixing")
                    mix.click(on_page(handlers.mixing), [mix_seed, rows, cols, psi, label], grid)
        else:
            with gr.Tab("Translate"):
                with gr.Row():
                    upload = gr.Image(type="pil", label="your image", elem_id="upload")
                    result = gr.Image(type="pil", format="png", label="translated", elem_id="translated")
                direction = gr.Radio(list(model.module.directions), value=model.module.directions[0], label="direction")
                go = gr.Button("Translate", variant="primary", elem_id="translate")
                go.click(on_page(handlers.translate), [upload, direction], result)
        progress = progress_animation_of(source)
        if progress is not None:
            with gr.Tab("Training"):
                gr.Image(progress, label="the fixed-latent samples during training", type="filepath")
    return page


def serve(source: str | Path, host: str = "127.0.0.1", port: int = 7860, share: bool = False):
    """Build the page (a bad source fails here, in one line, before any server starts) and serve it."""
    page = build_page(source)
    page.launch(server_name=host, server_port=port, share=share, quiet=True)
