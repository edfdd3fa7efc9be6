"""Non-finite updates are skipped and counted; repeated failures roll back to the last checkpoint
and, past a limit, stop with one clear error that keeps the earlier checkpoints."""

import json

import pytest
import torch

from gankit import train
from gankit.errors import GankitError
from gankit.losses import LOSSES, AdversarialLoss, get_loss
from gankit.training import checkpoint as ckpt
from gankit.training.guard import StepGuard

# A loss that turns non-finite after a number of D-loss calls (set by each test).
STATE = {"calls": 0, "nan_from": 10**9, "nan_until": 10**9}


def _non_finite() -> bool:
    return STATE["nan_from"] < STATE["calls"] <= STATE["nan_until"]


def _d_loss(real, fake, real_target=1.0, fake_target=0.0):
    STATE["calls"] += 1
    loss = get_loss("nonsaturating").d_loss(real, fake, real_target, fake_target)
    return loss * float("nan") if _non_finite() else loss


def _g_loss(fake):
    loss = get_loss("nonsaturating").g_loss(fake)
    return loss * float("nan") if _non_finite() else loss


@pytest.fixture(autouse=True)
def nan_loss(monkeypatch):
    STATE.update(calls=0, nan_from=10**9, nan_until=10**9)  # each test sets its own window
    # registered for these tests only: other tests iterate over every registered loss
    monkeypatch.setitem(LOSSES._entries, "test-nan", AdversarialLoss("test-nan", _d_loss, _g_loss, True, 0.0))


def tiny(tmp_path, **overrides):
    return {"data": {"source": "digits", "size": 16}, "model": {"latent_dim": 8, "width": 8}, "batch": 8,
            "loss": "test-nan", "augment": {"mode": "none"}, "log_every": 1, "sample_every": 100,
            "checkpoint_every": 2, "progress": False, "grid_size": 4, "runs_dir": str(tmp_path / "runs"),
            **overrides}


def test_step_guard_skips_non_finite_gradients():
    layer = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    guard = StepGuard()
    before = [p.detach().clone() for p in layer.parameters()]
    (layer(torch.ones(1, 3)).sum() * float("inf")).backward()
    assert guard.step(opt, list(layer.parameters())) is False
    assert all(torch.equal(b, p) for b, p in zip(before, layer.parameters()))
    assert guard.skipped == 1 and all(p.grad is None for p in layer.parameters())
    layer(torch.ones(1, 3)).sum().backward()
    assert guard.step(opt, list(layer.parameters())) is True and guard.skipped == 0
    assert not all(torch.equal(b, p) for b, p in zip(before, layer.parameters()))


def test_after_a_rollback_the_logged_rows_hold_no_values_of_the_undone_steps(tmp_path):
    # steps 1-2 fine (checkpoint at 2); 3 and 4 non-finite: step 3 is skipped and logged, step 4
    # reaches the patience and rolls back to step 2; from there every step is fine again
    STATE.update(calls=0, nan_from=2, nan_until=4)
    with pytest.warns(UserWarning, match="rolled back to step-00000002.pt"):
        result = train(tiny(tmp_path, guard_patience=3, log_every=4), steps=8, name="back")
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [4, 8]
    assert rows[0]["guard/rollbacks"] == 1 and "guard/skipped_updates" not in rows[0]  # step 3 was undone
    assert all(isinstance(v, (int, float)) and v == v for r in rows for v in r.values())  # no NaN


def test_non_finite_steps_are_skipped_counted_and_leave_the_weights(tmp_path):
    STATE.update(calls=0, nan_from=3)  # steps 1-3 are fine, 4 and 5 are not
    result = train(tiny(tmp_path), steps=5, name="skip", checkpoint_every=100)
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r.get("guard/skipped_updates", 0) for r in rows] == [0, 0, 0, 2, 2]  # D and G each
    state = ckpt.load_checkpoint(result.run_dir)
    assert all(torch.isfinite(v).all() for v in state["G"].values() if v.is_floating_point())
    assert all(torch.isfinite(v).all() for v in state["D"].values() if v.is_floating_point())


def test_repeated_failures_roll_back_then_stop_with_one_clear_error(tmp_path):
    STATE.update(calls=0, nan_from=4)
    with pytest.warns(UserWarning, match="rolled back to step-00000004.pt"):
        with pytest.raises(GankitError, match="diverged .* after 2 rollbacks: lower the learning rates"):
            train(tiny(tmp_path, guard_patience=2, max_rollbacks=2), steps=20, name="div")
    kept = ckpt.list_checkpoints(tmp_path / "runs" / "div")
    assert [p.name for p in kept] == ["step-00000002.pt", "step-00000004.pt"]  # earlier work kept
    assert ckpt.load_checkpoint(kept[-1])["step"] == 4


def test_divergence_before_any_checkpoint_says_so(tmp_path):
    STATE.update(calls=0, nan_from=0)
    with pytest.raises(GankitError, match="before the first checkpoint"):
        train(tiny(tmp_path, guard_patience=2, checkpoint_every=100), steps=10, name="early")


def test_loss_scaling_unscales_before_the_step_and_backs_off_after_an_overflow():
    """The fp16 path's logic, on CPU (torch's GradScaler works there in fp32): a scaled loss gives
    the unscaled step; an overflow skips the step and halves the scale."""
    torch.manual_seed(0)
    layer, reference = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)
    reference.load_state_dict(layer.state_dict())
    guard = StepGuard(scaler=torch.amp.GradScaler("cpu", init_scale=2.0 ** 10))
    opt, opt_ref = torch.optim.SGD(layer.parameters(), lr=0.1), torch.optim.SGD(reference.parameters(), lr=0.1)
    x = torch.randn(4, 3)
    guard.scale(layer(x).pow(2).mean()).backward()
    assert guard.step(opt, list(layer.parameters()))
    guard.end_of_step()
    reference(x).pow(2).mean().backward()
    opt_ref.step()
    for a, b in zip(layer.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b)
    before = [p.detach().clone() for p in layer.parameters()]
    guard.scale(layer(x).pow(2).mean() * float("inf")).backward()
    assert not guard.step(opt, list(layer.parameters()))
    guard.end_of_step()
    assert guard.scaler.get_scale() == 2.0 ** 9
    assert all(torch.equal(b, p) for b, p in zip(before, layer.parameters()))


def test_fp16_needs_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA present: fp16 is allowed")
    with pytest.raises(GankitError, match="fp16 needs CUDA"):
        train(tiny(tmp_path, loss="nonsaturating", precision="fp16", device="cpu"), steps=1)
