"""gankit export: the ONNX and TorchScript files compute what gankit computes (LoadedGenerator.generate,
Translator.translate) at any batch size, carry their metadata, and bad requests write nothing."""

import json
import shutil
import sys
import warnings

import pytest
import torch

from gankit import load_generator, load_translator, train
from gankit.api import export
from gankit.export import read_metadata
from gankit.pretrained import sha256
from gankit.training import checkpoint as ckpt

from helpers import one_line_error, tiny_options

ATOL = 1e-4
BATCHES = (1, 5)  # neither is the batch the files were captured with (2)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """name -> a one-step run folder of each kind of model the export must handle."""
    root = tmp_path_factory.mktemp("runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    options = {
        "dcgan": tiny_options(root, "dcgan"),
        "cgan": tiny_options(root, "cgan"),
        "stylegan": tiny_options(root, "stylegan"),
        "stylegan-cond": tiny_options(root, "stylegan", conditional=True),
        "progan": tiny_options(root, "progan"),  # one step in: still at 4x4, upsampled to 16
        # 64 px: deep enough for the U-Net's dropout levels, which the export must switch off
        "pix2pix": tiny_options(root, "pix2pix", data={"source": "digits-edges", "size": 64}, batch=2),
        "cyclegan": tiny_options(root, "cyclegan", data={"source": "digits-a", "source_b": "digits-b", "size": 16},
                                 batch=2),
    }
    try:
        return {name: train(opts, steps=1, name=name).run_dir for name, opts in options.items()}
    finally:
        torch.set_num_threads(threads)


def run_onnx(path, feeds: dict) -> torch.Tensor:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {name: x.numpy() for name, x in feeds.items()})[0])


def run_torchscript(path, feeds: dict) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated
        module = torch.jit.load(str(path))
    with torch.no_grad():
        return module(*feeds.values())


RUNNERS = {"onnx": (".onnx", run_onnx), "torchscript": (".pt", run_torchscript)}


def need(format: str) -> None:
    if format == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def exported(runs, tmp_path_factory):
    """exported(name, format, direction=None) -> Exported: each file made once per module."""
    folder, made = tmp_path_factory.mktemp("exported"), {}

    def get(name: str, format: str, direction: str | None = None):
        key = (name, format, direction)
        if key not in made:
            out = folder / f"{name}-{direction}{RUNNERS[format][0]}"
            made[key] = export(runs[name], format=format, out=out, direction=direction)
        return made[key]
    return get


# ---------------------------------------------------------------- generators

@pytest.mark.parametrize("format", ["onnx", "torchscript"])
@pytest.mark.parametrize("name", ["dcgan", "cgan", "stylegan", "stylegan-cond"])
def test_generator_file_matches_gankit_at_any_batch_size(runs, exported, name, format):
    need(format)
    run_file = RUNNERS[format][1]
    done = exported(name, format)
    G = load_generator(runs[name])
    psis = (1.0, 0.6) if G.is_style else (1.0,)
    g = torch.Generator().manual_seed(1)
    for batch in BATCHES:
        z = torch.randn(batch, G.latent_dim, generator=g)
        labels = torch.randint(G.num_classes, (batch,), generator=g) if G.num_classes else None
        for psi in psis:
            feeds = {"z": z, **({"labels": labels} if labels is not None else {}),
                     **({"truncation": torch.tensor(psi)} if G.is_style else {})}
            assert list(feeds) == [spec["name"] for spec in done.metadata["inputs"]]
            got = run_file(done.path, feeds)
            expected = G.generate(z, labels=labels, truncation=psi)
            assert got.shape == expected.shape == (batch, *done.metadata["outputs"][0]["shape"][1:])
            assert (got - expected).abs().max().item() <= ATOL, (name, format, batch, psi)
    if G.is_style:  # truncation is an input that does something, not a constant
        z = torch.randn(3, G.latent_dim, generator=g)
        labels = torch.zeros(3, dtype=torch.long) if G.num_classes else None
        feeds = {"z": z, **({"labels": labels} if labels is not None else {})}
        full = run_file(done.path, {**feeds, "truncation": torch.tensor(1.0)})
        average = run_file(done.path, {**feeds, "truncation": torch.tensor(0.0)})
        assert (full - average).abs().max() > 1e-3
        assert (average - average[:1]).abs().max() <= ATOL  # psi 0: every z gives the average image


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_metadata_reads_back(runs, exported, format):
    need(format)
    done = exported("stylegan-cond", format)
    meta = read_metadata(done.path)
    assert meta == done.metadata
    source = ckpt.resolve_checkpoint(runs["stylegan-cond"])
    G = load_generator(source)
    assert meta["kind"] == "generator" and meta["recipe"] == "stylegan" and meta["format"] == format
    assert meta["step"] == G.step == 1 and meta["size"] == 16 and meta["channels"] == 1
    assert meta["latent_dim"] == G.latent_dim and meta["num_classes"] == G.num_classes == 10
    assert meta["class_names"] == G.class_names
    assert meta["checkpoint"] == source.name and meta["checkpoint_sha256"] == sha256(source)
    assert [(i["name"], i["shape"], i["dtype"]) for i in meta["inputs"]] == [
        ("z", ["batch", G.latent_dim], "float32"), ("labels", ["batch"], "int64"), ("truncation", [], "float32")]
    assert meta["inputs"][2]["default"] == 1.0
    assert meta["outputs"] == [{"name": "image", "shape": ["batch", 1, 16, 16], "dtype": "float32",
                                "range": [0.0, 1.0]}]
    if format == "onnx":  # readable without gankit: onnxruntime's own view of the file agrees
        import onnxruntime

        session = onnxruntime.InferenceSession(str(done.path), providers=["CPUExecutionProvider"])
        assert json.loads(session.get_modelmeta().custom_metadata_map["gankit"]) == meta
        assert [(i.name, i.shape) for i in session.get_inputs()] == [(i["name"], i["shape"]) for i in meta["inputs"]]
        assert [o.name for o in session.get_outputs()] == ["image"]
        assert meta["opset"] == 18
    else:
        extra = {"gankit.json": ""}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.load(str(done.path), _extra_files=extra)
        assert json.loads(extra["gankit.json"]) == meta


def test_progan_in_mid_growth_exports_to_onnx_and_torchscript_says_so(runs, exported, tmp_path, cli):
    need("onnx")
    G = load_generator(runs["progan"])
    assert G.module.current[0] < len(G.module.res_list) - 1  # not fully grown: the hard case
    done = exported("progan", "onnx")
    for batch in BATCHES:
        z = torch.randn(batch, G.latent_dim)
        assert (run_onnx(done.path, {"z": z}) - G.generate(z)).abs().max().item() <= ATOL
    # tracing turns its upsampling factor into a tensor, which F.interpolate refuses
    code, _, err = cli(["export", runs["progan"], "--format", "torchscript", "--out", tmp_path / "g.pt"])
    assert "try --format onnx" in one_line_error(code, err)
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- translators

@pytest.mark.parametrize("format", ["onnx", "torchscript"])
@pytest.mark.parametrize("name, direction", [("pix2pix", None), ("cyclegan", "b2a")])
def test_translator_file_matches_gankit_at_any_batch_size(runs, exported, name, direction, format):
    need(format)
    run_file = RUNNERS[format][1]
    T = load_translator(runs[name])
    if name == "pix2pix":  # the test would prove nothing about dropout without some
        assert any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in T.module.modules())
    done = exported(name, format, direction)
    assert done.metadata["kind"] == "translator" and done.metadata["direction"] == (direction or "a2b")
    assert [i["name"] for i in done.metadata["inputs"]] == ["image"]
    g = torch.Generator().manual_seed(2)
    for batch in BATCHES:
        x = torch.rand(batch, T.channels, T.size, T.size, generator=g)
        got = run_file(done.path, {"image": x})
        expected = T.translate(x, direction or "a2b")
        assert got.shape == x.shape and (got - expected).abs().max().item() <= ATOL, (name, format, batch)
        if direction == "b2a":  # the direction asked for, not the other one
            assert (got - T.translate(x, "a2b")).abs().max() > 1e-3


# ---------------------------------------------------------------- the command line

def test_cli_writes_the_file_and_says_what_it_takes(runs, tmp_path, cli):
    code, out, err = cli(["export", runs["cgan"], "--format", "torchscript", "--out", tmp_path / "g.ts"])
    assert code == 0, err
    assert (tmp_path / "g.ts").is_file() and "z (B, 8), labels (B) -> image (B, 1, 16, 16)" in out
    assert read_metadata(tmp_path / "g.ts")["recipe"] == "cgan"


def _damaged(runs, folder):
    path = folder / "damaged.pt"
    data = ckpt.resolve_checkpoint(runs["dcgan"]).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


BAD = {
    "unknown format": (lambda runs, d: [runs["dcgan"], "--format", "tflite", "--out", d / "g.onnx"], "onnx or torchscript"),
    "missing folder": (lambda runs, d: [runs["dcgan"], "--format", "onnx", "--out", d / "nowhere" / "g.onnx"],
                       "does not exist"),
    "onnx suffix": (lambda runs, d: [runs["dcgan"], "--format", "onnx", "--out", d / "g.pt"], ".onnx"),
    "torchscript suffix": (lambda runs, d: [runs["dcgan"], "--format", "torchscript", "--out", d / "g.onnx"],
                           ".pt or .ts"),
    "direction on a generator": (lambda runs, d: [runs["dcgan"], "--format", "torchscript", "--out", d / "g.pt",
                                                  "--direction", "a2b"], "drop --direction"),
    "direction pix2pix lacks": (lambda runs, d: [runs["pix2pix"], "--format", "torchscript", "--out", d / "g.pt",
                                                 "--direction", "b2a"], "a2b"),
    "damaged checkpoint": (lambda runs, d: [_damaged(runs, d), "--format", "torchscript", "--out", d / "g.pt"],
                           "damaged.pt"),
    "missing run": (lambda runs, d: [d / "no-run", "--format", "torchscript", "--out", d / "g.pt"], "no-run"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_requests_give_one_error_line_and_write_nothing(runs, tmp_path, cli, case):
    make_argv, says = BAD[case]
    argv = make_argv(runs, tmp_path)
    before = sorted(tmp_path.rglob("*"))
    code, out, err = cli(["export", *argv])
    line = one_line_error(code, err)
    assert code == 2 and line.startswith("error: ") and says in line, line
    assert sorted(tmp_path.rglob("*")) == before  # no file, no leftover temporary


def test_out_may_not_overwrite_the_checkpoint(runs, tmp_path, cli):
    source = tmp_path / "step.pt"
    shutil.copy(ckpt.resolve_checkpoint(runs["dcgan"]), source)
    code, _, err = cli(["export", source, "--format", "torchscript", "--out", source])
    assert "is the checkpoint" in one_line_error(code, err)
    assert sha256(source) == sha256(ckpt.resolve_checkpoint(runs["dcgan"]))


def test_onnx_without_the_packages_names_the_extra(runs, tmp_path, cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import onnxscript now raises ImportError
    code, _, err = cli(["export", runs["dcgan"], "--format", "onnx", "--out", tmp_path / "g.onnx"])
    assert 'pip install "gankit[export]"' in one_line_error(code, err)
    assert not list(tmp_path.iterdir())
