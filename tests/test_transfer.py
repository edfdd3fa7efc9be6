"""Fine-tuning from a trained run (`--init-from`): the source's nets are the start, the rest is
fresh, the architecture comes from the source, and the run records where it started."""

import pytest
import torch
import yaml

from gankit import train
from gankit.errors import GankitError
from gankit.resolve import resolve_config
from gankit.run import build_run
from gankit.training import checkpoint as ckpt
from gankit.transfer import resolve_init, sha256

from helpers import assert_same_tensors, one_line_error, run_cli, tiny_options


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny DCGAN trained on the 16 px digits with augmentation at p = 0.3: the model to start from."""
    runs = tmp_path_factory.mktemp("source")
    options = tiny_options(runs, augment={"mode": "fixed", "p": 0.3})
    return train(options, steps=6, name="digits")


def fine_tune_options(tmp_path, source, **overrides):
    """Fine-tuning `source` (a run) on 50 digits of mnist5k; overrides may name another source."""
    options = tiny_options(tmp_path / "runs", data={"source": "mnist5k", "limit": 50},
                           augment={"mode": "ada", "target": 0.6},
                           init_from=str(source.run_dir) if source is not None else None)
    del options["model"]  # the source's
    options.update(overrides)
    return options


def test_a_fine_tuned_run_starts_from_the_source_nets_and_fresh_state(tmp_path, source):
    options, state = resolve_init(fine_tune_options(tmp_path, source))
    run = build_run(resolve_config(options), init=state)
    trainer = run.trainer
    assert_same_tensors(trainer.ctx.G.state_dict(), state["G"], "G")
    assert_same_tensors(trainer.ctx.D.state_dict(), state["D"], "D")
    assert_same_tensors(trainer.ema.model.state_dict(), state["G_ema"], "G_ema")
    assert state["augment"]["p"] > 0 and trainer.augment.p_value == 0.0  # ADA starts over
    assert trainer.step == 0 and not trainer.ctx.opt_g.state and not trainer.ctx.opt_d.state
    assert run.task.data.name == "mnist5k" and len(run.task.data) == 50  # the new data
    recorded = yaml.safe_load((run.run_dir / "config.yaml").read_text())
    source_file = ckpt.resolve_checkpoint(source.run_dir)
    assert recorded["init_from"] == str(source_file.resolve())
    assert recorded["init_from_sha256"] == sha256(source_file)
    assert recorded["model"] == yaml.safe_load((source.run_dir / "config.yaml").read_text())["model"]


def test_fine_tuning_trains_and_resumes_from_its_own_checkpoint(tmp_path, source):
    result = train(fine_tune_options(tmp_path, source, checkpoint_every=2), steps=2, name="ft")
    state = ckpt.load_checkpoint(result.run_dir)
    assert state["step"] == 2
    source_state = ckpt.load_checkpoint(source.run_dir)
    assert not torch.equal(state["G"]["project.0.weight"], source_state["G"]["project.0.weight"])
    resumed = train(resume=result.run_dir, steps=4)  # the run's weights, not the source's again
    assert resumed.step == 4
    assert ckpt.load_checkpoint(resumed.run_dir)["config"]["init_from_sha256"] == sha256(
        ckpt.resolve_checkpoint(source.run_dir))


@pytest.mark.parametrize("overrides, message", [
    ({"data": {"source": "mnist5k", "size": 32}}, "take 16 px images, not 32: use --size 16"),
    ({"recipe": "mlp"}, "option recipe is 'mlp' here but 'dcgan' in the source"),
    ({"model": {"width": 16}}, "option model is"),
    ({"init_from_sha256": "0" * 64}, "the file changed"),
])
def test_options_that_change_the_nets_are_refused(tmp_path, source, overrides, message):
    options = fine_tune_options(tmp_path, source)
    for key, value in overrides.items():
        options[key] = {**options[key], **value} if isinstance(value, dict) and key in options else value
    with pytest.raises(GankitError, match=message.replace("(", r"\(")):
        train(options, steps=1)
    assert not (tmp_path / "runs").exists()


def test_bad_sources_are_one_line_errors(tmp_path, source, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    common = ["train", "--data", "digits", "--size", "16", "--steps", "1", "--no-progress", "--runs-dir", tmp_path / "runs"]
    for init, expected in [(tmp_path / "missing", "does not exist"), (bad, "cannot read checkpoint")]:
        code, _, err = run_cli([*common, "--init-from", init], capsys)
        assert expected in one_line_error(code, err)
    code, out, err = run_cli([*common, "--init-from", source.run_dir, "--name", "ok"], capsys)
    assert code == 0, err
    assert "trained 1 steps" in out
    assert not any(p.name != "ok" for p in (tmp_path / "runs").iterdir())


# ---------------------------------------------------------------- FreezeD

def test_freeze_d_keeps_the_first_blocks_bit_identical_and_out_of_the_optimiser(tmp_path, source):
    result = train(fine_tune_options(tmp_path, source, freeze_d=2), steps=3, name="frozen")
    state, before = ckpt.load_checkpoint(result.run_dir), ckpt.load_checkpoint(source.run_dir)
    # weights, not buffers: batch norm's running statistics move (D uses batch statistics in training)
    weights = [k for k in before["D"] if k.endswith(("weight", "bias"))]
    frozen = [k for k in weights if k.startswith(("features.0.", "features.1.", "features.3.", "features.4."))]
    trained = [k for k in weights if k.startswith(("features.6.", "features.7.", "head."))]
    assert frozen and trained
    for key in frozen:
        assert torch.equal(state["D"][key], before["D"][key]), key
    assert any(not torch.equal(state["D"][k], before["D"][k]) for k in trained)
    assert len(state["opt_d"]["param_groups"][0]["params"]) == len(weights) - len(frozen)  # not the frozen
    assert len(state["opt_d"]["state"]) == len(state["opt_d"]["param_groups"][0]["params"])


@pytest.mark.parametrize("recipe, freeze, message", [
    ("dcgan", 3, "--freeze-d 3: the dcgan recipe's D has 2 blocks at 16 px: use 0 to 2"),
    ("progan", 1, "the progan recipe's D is not made of blocks"),
])
def test_freeze_d_beyond_d_or_on_a_growing_d_is_refused(tmp_path, recipe, freeze, message):
    with pytest.raises(GankitError, match=message):
        train(tiny_options(tmp_path / "runs", recipe, freeze_d=freeze), steps=1)
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- the pretrained registry

@pytest.fixture
def registered(source, tmp_path, monkeypatch):
    """The source run's checkpoint as a registered pretrained model, its file in $GANKIT_PRETRAINED."""
    import shutil

    from gankit import pretrained

    folder = tmp_path / "models"
    folder.mkdir()
    file = ckpt.resolve_checkpoint(source.run_dir)
    shutil.copy(file, folder / "digits-tiny.pt")
    entry = pretrained.Pretrained(name="digits-tiny", recipe="dcgan", data="digits", size=16, channels=1,
                                  budget="6 steps", file="digits-tiny.pt", sha256=sha256(file),
                                  url="https://example.invalid/digits-tiny.pt", script="tests")
    monkeypatch.setitem(pretrained.PRETRAINED._entries, "digits-tiny", entry)
    monkeypatch.setenv(pretrained.ENV, str(folder))
    monkeypatch.setattr(pretrained, "cache_dir", lambda: tmp_path / "cache")
    return folder / "digits-tiny.pt"


def test_a_pretrained_name_is_found_checked_fine_tuned_and_sampled(tmp_path, registered, capsys):
    from gankit import load_generator, pretrained

    assert pretrained.find("digits-tiny") == registered
    code, out, err = run_cli(["pretrained", "list"], capsys)
    assert code == 0 and f"digits-tiny: dcgan on digits, 16 px, 6 steps; {registered}" in out
    options = fine_tune_options(tmp_path, source=None, init_from="digits-tiny")
    result = train(options, steps=1, name="from-name")
    recorded = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert recorded["init_from"] == "digits-tiny" and recorded["init_from_sha256"] == sha256(registered)
    assert load_generator("digits-tiny").sample(2, seed=0).shape == (2, 1, 16, 16)
    registered.write_bytes(registered.read_bytes()[:-10] + b"0123456789")  # damaged in place
    with pytest.raises(GankitError, match="is not the pretrained model digits-tiny: its sha256"):
        pretrained.find("digits-tiny")


def test_missing_unknown_and_offline_pretrained_models_are_one_line(registered, offline, capsys):
    from gankit import pretrained

    registered.unlink()
    code, _, err = run_cli(["pretrained", "get", "digits-tiny"], capsys)
    line = one_line_error(code, err)
    assert "is not on this machine and there is no network" in line and str(pretrained.cache_dir()) in line
    code, _, err = run_cli(["pretrained", "get", "nope"], capsys)
    line = one_line_error(code, err)
    assert "unknown pretrained model 'nope': use one of" in line and "digits-tiny" in line
    code, _, err = run_cli(["train", "--init-from", "https://example.invalid/x.pt", "--steps", "1"], capsys)
    assert "cannot download https://example.invalid/x.pt: there is no network here" in one_line_error(code, err)


@pytest.mark.parametrize("labels", [{"g_label_input": "onehot", "d_label_input": "channels"},
                                    {"g_label_input": "embedding", "d_label_input": "projection"}])
def test_a_conditional_source_on_new_classes_relearns_only_its_label_layers(tmp_path, labels):
    """A cgan trained on the ten digit classes, fine-tuned on a folder of three classes: every
    weight is the source's except the label part, which is the fresh net's (and a warning says so)."""
    from PIL import Image

    source = train(tiny_options(tmp_path / "src", recipe="cgan", model=labels, spectral_norm=True),
                   steps=1, name="cgan10")
    folder = tmp_path / "three"
    for i in range(12):
        (folder / "abc"[i % 3]).mkdir(parents=True, exist_ok=True)
        Image.new("L", (16, 16), i * 20).save(folder / "abc"[i % 3] / f"{i}.png")
    options = tiny_options(tmp_path / "runs", recipe="cgan", data={"source": str(folder), "labels": True},
                           init_from=str(source.run_dir))
    del options["model"]
    options, state = resolve_init(options)
    with pytest.warns(UserWarning, match="knows 10 classes and this data has 3: its label layers start fresh"):
        run = build_run(resolve_config(options), init=state)
    assert run.trainer.ctx.G.num_classes == 3
    for net, name in ((run.trainer.ctx.G, "G"), (run.trainer.ema.model, "G_ema"), (run.trainer.ctx.D, "D")):
        relabelled = 0
        for key, now in net.state_dict().items():
            then = state[name][key]
            if now.shape == then.shape:
                assert torch.equal(now, then), f"{name}.{key} is not the source's"
                continue
            if key.endswith(("._u", "._v")):
                continue  # spectral norm's power iteration starts again
            differing = [d for d in range(now.dim()) if now.shape[d] != then.shape[d]]
            assert len(differing) == 1 and then.shape[differing[0]] - now.shape[differing[0]] == 7, key
            kept = now.shape[differing[0]] - 3
            assert torch.equal(now.narrow(differing[0], 0, kept), then.narrow(differing[0], 0, kept)), key
            relabelled += 1
        assert relabelled >= 1, f"no label layer of {name} was re-created"
    with pytest.warns(UserWarning, match="label layers start fresh"):
        trained = train(options, steps=1, name="ft3")
    assert ckpt.load_checkpoint(trained.run_dir)["data"]["num_classes"] == 3


def test_an_unconditional_file_with_other_shapes_is_still_refused(tmp_path, source):
    from gankit.transfer import fit_to_classes

    fresh = {"w": torch.zeros(4, 5)}
    with pytest.raises(RuntimeError, match=r"size mismatch for w: \(4, 6\)"):
        fit_to_classes({"w": torch.zeros(4, 6)}, fresh, 0, 0)
    with pytest.raises(RuntimeError, match="missing"):
        fit_to_classes({"v": torch.zeros(4, 5)}, fresh, 10, 3)
    fitted, relabelled = fit_to_classes({"w": torch.ones(4, 12)}, fresh, 10, 3)
    assert relabelled == ["w"] and fitted["w"][:, :2].eq(1).all() and fitted["w"][:, 2:].eq(0).all()


def test_the_script_that_makes_the_shipped_models_writes_a_loadable_checked_entry(tmp_path, monkeypatch):
    """scripts/make_pretrained.py on a tiny entry: a slim file, an index record that the registry
    reads, the sha256 it checks, the KID it reports; the file samples and fine-tunes by name."""
    import importlib.util
    import sys
    from pathlib import Path

    from gankit import load_generator, pretrained

    path = Path(__file__).resolve().parents[1] / "scripts" / "make_pretrained.py"
    spec = importlib.util.spec_from_file_location("make_pretrained", path)
    script = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_pretrained", script)  # its dataclasses look themselves up
    spec.loader.exec_module(script)
    assert set(script.ENTRIES) >= {"dcgan-mnist04", "dcgan-mnist", "dcgan-faces100"}
    options = tiny_options(tmp_path)
    entry = script.Entry("tiny-digits04", "a test entry", data={"source": "digits", "size": 16}, classes=(0, 1, 2, 3, 4),
                         options={"batch": 8, "model": options["model"], "augment": {"mode": "none"}}, steps=2)
    with pytest.warns(UserWarning, match="KID subset size"):  # 64 samples: a quick, rough KID
        record = script.make(entry, tmp_path / "models", threads=1, samples=64)
    file = tmp_path / "models" / "tiny-digits04.pt"
    assert set(torch.load(file, weights_only=True)) == set(script.KEPT)  # no optimiser state shipped
    [read] = pretrained.read_index(tmp_path / "models" / "index.yaml")
    assert read == pretrained.Pretrained(**record) and read.sha256 == sha256(file)
    assert read.data.startswith("digits digits 0,1,2,3,4,") and "KID" in read.description
    monkeypatch.setattr(pretrained, "PACKAGE_DIR", tmp_path / "models")
    monkeypatch.setitem(pretrained.PRETRAINED._entries, read.name, read)
    assert pretrained.find(read.name) == file
    assert load_generator(read.name).sample(3, seed=0).shape == (3, 1, 16, 16)
    (tmp_path / "models" / "index.yaml").write_text("- {name: x, nonsense: 1}\n")
    with pytest.raises(GankitError, match="is not a list of pretrained entries"):
        pretrained.read_index(tmp_path / "models" / "index.yaml")


def test_every_shipped_pretrained_model_matches_its_entry():
    """The package's models: their files are found, pass the sha256 check and draw images of the
    size and channels their entry names (a stale file or index fails here, not for a user)."""
    from gankit import load_generator, pretrained

    shipped = pretrained.read_index(pretrained.PACKAGE_DIR / "index.yaml")
    assert shipped, "the package ships no pretrained models"
    for entry in shipped:
        assert pretrained.find(entry.name) == pretrained.PACKAGE_DIR / entry.file
        assert load_generator(entry.name).sample(2, seed=0).shape == (2, entry.channels, entry.size, entry.size)
