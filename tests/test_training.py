"""The training loop: determinism, bit-exact resume, EMA, checkpoints, data order."""

import os
import pickle

import pytest
import torch

from gankit import load_generator, train
from gankit.errors import GankitError
from gankit.training import checkpoint as ckpt
from gankit.training.ema import EMA

TINY = {"data": {"source": "digits", "size": 16}, "model": {"latent_dim": 8, "width": 8},
        "batch": 8, "log_every": 2, "sample_every": 3, "checkpoint_every": 4, "progress": False,
        "grid_size": 4}


def tiny(tmp_path, **overrides):
    return {**TINY, "runs_dir": str(tmp_path / "runs"), **overrides}


def final_state(result):
    return ckpt.load_checkpoint(result.run_dir)


def assert_same_tensors(a, b, where=""):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"tensors differ at {where}"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_tensors(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tensors(x, y, f"{where}/{i}")
    else:
        assert a == b, f"{where}: {a} != {b}"


def test_same_seed_same_weights_and_another_seed_differs(tmp_path):
    a = final_state(train(tiny(tmp_path), steps=5, name="a"))
    b = final_state(train(tiny(tmp_path), steps=5, name="b"))
    c = final_state(train(tiny(tmp_path), steps=5, name="c", seed=1))
    for key in ("G", "D", "G_ema", "opt_g", "opt_d"):
        assert_same_tensors(a[key], b[key], key)
    assert not torch.equal(a["G_ema"]["project.0.weight"], c["G_ema"]["project.0.weight"])


@pytest.mark.parametrize("update", ["joint", "alternating"])
def test_resume_is_bit_exact(tmp_path, update):
    straight = final_state(train(tiny(tmp_path), steps=10, name="straight", update=update))
    first = train(tiny(tmp_path), steps=5, name="split", update=update)
    assert first.step == 5
    resumed = train(resume=first.run_dir, steps=10)
    assert resumed.step == 10 and resumed.images_seen == 10 * 8 * (1 if update == "joint" else 1)
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


def test_resume_refuses_to_change_what_a_step_computes(tmp_path):
    first = train(tiny(tmp_path), steps=2, name="fixed")
    with pytest.raises(GankitError, match="batch cannot change when resuming"):
        train(resume=first.run_dir, steps=4, batch=16)
    with pytest.raises(GankitError, match="data cannot change"):
        train(resume=first.run_dir, steps=4, data={"size": 32})


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
