"""End to end through the command line, as a user types it."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main  # noqa: F401  (the command line under test)

from helpers import one_line_error, run_cli, run_cli as run
from gankit.training import checkpoint as ckpt

TINY = ["--data", "digits", "--size", "16", "--batch", "8", "--no-progress",
        "--set", "model.width=8", "--set", "model.latent_dim=8", "--sample-every", "2",
        "--checkpoint-every", "2"]


def test_train_sample_resume_end_to_end(tmp_path, capsys):
    runs = str(tmp_path / "runs")
    code, out, err = run(["train", *TINY, "--steps", "3", "--runs-dir", runs, "--name", "split"], capsys)
    assert code == 0, err
    run_dir = tmp_path / "runs" / "split"
    assert "trained 3 steps" in out and (run_dir / "samples" / "step-00000002.png").is_file()

    code, _, err = run(["train", "--resume", str(run_dir), "--steps", "6", "--no-progress"], capsys)
    assert code == 0, err
    code, _, err = run(["train", *TINY, "--steps", "6", "--runs-dir", runs, "--name", "straight"], capsys)
    assert code == 0, err
    split = ckpt.load_checkpoint(run_dir)["G_ema"]
    straight = ckpt.load_checkpoint(tmp_path / "runs" / "straight")["G_ema"]
    assert all(torch.equal(split[k], straight[k]) for k in split)

    # each output kind; the model is rebuilt from the checkpoint's own config
    grid, npz, folder = tmp_path / "grid.png", tmp_path / "s.npz", tmp_path / "pngs"
    for out_path in (grid, npz, folder):
        code, out, err = run(["sample", str(run_dir), "--n", "5", "--out", str(out_path), "--seed", "1"], capsys)
        assert code == 0, err
    assert Image.open(grid).size[0] > 16
    images = np.load(npz)["images"]
    assert images.shape == (5, 16, 16, 1) and images.dtype == np.uint8
    pngs = sorted(folder.iterdir())
    assert len(pngs) == 5
    assert np.array_equal(np.asarray(Image.open(pngs[0])), images[0, ..., 0])

    # same seed, same images; a checkpoint file works as well as a run folder
    again = tmp_path / "again.npz"
    ckpt_file = ckpt.list_checkpoints(run_dir)[-1]
    assert run(["sample", str(ckpt_file), "--n", "5", "--out", str(again), "--seed", "1"], capsys)[0] == 0
    assert np.array_equal(np.load(again)["images"], images)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["train", "--data", "{tmp}/missing"], "does not exist"),
        (["train", "--data", "{tmp}/empty"], "no image"),
        (["train", "--data", "{tmp}/corrupt"], "no decodable image"),
        (["train", "--data", "digits", "--size", "48"], "power of two"),
        (["train", "--data", "digits", "--channels", "2"], "use 1 or 3"),
        (["train", "--data", "digits", "--set", "batchsize=3"], "unknown option"),
        (["train", "--data", "nowhere-dataset"], "neither a built-in dataset"),
        (["train", "--config", "{tmp}/nope.yaml"], "not found"),
        (["train", "--data", "digits", "--set", "model.width=0"], "must be at least 1"),
        (["train", "--data", "digits", "--set", "optim.lr_g=abc"], "should be of type float"),
        (["train", "--data", "digits", "--augpipe", "bgx"], "unknown augmentation pipeline 'bgx'"),
        (["train", "--data", "digits", "--ada-kimg", "0"], "--ada-kimg 0 must be positive"),
        (["train", "--data", "digits", "--p", "nan"], "must be a probability"),
        (["train", "--data", "digits", "--set", "augment.ops.spin=1"], "unknown augmentation 'spin'"),
        (["train", "--data", "digits", "--loss", "wasserstein", "--aug", "ada"], "no real/fake boundary"),
        (["train", "--data", "digits", "--aug", "diffaug", "--diffaug-policy", "zoom"], "--diffaug-policy 'zoom'"),
        (["train", "--data", "digits", "--runs-dir", "{tmp}/garbage.pt/runs"], "cannot access"),
        (["sample", "{tmp}/missing.pt", "--out", "{tmp}/x.png"], "does not exist"),
        (["sample", "{tmp}/garbage.pt", "--out", "{tmp}/x.png"], "damaged or not a gankit checkpoint"),
        (["sample", "{tmp}/foreign.pt", "--out", "{tmp}/x.png"], "not a gankit checkpoint"),
        (["sample", "{tmp}/empty", "--out", "{tmp}/x.png"], "holds no checkpoint"),
        (["sample", "{tmp}/foreign.pt", "--out", "{tmp}/x.gif2"], "not a gankit checkpoint"),
    ],
)
def test_bad_input_gets_one_clear_line(tmp_path, capsys, args, expected):
    (tmp_path / "empty").mkdir()
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "a.png").write_bytes(b"not a png at all")
    (tmp_path / "garbage.pt").write_bytes(b"\x00garbage")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if argv[0] == "train":
        argv += ["--steps", "1", "--no-progress"]
        if "--runs-dir" not in argv:
            argv += ["--runs-dir", str(tmp_path / "runs")]
    code, _, err = run(argv, capsys)
    line = one_line_error(code, err)
    assert expected in line, line
    assert not list((tmp_path / "runs").glob("*/checkpoints/*")) if (tmp_path / "runs").exists() else True


def test_unknown_flag_is_a_usage_error_without_traceback(capsys):
    code, _, err = run(["train", "--sizee", "32"], capsys)
    assert code == 2 and "No such option" in err and "Traceback" not in err


def test_errors_leave_earlier_work_alone(tmp_path, capsys):
    runs = str(tmp_path / "runs")
    assert run(["train", *TINY, "--steps", "2", "--runs-dir", runs, "--name", "mine"], capsys)[0] == 0
    run_dir = tmp_path / "runs" / "mine"
    before = {p.name: p.read_bytes() for p in (run_dir / "checkpoints").iterdir()}
    code, _, err = run(["train", *TINY, "--steps", "2", "--runs-dir", runs, "--name", "mine"], capsys)
    assert "already holds checkpoints" in one_line_error(code, err)
    code, _, err = run(["train", "--resume", str(run_dir), "--batch", "4", "--steps", "4"], capsys)
    assert "cannot change when resuming" in one_line_error(code, err)
    assert {p.name: p.read_bytes() for p in (run_dir / "checkpoints").iterdir()} == before


def test_console_script_prints_one_line_not_a_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gankit", "train", "--data", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: data folder") and "Traceback" not in proc.stderr


def test_list_shows_registered_names(capsys):
    code, out, _ = run(["list"], capsys)
    assert code == 0 and "dcgan" in out and "nonsaturating" in out and "mnist5k" in out
    assert "bgcfnc" in out and "keras" in out and "lumaflip" in out  # augmentation pipelines and ops
    assert "tasks: generation, paired, unpaired" in out and "mnist5k-masked" in out and "pix2pix" in out


def test_yaml_style_floats_and_corrupt_file_warnings_are_friendly(tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (20, 12), (60 * i, 0, 0)).save(folder / f"{i}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    with pytest.warns(UserWarning, match="skipped 1 of 5 files") as caught:
        code, out, err = run(["train", "--data", str(folder), "--size", "8", "--batch", "2", "--steps", "2",
                              "--set", "optim.lr_g=1e-4", "--set", "model.width=8", "--no-progress",
                              "--runs-dir", str(tmp_path / "runs"), "--name", "r"], capsys)
    assert code == 0, err
    assert ckpt.load_checkpoint(tmp_path / "runs" / "r")["config"]["optim"]["lr_g"] == 1e-4
    # the CLI prints each warning as one line, without Python's source-line echo
    shown = warnings.formatwarning(caught[0].message, UserWarning, "folder.py", 45)
    assert shown.startswith("warning: skipped 1 of 5") and shown.count("\n") == 1


def test_a_run_on_a_relative_folder_resumes_and_samples_from_another_directory(tmp_path, capsys, monkeypatch):
    from PIL import Image

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (project / "imgs").mkdir(parents=True)
    elsewhere.mkdir()
    for i in range(4):
        Image.new("RGB", (12, 12), (60 * i, 0, 0)).save(project / "imgs" / f"{i}.png")
    monkeypatch.chdir(project)
    options = ["--size", "8", "--batch", "2", "--set", "model.width=8", "--no-progress", "--checkpoint-every", "2"]
    code, _, err = run(["train", "--data", "imgs", *options, "--steps", "2", "--runs-dir", "runs", "--name", "r"],
                       capsys)
    assert code == 0, err
    run_dir = project / "runs" / "r"
    # the run records where its images are, not where they were relative to the shell
    assert ckpt.load_checkpoint(run_dir)["config"]["data"]["source"] == str((project / "imgs").resolve())
    assert str((project / "imgs").resolve()) in (run_dir / "config.yaml").read_text()
    monkeypatch.chdir(elsewhere)
    code, _, err = run(["train", "--resume", str(run_dir), "--steps", "4", "--no-progress"], capsys)
    assert code == 0, err
    assert ckpt.load_checkpoint(run_dir)["step"] == 4


def test_resume_with_a_bad_bound_is_one_line(tmp_path, capsys):
    runs = str(tmp_path / "runs")
    assert run(["train", *TINY, "--steps", "2", "--runs-dir", runs, "--name", "b"], capsys)[0] == 0
    code, _, err = run(["train", "--resume", f"{runs}/b", "--set", "steps=abc"], capsys)
    assert "steps" in one_line_error(code, err)


def test_eval_prints_a_table_and_a_json_line(tmp_path, capsys):
    import json

    runs = str(tmp_path / "runs")
    assert run(["train", *TINY, "--steps", "2", "--runs-dir", runs, "--name", "e"], capsys)[0] == 0
    code, out, err = run(["eval", f"{runs}/e", "--n", "30", "--no-progress"], capsys)
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["features"] == "mnist" and result["n_fake"] == 30 and result["step"] == 2
    assert result["kid_mean"] > 0 and result["fid"] > 0
    assert "kid_mean" in out.splitlines()[1] or any(line.startswith("kid_mean") for line in out.splitlines())


def test_list_one_section_as_error_messages_suggest():
    from typer.testing import CliRunner

    from gankit.cli import app

    out = CliRunner().invoke(app, ["list", "datasets"])
    assert out.exit_code == 0 and out.output.startswith("datasets: ") and "mnist5k" in out.output
    assert "recipes" not in out.output


def test_train_dry_run_checks_everything_and_writes_nothing(tmp_path, capsys):
    """--dry-run resolves and checks the options, builds the nets without memory, prints the
    resolved config and the nets' sizes, and leaves no run folder; a typo still fails in one line."""
    import yaml

    runs = tmp_path / "runs"
    code, out, err = run_cli(["train", "--config", "cgan", "--steps", "5", "--runs-dir", runs, "--dry-run"], capsys)
    assert code == 0, err
    body, last = out.rsplit("\n# dry run:", 1)
    config = yaml.safe_load(body)
    assert config["recipe"] == "cgan" and config["conditional"] and config["steps"] == 5
    assert "G " in last and "M parameters" in last and not runs.exists()
    code, _, err = run_cli(["train", "--data", tmp_path / "missing", "--dry-run"], capsys)
    assert "neither a built-in dataset" in one_line_error(code, err)
    code, _, err = run_cli(["train", "--recipe", "mlp", "--freeze-d", "99", "--dry-run"], capsys)
    assert "--freeze-d 99" in one_line_error(code, err)


def test_translate_train_dry_run_and_its_help_show_the_translators_own_defaults(tmp_path, capsys):
    runs = tmp_path / "runs"
    code, out, err = run_cli(["translate", "train", "--a", "digits-a", "--b", "digits-b", "--size", "16", "--tiny",
                              "--runs-dir", runs, "--dry-run"], capsys)
    assert code == 0, err
    assert "# dry run: cyclegan (unpaired)" in out and "batch: 1\n" in out and not runs.exists()
    code, out, err = run_cli(["translate", "train", "--paired", "--a", "digits-edges", "--dry-run",
                              "--resume", tmp_path], capsys)
    assert "--dry-run checks a new run" in one_line_error(code, err)
    code, out, _ = run_cli(["translate", "train", "--help"], capsys)
    assert code == 0 and "[default: 1]" in " ".join(out.split()) and "128" not in out


def _folder_of(tmp_path, modes: dict[str, str]) -> str:
    """A folder of 8x8 images, one per {relative path: PIL mode}."""
    for name, mode in modes.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new(mode, (8, 8), 90 if mode == "L" else (90, 20, 200)).save(tmp_path / name)
    return str(tmp_path)


@pytest.mark.parametrize("options", [
    {"recipe": "mlp", "data": {"source": "digits"}},                   # a grey built-in
    {"recipe": "cgan", "data": {"source": "digits"}},                  # and its 10 classes
    {"recipe": "dcgan", "data": {"source": "grey"}},                   # a folder of grey files
    {"recipe": "dcgan", "data": {"source": "mixed"}},                  # one colour file: RGB
    {"recipe": "cgan", "data": {"source": "classes", "labels": True}},  # 3 sub-folders, 3 classes
    {"recipe": "cyclegan", "data": {"source": "digits-a", "source_b": "digits-b"}},  # grey domains
    {"recipe": "pix2pix", "data": {"source": "digits-edges"}},            # grey pairs
])
def test_a_dry_run_sizes_the_nets_as_the_real_run_does(tmp_path, options):
    """The sizes a dry run prints come from nets shaped by the data's own channels and classes
    (read from headers, not decoded): the same as the nets a real run builds."""
    from gankit.api import plan
    from gankit.resolve import resolve_config
    from gankit.tasks import task_of
    from gankit.variants import get_recipe

    folders = {"grey": {"a.png": "L", "b.png": "L"}, "mixed": {"a.png": "L", "b.png": "RGB"},
               "classes": {"x/a.png": "L", "y/b.png": "L", "z/c.png": "L"}}
    source = options["data"]["source"]
    if source in folders:
        options["data"]["source"] = _folder_of(tmp_path / source, folders[source])
    options = {**options, "data": {**options["data"], "size": 16}, "runs_dir": str(tmp_path / "runs"),
               "model": dict(get_recipe(options["recipe"]).tiny)}
    config = resolve_config(options)
    data = task_of(config.recipe).load_data(config.data, progress=False)
    G, D = get_recipe(config.recipe).make(config.model, task_of(config.recipe).data_spec(config, data))
    planned = plan(options)
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert planned["parameters"] == {"G": count(G), "D": count(D)}
    assert planned["config"]["data"]["channels"] == data.channels
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("text, expected", [
    ("batch: 8\nsteps: [1, 2\nlr_g: 3\n", r"bad\.yaml is not valid YAML at line 3, column 5 \(expected ',' or ']'"),
    ("batch: 8\n  steps: 3\n", r"bad\.yaml is not valid YAML at line 2, column 8 \(mapping values are not allowed"),
    ("batch:\t8\n", r"bad\.yaml is not valid YAML at line 1, column 7 \(found character '\\t'"),
    ("- batch\n- 8\n", r"bad\.yaml holds a list, not options: write one `name: value` line"),
])
def test_a_malformed_preset_is_one_line_naming_the_file_and_the_place(tmp_path, cli, text, expected):
    import re

    preset = tmp_path / "bad.yaml"
    preset.write_text(text)
    for extra in ([], ["--dry-run"]):
        code, _, err = cli(["train", "--config", preset, "--steps", "1", "--runs-dir", tmp_path / "runs", *extra])
        line = one_line_error(code, err)
        assert code == 2 and line.startswith(f"error: config file {preset}") and re.search(expected, line), line
    assert not (tmp_path / "runs").exists()
