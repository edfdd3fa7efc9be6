"""The training loop: determinism, bit-exact resume, EMA, checkpoints, data order."""

import json
import os
import pickle
import shutil

import pytest
import torch

from gankit import load_generator, train
from gankit.errors import GankitError
from gankit.training import checkpoint as ckpt
from gankit.training.ema import EMA
from gankit.training.updates import UPDATES

from helpers import assert_same_tensors, final_state, metrics_rows, tiny_options

TINY = {"data": {"source": "digits", "size": 16}, "model": {"latent_dim": 8, "width": 8},
        "batch": 8, "log_every": 2, "sample_every": 3, "checkpoint_every": 4, "progress": False,
        "grid_size": 4}


def tiny(tmp_path, **overrides):
    return {**TINY, "runs_dir": str(tmp_path / "runs"), **overrides}


def test_same_seed_same_weights_and_another_seed_differs(tmp_path):
    a = final_state(train(tiny(tmp_path), steps=5, name="a"))
    b = final_state(train(tiny(tmp_path), steps=5, name="b"))
    c = final_state(train(tiny(tmp_path), steps=5, name="c", seed=1))
    for key in ("G", "D", "G_ema", "opt_g", "opt_d"):
        assert_same_tensors(a[key], b[key], key)
    assert not torch.equal(a["G_ema"]["project.0.weight"], c["G_ema"]["project.0.weight"])


# a recipe and its data for each task, so every registered update strategy is resumed below
TASK_RUNS = {"generation": ("dcgan", {"source": "digits", "size": 16}),
             "unpaired": ("cyclegan", {"source": "digits-a", "source_b": "digits-b", "size": 16}),
             "paired": ("pix2pix", {"source": "digits-edges", "size": 16})}


@pytest.mark.parametrize("update", UPDATES.names())
def test_resume_is_bit_exact(tmp_path, update):
    """Every update strategy of every task, with a learning-rate schedule that spans the split."""
    recipe, data = TASK_RUNS[UPDATES.get(update).task]
    if UPDATES.get(update).mixes_real_and_fake:
        recipe = "mlp"  # Hands-On ML's nets: no batch norm in D, which one mixed pass would couple
    options = tiny_options(tmp_path / "runs", recipe, data=data, update=update, batch=4,
                           checkpoint_every=4, optim={"decay_start": 3, "decay_length": 10})
    straight = final_state(train(options, steps=10, name="straight"))
    first = train(options, steps=5, name="split")
    assert first.step == 5
    resumed = train(resume=first.run_dir, steps=10)
    assert resumed.step == 10 and resumed.images_seen == 10 * 4
    split = final_state(resumed)
    for key in ("G", "D", "G_ema", "opt_g", "opt_d", "rng"):
        assert_same_tensors(straight[key], split[key], key)


def test_run_folder_contents_and_checkpoint_pruning(tmp_path):
    result = train(tiny(tmp_path), steps=13, keep_checkpoints=2, name="run")
    run = result.run_dir
    assert (run / "config.yaml").is_file() and (run / "metrics.jsonl").is_file()
    assert any((run / "tensorboard").iterdir())
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step-00000012.pt", "step-00000013.pt"]
    grids = sorted(p.name for p in (run / "samples").iterdir())
    assert grids == ["step-00000003.png", "step-00000006.png", "step-00000009.png",
                     "step-00000012.png", "step-00000013.png"]
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) >= 6 and '"d/acc_real"' in lines[0] and '"speed/images_per_s"' in lines[0]
    state = ckpt.load_checkpoint(run)
    assert state["step"] == 13 and state["images_seen"] == 13 * 8
    assert state["config"]["data"]["channels"] == 1  # "auto" was resolved and recorded


def test_epochs_bound_the_run(tmp_path):
    result = train(tiny(tmp_path), epochs=0.1, name="ep")  # 1797 digits * 0.1 / 8 -> 23 steps
    assert result.step == 23


def test_time_budget_bounds_the_run(tmp_path):
    result = train(tiny(tmp_path), time_budget=1.0, name="tb")
    assert result.step >= 1
    assert ckpt.list_checkpoints(result.run_dir)[-1].name == f"step-{result.step:08d}.pt"


def test_finished_run_asks_for_a_larger_bound(tmp_path):
    first = train(tiny(tmp_path), steps=2, name="done")
    with pytest.raises(GankitError, match="already trained 2 of its 2 steps"):
        train(resume=first.run_dir)


def folder_snapshot(folder):
    """Every file under `folder` -> (bytes, mtime in ns); not .lock, which each trainer that asks
    rewrites with its PID (the lock is how it is refused)."""
    return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


def test_a_refused_resume_writes_nothing(tmp_path):
    """Refused resumes (a finished run, a changed batch), one of them past a damaged newest
    checkpoint: config.yaml keeps its bytes and mtime although --keep-checkpoints, which may
    change on resume, was given; nothing is moved aside and no file of the folder changes."""
    result = train(tiny(tmp_path), steps=8, name="done")  # checkpoints at 4 and 8
    newest = ckpt.list_checkpoints(result.run_dir)[-1]
    newest.write_bytes(newest.read_bytes()[:100])  # torn: a resume falls back to step 4
    before = folder_snapshot(result.run_dir)
    with pytest.raises(GankitError, match="already trained 4 of its 4 steps"):
        train(resume=result.run_dir, steps=4, keep_checkpoints=7)
    with pytest.raises(GankitError, match="batch cannot change"):
        train(resume=result.run_dir, steps=12, keep_checkpoints=7, batch=16)
    assert folder_snapshot(result.run_dir) == before


def test_resume_refuses_to_change_what_a_step_computes(tmp_path):
    first = train(tiny(tmp_path), steps=2, name="fixed")
    with pytest.raises(GankitError, match="batch cannot change when resuming"):
        train(resume=first.run_dir, steps=4, batch=16)
    with pytest.raises(GankitError, match="data cannot change"):
        train(resume=first.run_dir, steps=4, data={"size": 32})
    # how many processes decode a folder does not change a pixel: it may change
    assert train(resume=first.run_dir, steps=3, data={"workers": 1}).step == 3


def test_existing_run_name_is_not_overwritten(tmp_path):
    first = train(tiny(tmp_path), steps=2, name="keep")
    before = ckpt.list_checkpoints(first.run_dir)[-1].read_bytes()
    with pytest.raises(GankitError, match="already holds checkpoints"):
        train(tiny(tmp_path), steps=2, name="keep")
    assert ckpt.list_checkpoints(first.run_dir)[-1].read_bytes() == before


def test_default_run_names_are_unique(tmp_path):
    a = train(tiny(tmp_path), steps=1)
    b = train(tiny(tmp_path), steps=1)
    assert a.run_dir != b.run_dir and a.run_dir.parent == b.run_dir.parent


def test_ema_is_the_running_average_of_the_weights():
    model = torch.nn.Linear(2, 1)
    ema = EMA(model, decay=0.9)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    torch.testing.assert_close(ema.model.weight, 0.9 * start + 0.1 * model.weight.detach())
    assert not ema.model.weight.requires_grad


def test_ema_with_a_half_life_in_images_is_the_references_and_independent_of_the_batch():
    """StyleGAN2-ADA's EMA: beta = 0.5 ** (batch / (1000 ema_kimg)), the half-life at most
    rampup x the images seen before the step; the same images give the same average at any batch."""
    model = torch.nn.Linear(2, 1)
    assert EMA(model, 0.9, half_life_kimg=10).beta(0, 32) == 0.5 ** (32 / 10_000)
    ramped = EMA(model, 0.9, half_life_kimg=10, rampup=0.05)
    assert ramped.beta(0, 32) == 0.0  # the first step copies G
    assert ramped.beta(3200, 32) == 0.5 ** (32 / 160)  # half-life 5% of 3200 images
    assert ramped.beta(10**7, 32) == 0.5 ** (32 / 10_000)  # capped at ema_kimg
    averages = []
    for batch in (32, 64):
        target = torch.nn.Linear(2, 1)
        with torch.no_grad():
            target.weight.fill_(1.0)
            model.weight.zero_()
        ema = EMA(model, 0.9, half_life_kimg=1)
        for step in range(6400 // batch):
            ema.update(target, step * batch, batch)
        averages.append(ema.model.weight.detach().clone())
    torch.testing.assert_close(averages[0], averages[1])
    torch.testing.assert_close(averages[0], torch.full_like(averages[0], 1 - 0.5 ** 6.4))  # 6.4 half-lives


def test_stylegan_runs_use_the_references_auto_ema(tmp_path):
    from gankit.resolve import resolve_config
    from gankit.run import build_run

    config = resolve_config(tiny_options(tmp_path, "stylegan", batch=16))
    assert (config.ema_kimg, config.ema_rampup) == (-1, 0.05)
    ema = build_run(config, run_dir=tmp_path, write_config=False).trainer.ema
    assert ema.half_life_kimg == 16 * 10 / 32 and ema.rampup == 0.05
    with pytest.raises(GankitError, match="--ema-kimg 0: give a half-life"):
        resolve_config(tiny_options(tmp_path, ema_kimg=0))


def test_loaded_generator_matches_the_trained_ema(tmp_path):
    result = train(tiny(tmp_path), steps=3, name="gen")
    G = load_generator(result.run_dir)
    a, b = G.sample(6, seed=3), G.sample(6, seed=3)
    assert a.shape == (6, 1, 16, 16) and torch.equal(a, b)
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert not torch.equal(a, G.sample(6, seed=4))


# ------------------------------------------------------------------ checkpoint files


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    ckpt.save_checkpoint({"step": 1, "w": torch.ones(3)}, path)
    good = path.read_bytes()

    def dies_midway(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(OSError):
        ckpt.save_checkpoint({"step": 2, "w": torch.zeros(3)}, path)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp file left behind


def test_damaged_foreign_and_code_carrying_checkpoints_are_refused(tmp_path):
    damaged = tmp_path / "damaged.pt"
    ckpt.save_checkpoint({"step": 1, "w": torch.ones(100)}, damaged)
    damaged.write_bytes(damaged.read_bytes()[:200])
    with pytest.raises(GankitError, match="damaged or not a gankit checkpoint"):
        ckpt.load_checkpoint(damaged)

    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}}, foreign)
    with pytest.raises(GankitError, match="not a gankit checkpoint"):
        ckpt.load_checkpoint(foreign)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": ckpt.FORMAT, "x": Evil()}))
    with pytest.raises(GankitError, match="cannot read checkpoint"):
        ckpt.load_checkpoint(evil)

    with pytest.raises(GankitError, match="holds no checkpoint"):
        ckpt.load_checkpoint(tmp_path)


def test_ctrl_c_stops_after_a_whole_step_and_resumes_exactly(tmp_path, monkeypatch):
    import signal

    from gankit.training.trainer import Trainer, TrainingInterrupted

    straight = final_state(train(tiny(tmp_path), steps=8, name="straight"))
    save_samples = Trainer.save_samples

    pressed = []

    def interrupt_at_step_3(self):
        if self.step == 3 and not pressed:
            pressed.append(True)
            signal.raise_signal(signal.SIGINT)  # as if the user pressed Ctrl-C once
        return save_samples(self)

    monkeypatch.setattr(Trainer, "save_samples", interrupt_at_step_3)
    with pytest.raises(TrainingInterrupted, match="interrupted at step 3.*--resume"):
        train(tiny(tmp_path), steps=8, name="split")
    monkeypatch.setattr(Trainer, "save_samples", save_samples)
    run_dir = tmp_path / "runs" / "split"
    state = ckpt.load_checkpoint(run_dir)
    assert state["step"] == 3 and state["batches_drawn"] == 3
    split = final_state(train(resume=run_dir, steps=8))
    for key in ("G", "D", "G_ema", "opt_g", "opt_d"):
        assert_same_tensors(straight[key], split[key], key)
    steps_logged = [line for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(steps_logged) == len({line.split(",")[0] for line in steps_logged})  # no step twice


def test_an_earlier_checkpoint_can_be_continued_and_the_newer_ones_are_kept(tmp_path):
    result = train(tiny(tmp_path), steps=8, name="old")  # checkpoints at 4 and 8
    older, newer = ckpt.list_checkpoints(result.run_dir)
    newer_bytes = newer.read_bytes()
    with pytest.warns(UserWarning, match="continuing from step-00000004.pt: the newer step-00000008.pt moved"):
        resumed = train(resume=older, steps=6)
    assert resumed.step == 6
    kept = result.run_dir / "checkpoints" / "set-aside" / newer.name
    assert kept.read_bytes() == newer_bytes  # nothing lost
    assert [p.name for p in ckpt.list_checkpoints(result.run_dir)] == ["step-00000004.pt", "step-00000006.pt"]


def test_resume_falls_back_past_damaged_checkpoints_and_clears_dead_writers_temporaries(tmp_path):
    """The newest checkpoint damaged and a stray step-99999999.pt: resuming the folder skips both
    (kept in checkpoints/damaged/, a warning says why) and continues exactly from step 4; the
    half-written temporary of a killed writer is removed, a live process's is not."""
    straight = final_state(train(tiny(tmp_path), steps=8, name="straight"))
    result = train(tiny(tmp_path), steps=8, name="hurt")  # checkpoints at 4 and 8
    folder = result.run_dir / "checkpoints"
    newest = ckpt.list_checkpoints(result.run_dir)[-1]
    newest.write_bytes(newest.read_bytes()[: len(newest.read_bytes()) // 2])  # torn
    (folder / "step-99999999.pt").write_text("not a checkpoint")
    dead = folder / ".step-00000012.pt.tmp-999999"  # no such process
    dead.write_bytes(b"half")
    live = folder / f".step-00000012.pt.tmp-{os.getpid()}"
    live.write_bytes(b"mine")
    with pytest.warns(UserWarning, match="skipped damaged checkpoints .* step-99999999.pt: .* step-00000008.pt"):
        resumed = final_state(train(resume=result.run_dir, steps=8))
    for key in ("G", "D", "G_ema", "opt_g", "opt_d"):
        assert_same_tensors(straight[key], resumed[key], key)
    assert sorted(p.name for p in (folder / "damaged").iterdir()) == ["step-00000008.pt", "step-99999999.pt"]
    assert not dead.exists() and live.exists()


def test_a_copied_checkpoint_resumes_into_a_new_run_folder(tmp_path):
    result = train(tiny(tmp_path), steps=4, name="orig")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    copy = elsewhere / "mine.pt"
    copy.write_bytes(ckpt.list_checkpoints(result.run_dir)[-1].read_bytes())
    resumed = train(resume=copy, steps=6)
    assert resumed.step == 6 and resumed.run_dir.parent == tmp_path / "runs"
    assert resumed.run_dir != result.run_dir and sorted(p.name for p in elsewhere.iterdir()) == ["mine.pt"]


def test_bad_sizes_and_model_options_fail_before_writing_anything(tmp_path):
    with pytest.raises(GankitError, match="power of two"):
        train(tiny(tmp_path), steps=2, data={"source": "digits", "size": 24})
    with pytest.raises(GankitError, match="model.dropout"):
        train(tiny(tmp_path), steps=2, model={"dropout": 1.5})
    with pytest.raises(GankitError, match="optim.lr_g"):
        train(tiny(tmp_path), steps=2, optim={"lr_g": -1})
    assert not (tmp_path / "runs").exists()


def test_existing_non_empty_folder_is_not_reused(tmp_path):
    (tmp_path / "runs" / "mine").mkdir(parents=True)
    (tmp_path / "runs" / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(GankitError, match="not empty"):
        train(tiny(tmp_path), steps=1, name="mine")
    assert (tmp_path / "runs" / "mine" / "notes.txt").read_text() == "mine"


def test_evaluation_during_training_keeps_the_best_and_leaves_resume_exact(tmp_path):
    options = tiny(tmp_path, eval={"every": 2, "n": 40}, checkpoint_every=3)
    straight = train(options, steps=6, name="straight")
    metrics = [json.loads(line) for line in (straight.run_dir / "metrics.jsonl").read_text().splitlines()]
    kids = [row["metrics/kid"] for row in metrics if "metrics/kid" in row]
    assert kids and all(k == k for k in kids)  # logged, and not NaN
    best = ckpt.load_checkpoint(ckpt.best_path(straight.run_dir))
    assert best["best_kid"] == min(best["best_kid"], final_state(straight)["best_kid"])
    assert best["step"] in (2, 4, 6)
    assert [p.name for p in ckpt.list_checkpoints(straight.run_dir)][-1] == "step-00000006.pt"

    first = train(options, steps=3, name="split")
    split = final_state(train(resume=first.run_dir, steps=6))
    for key in ("G", "D", "G_ema", "opt_g", "opt_d", "rng"):
        assert_same_tensors(final_state(straight)[key], split[key], key)
    assert split["best_kid"] == final_state(straight)["best_kid"]


# the only fields of a metrics.jsonl row that may differ across a resume: they measure the wall
# clock (when the row was written, images per second of this process), not the run
WALL_CLOCK = ("time", "speed/images_per_s")


def test_metrics_rows_across_a_resume_are_an_uninterrupted_runs(tmp_path):
    """Rows every 3 steps, KID every 2, checkpoints every 4: a run stopped at step 5 (mid-row) and
    one continued from its in-loop checkpoint at step 4 (mid-row, later rows and a part-row at 7
    already written) log the same rows as 10 steps in one go: same steps, keys and values."""
    options = tiny_options(tmp_path / "runs", log_every=3, checkpoint_every=4, eval={"every": 2, "n": 40})

    def rows(run_dir):
        return [{k: v for k, v in row.items() if k not in WALL_CLOCK} for row in metrics_rows(run_dir)]

    straight = rows(train(options, steps=10, name="straight").run_dir)
    assert [row["step"] for row in straight] == [3, 6, 9, 10]
    assert "metrics/kid" in straight[1] and "progress/kimg" in straight[0]
    stopped = train(options, steps=5, name="stopped")
    assert rows(train(resume=stopped.run_dir, steps=10).run_dir) == straight
    killed = train(options, steps=7, name="killed")  # as if killed after step 7: resume step 4
    with pytest.warns(UserWarning, match="continuing from step-00000004.pt"):
        train(resume=ckpt.list_checkpoints(killed.run_dir)[0], steps=10)
    assert rows(killed.run_dir) == straight
    # killed while a row was being written: the torn last line is one the resume trains again
    torn = train(options, steps=7, name="torn")
    with open(torn.run_dir / "metrics.jsonl", "a") as log:
        log.write('{"step": 8, "loss/d": 0.6')
    with pytest.warns(UserWarning, match="continuing from step-00000004.pt"):
        train(resume=ckpt.list_checkpoints(torn.run_dir)[0], steps=10)
    assert rows(torn.run_dir) == straight and not list(torn.run_dir.glob(".metrics.jsonl.tmp-*"))


def test_inception_evaluation_without_weights_fails_before_writing(tmp_path, monkeypatch, offline):
    monkeypatch.delenv("GANKIT_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(GankitError, match="Inception weights"):
        train(tiny(tmp_path), steps=2, eval={"every": 1, "features": "inception"})
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(not (shutil.which("c++") or shutil.which("g++")), reason="torch.compile on CPU needs a C++ compiler")
def test_compiled_models_train_like_the_plain_ones(tmp_path):
    """torch.compile changes kernels, not maths: two steps agree with the plain path to float
    tolerance, and the checkpoint keeps the plain state-dict keys."""
    # no dropout: compiled code draws its random masks from another generator
    options = tiny(tmp_path, model={"latent_dim": 8, "width": 8, "dropout": 0.0})
    plain = final_state(train(options, steps=2, name="plain", update="alternating"))
    compiled = final_state(train(options, steps=2, name="compiled", update="alternating", compile=True))
    for key in ("G", "D"):
        assert plain[key].keys() == compiled[key].keys()
        for name, value in plain[key].items():
            torch.testing.assert_close(compiled[key][name], value, atol=1e-4, rtol=1e-3, msg=f"{key}.{name}")


def test_channels_last_trains_like_the_contiguous_layout(tmp_path):
    """The memory layout changes kernels, not maths: two steps agree to float tolerance."""
    options = tiny(tmp_path, model={"latent_dim": 8, "width": 8, "dropout": 0.0})
    nhwc = final_state(train(options, steps=2, name="nhwc", channels_last=True))
    nchw = final_state(train(options, steps=2, name="nchw", channels_last=False))
    for key in ("G", "D"):
        for name, value in nchw[key].items():
            torch.testing.assert_close(nhwc[key][name], value, atol=1e-4, rtol=1e-3, msg=f"{key}.{name}")


def test_runs_started_together_get_their_own_folders(tmp_path):
    """Default names are made unique by creating the folder atomically: many threads asking for
    the same name at once each get a folder of their own."""
    import threading

    from gankit.resolve import resolve_config
    from gankit.run import make_run_dir

    config = resolve_config(tiny(tmp_path))
    folders, barrier = [], threading.Barrier(8)

    def start():
        barrier.wait()
        folders.append(make_run_dir(config))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(folders)) == 8 and all(f.is_dir() for f in folders)


def test_a_run_stopped_before_its_first_checkpoint_starts_again_under_its_name(tmp_path):
    first = train(tiny(tmp_path), steps=2, name="early", checkpoint_every=100)
    for path in ckpt.list_checkpoints(first.run_dir):  # as if killed before the first checkpoint
        path.unlink()
    (first.run_dir / "checkpoints").rmdir()
    with pytest.warns(UserWarning, match="stopped before its first checkpoint: starting it afresh"):
        again = train(tiny(tmp_path), steps=1, name="early")
    assert again.run_dir == first.run_dir and again.step == 1
    mine = again.run_dir / "notes.txt"  # a file gankit did not write: the folder is not taken over
    for path in ckpt.list_checkpoints(again.run_dir):
        path.unlink()
    mine.write_text("mine")
    with pytest.raises(GankitError, match="exists and is not empty"):
        train(tiny(tmp_path), steps=1, name="early")
    assert mine.read_text() == "mine"


def test_a_full_disk_is_one_line_and_loses_no_checkpoint(tmp_path, monkeypatch, capsys):
    """ENOSPC while writing a checkpoint (faked; torch hides the real one in a RuntimeError): one
    error line naming the folder and the space, the earlier checkpoints intact, no temporary left,
    and the run continues once the disk has room."""
    import errno

    from helpers import one_line_error, run_cli

    first = train(tiny(tmp_path), steps=4, name="full")  # a checkpoint at 4
    before = {p.name: p.read_bytes() for p in ckpt.list_checkpoints(first.run_dir)}
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed") from OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    code, _, err = run_cli(["train", "--resume", first.run_dir, "--steps", "8"], capsys)
    line = one_line_error(code, err)
    assert "no space left on the disk of" in line and "MB are free" in line and "--resume" in line
    assert {p.name: p.read_bytes() for p in ckpt.list_checkpoints(first.run_dir)} == before
    assert not [p for p in (first.run_dir / "checkpoints").iterdir() if p.name.startswith(".")]
    monkeypatch.setattr(torch, "save", real_save)
    assert train(resume=first.run_dir, steps=8).step == 8


def test_one_trainer_per_run_folder(tmp_path):
    """While a run is built or trained its folder is locked: a second trainer (another process
    here, as a second `--resume` would be) is refused in one line naming the holder, and writes
    nothing; when the holder ends, even by being killed, the lock is free again."""
    import subprocess
    import sys
    import textwrap

    from gankit.training.lock import RunLock

    first = train(tiny(tmp_path), steps=2, name="locked")
    config_before = (first.run_dir / "config.yaml").read_bytes()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from gankit.training.lock import RunLock
        lock = RunLock({str(first.run_dir)!r}).acquire()
        print("held", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(GankitError, match=f"is being trained by process {holder.pid} on"):
            train(resume=first.run_dir, steps=4)
        assert (first.run_dir / "config.yaml").read_bytes() == config_before
        assert ckpt.load_checkpoint(first.run_dir)["step"] == 2
    finally:
        holder.kill()  # as a crash would: the kernel drops the lock
        holder.wait()
    RunLock(first.run_dir).acquire().release()
    assert train(resume=first.run_dir, steps=4).step == 4
