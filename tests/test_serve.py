"""The web page (`gankit serve`): its handlers without a browser, and the page in headless Chromium."""

import io
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit import train
from gankit.errors import GankitError

from helpers import one_line_error, run_cli, tiny_options

gradio = pytest.importorskip("gradio", reason="the web page needs Gradio (pip install gankit[demo])")

from gankit.serve import Handlers, build_page, load_model  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    names = {"stylegan": {}, "cgan": {}, "pix2pix": {"data": {"source": "digits-edges", "size": 16}}}
    out = {}
    for recipe, extra in names.items():
        options = tiny_options(root, recipe, sample_every=1, **extra)
        out[recipe] = train(options, steps=2, name=recipe).run_dir
    return out


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.int16)


def test_sample_handlers_follow_the_seed_the_class_and_truncation(runs):
    kind, model, _ = load_model(runs["stylegan"])
    page = Handlers(model, kind)
    assert kind == "generator" and page.style
    a, again, other = page.samples(3, 4), page.samples(3, 4), page.samples(4, 4)
    assert (pixels(a) == pixels(again)).all() and not (pixels(a) == pixels(other)).all()
    # psi 0: every seed draws the average image
    assert (pixels(page.samples(3, 1, truncation=0.0)) == pixels(page.samples(4, 1, truncation=0.0))).all()
    gif = Image.open(page.interpolation(0, 1, frames=5))
    assert gif.n_frames == 8  # A -> B and back, a loop without repeated frames
    kind, model, _ = load_model(runs["cgan"])
    conditional = Handlers(model, kind)
    sevens, threes = conditional.samples(0, 2, label="7"), conditional.samples(0, 2, label="3")
    assert not (pixels(sevens) == pixels(threes)).all()
    with pytest.raises(GankitError, match="no class"):
        conditional.samples(0, 2, label="name:eleven")


def test_translate_handler_prepares_uploads_and_refuses_bad_ones(runs):
    kind, model, _ = load_model(runs["pix2pix"])
    page = Handlers(model, kind)
    out = page.translate(Image.new("RGB", (40, 30), (200, 10, 10)))
    assert out.size == (16, 16)
    with pytest.raises(GankitError, match="upload an image first"):
        page.translate(None)
    with pytest.raises(GankitError, match="megapixels"):
        page.translate(Image.new("L", (5000, 4000)))


def test_a_bad_source_is_one_line_before_any_server_starts(tmp_path, capsys):
    code, _, err = run_cli(["serve", tmp_path / "nothing"], capsys)
    assert "does not exist" in one_line_error(code, err) or "no checkpoint" in one_line_error(code, err)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser():
    if CHROMIUM is None:
        pytest.skip("no Chromium here (Debian: apt-get install chromium); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test drives Chromium with playwright")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


def served(source):
    page = build_page(source)
    port = free_port()
    page.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return page, f"http://127.0.0.1:{port}/"


def shown_image(tab, selector: str, previous: str | None = None, timeout: float = 60) -> str:
    """The src of the image in `selector` once there is one (different from `previous`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = tab.locator(f"{selector} img")
        if found.count():
            src = found.first.get_attribute("src")
            if src and src != previous:
                return src
        time.sleep(0.2)
    raise AssertionError(f"no new image in {selector} after {timeout} s")


def test_the_page_in_a_browser_samples_moves_a_slider_and_translates_an_upload(runs, browser, tmp_path):
    page, url = served(runs["stylegan"])
    try:
        tab = browser.new_page()
        tab.goto(url)
        tab.locator("#sample").click()
        first = shown_image(tab, "#samples")
        seed = tab.locator("#seed input")
        seed.fill("5")
        seed.press("Enter")
        tab.locator("#sample").click()
        second = shown_image(tab, "#samples", previous=first)
        assert second != first
        tab.screenshot(path=str(tmp_path / "page.png"))
        assert (tmp_path / "page.png").stat().st_size > 0
    finally:
        page.close()
    page, url = served(runs["pix2pix"])
    try:
        tab = browser.new_page()
        tab.goto(url)
        picture = tmp_path / "upload.png"
        Image.new("RGB", (32, 32), (255, 255, 255)).save(picture)
        tab.locator("#upload input[type=file]").set_input_files(str(picture))
        time.sleep(1.0)
        tab.locator("#translate").click()
        assert shown_image(tab, "#translated")
    finally:
        page.close()
