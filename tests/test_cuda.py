"""The CUDA paths, on a GPU only (skipped elsewhere; `benchmarks/device_check.sh` runs them where
a GPU is lent): training in each precision and memory format, exact resume and determinism on the
GPU, a checkpoint moving between GPU and CPU, and each kind of task."""

import pytest
import torch

from gankit import load_generator, train
from gankit.training import checkpoint as ckpt

from helpers import assert_same_tensors, final_state, metrics_rows, tiny_options

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (benchmarks/device_check.sh)")]


def tiny(tmp_path, recipe="dcgan", **overrides):
    return tiny_options(tmp_path / "runs", recipe, device="cuda", **overrides)


@pytest.mark.parametrize("precision, channels_last", [("fp32", False), ("fp32", True), ("bf16", True), ("fp16", True)])
def test_each_precision_trains_with_finite_losses(tmp_path, precision, channels_last):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    result = train(tiny(tmp_path, precision=precision, channels_last=channels_last, steps=20,
                        augment={"mode": "ada", "target": 0.6}))
    rows = [r for r in metrics_rows(result.run_dir) if "loss/d" in r]
    assert rows and all(torch.isfinite(torch.tensor([r["loss/d"], r["loss/g"]])).all() for r in rows)
    state = ckpt.load_checkpoint(result.run_dir)
    assert all(t.device.type == "cpu" for t in state["G"].values())  # checkpoints load anywhere
    images = load_generator(result.run_dir, device="cpu").sample(4, seed=0)
    assert images.shape == (4, 1, 16, 16) and 0 <= images.min() and images.max() <= 1


@pytest.mark.parametrize("augment", [{"mode": "fixed", "p": 0.5}, {"mode": "fixed", "p": 0.5, "pipe": "keras"}],
                         ids=["bgc", "keras"])
def test_same_seed_same_run_and_resume_is_exact_on_the_gpu(tmp_path, augment):
    """With deterministic algorithms (the default `deterministic: true`), as on the CPU: the
    augmentations resample by gather there, since grid_sample's CUDA backward uses atomics."""
    options = tiny(tmp_path, augment=augment, checkpoint_every=4)
    a = final_state(train(options, steps=8, name="a"))
    b = final_state(train(options, steps=8, name="b"))
    first = train(options, steps=4, name="split")
    split = final_state(train(resume=first.run_dir, steps=8))
    for key in ("G", "D", "G_ema", "opt_g", "opt_d"):
        assert_same_tensors(a[key], b[key], key)
        assert_same_tensors(a[key], split[key], key)


@pytest.mark.parametrize("recipe, data", [
    ("cyclegan", {"source": "digits-a", "source_b": "digits-b", "size": 16}),
    ("pix2pix", {"source": "digits-edges", "size": 16}),
    ("stylegan", {"source": "digits", "size": 16}),
    ("progan", {"source": "digits", "size": 16}),
])
def test_every_task_trains_on_the_gpu(tmp_path, recipe, data):
    result = train(tiny(tmp_path, recipe, data=data, steps=6, batch=4))
    assert result.step == 6
    assert ckpt.load_checkpoint(result.run_dir)["step"] == 6


def test_compiled_nets_train_on_the_gpu(tmp_path):
    """`--set compile=true` on CUDA (Triton kernels): the run trains and its checkpoint loads
    into uncompiled nets (compiling in place keeps the state-dict keys)."""
    result = train(tiny(tmp_path, compile=True, steps=3))
    rows = [r for r in metrics_rows(result.run_dir) if "loss/d" in r]
    assert rows and all(torch.isfinite(torch.tensor([r["loss/d"], r["loss/g"]])).all() for r in rows)
    assert load_generator(result.run_dir, device="cuda").sample(2, seed=0).shape == (2, 1, 16, 16)
