"""Multi-process training under torchrun on CPU (gloo, 2 processes): the run completes, images
add up across ranks, rank 0 alone writes, the checkpoint resumes in one process, and 2 ranks x B
match 1 process x 2B (no batch norm, no dropout) to float tolerance."""

import json
import os
import subprocess
import sys

import pytest
import torch

from gankit import load_generator, train
from gankit.training import checkpoint as ckpt
from gankit.seeds import derive_seed
from gankit.training.step import StepContext

# convgan without batch norm or dropout: then a step's gradient is a plain mean over the batch
MODEL = ["--recipe", "convgan", "--set", "model.latent_dim=8", "--set", "model.g_widths=[8,8]",
         "--set", "model.g_strides=[2,2]", "--set", "model.g_kernel=3", "--set", "model.d_widths=[8,8]",
         "--set", "model.d_kernel=3", "--set", "model.g_norm=none", "--set", "model.d_dropout=0.0"]


def torchrun(tmp_path, name, steps, batch=4, extra=()):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
               "-m", "gankit", "train", "--data", "digits", "--size", "16", "--batch", str(batch),
               "--steps", str(steps), "--runs-dir", str(tmp_path / "runs"), "--name", name,
               "--no-progress", "--aug", "none", "--sample-every", "100", "--device", "cpu",
               "--set", "log_every=1", *MODEL, *extra]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return tmp_path / "runs" / name, done


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    return torchrun(tmp_path_factory.mktemp("ddp"), "ddp", steps=3)


def test_two_processes_complete_and_rank_zero_writes(ddp_run):
    run_dir, done = ddp_run
    state = ckpt.load_checkpoint(run_dir)
    assert state["step"] == 3 and state["images_seen"] == 3 * 2 * 4  # both ranks' images
    assert state["world_size"] == 2
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]  # one writer
    assert done.stdout.count("trained 3 steps") == 1
    images = load_generator(run_dir).sample(4)  # loads in a single process
    assert images.shape == (4, 1, 16, 16)


def test_a_two_process_checkpoint_resumes_in_one_process(ddp_run, tmp_path):
    run_dir, _ = ddp_run
    copy = tmp_path / "copy.pt"
    copy.write_bytes(ckpt.list_checkpoints(run_dir)[-1].read_bytes())
    result = train(resume=copy, steps=5, runs_dir=str(tmp_path / "runs"))
    state = ckpt.load_checkpoint(result.run_dir)
    assert state["step"] == 5 and state["world_size"] == 1
    assert state["images_seen"] == 3 * 2 * 4 + 2 * 4
    assert state["batches_drawn"] == 3 * 2 + 2  # continues after the images both ranks drew


def test_two_ranks_of_b_match_one_process_of_2b(tmp_path, monkeypatch):
    steps, batch = 3, 4
    run_dir, _ = torchrun(tmp_path, "pair", steps=steps, batch=batch)
    # One process with batch 2B, fed the latents each rank drew from its own stream.
    streams = [torch.Generator().manual_seed(derive_seed(0, "train", r)) for r in range(2)]

    def latents(self, n):
        assert n == 2 * batch
        return torch.cat([torch.randn(batch, self.G.latent_dim, generator=g) for g in streams])

    monkeypatch.setattr(StepContext, "latents", latents)
    from gankit.cli import _parse_set

    options = _parse_set([a for a in MODEL if a not in ("--set", "--recipe", "convgan")])
    single = train({**options, "recipe": "convgan", "data": {"source": "digits", "size": 16},
                    "batch": 2 * batch, "augment": {"mode": "none"}, "progress": False, "device": "cpu",
                    "runs_dir": str(tmp_path / "runs"), "name": "single", "sample_every": 100}, steps=steps)
    a, b = ckpt.load_checkpoint(run_dir), ckpt.load_checkpoint(single.run_dir)
    for net in ("G", "D"):
        for key, value in a[net].items():
            torch.testing.assert_close(value, b[net][key], atol=1e-5, rtol=1e-4, msg=f"{net}.{key}")
