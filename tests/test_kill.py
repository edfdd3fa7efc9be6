"""Kill anywhere: a run SIGKILLed at random moments, and resumed with `gankit train --resume` after
each kill, ends bit-identical to the same run left alone, for every update strategy.

Each run is a command-line process (`gankit train`), killed with SIGKILL: no handler, no
`finally`, no flush. Where the kills land is drawn from a seeded random schedule and measured in
the run's progress, not in seconds, so a schedule lands on the same instructions on a slow or a
busy machine:

    call       the N-th call of a gankit function (setup, a step, logging, samples, checkpoints)
    torn       while a checkpoint is written: half of it is in the temporary file
    unrenamed  the temporary is complete and on disk, not yet renamed into place
    renamed    just after the rename, before older checkpoints are pruned

Every schedule holds a kill during a checkpoint write (torn or unrenamed). After a kill the run is
resumed from its folder, or started again under its name when it had no checkpoint yet.

Importing torch and gankit takes seconds, far longer than one of these runs, so the runs are forked
from one server process (this file run as a script) that has imported them and run nothing: each
child is a fresh training process that only skipped the imports (and shares the server's hash
seed). The kill points are installed in the child alone (a profile hook and wrappers of
torch.save / os.replace); gankit is unchanged.
"""

from __future__ import annotations

import io
import json
import os
import random
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import gankit.api  # noqa: F401  (registers every task's update strategies)
from gankit.training import checkpoint as ckpt
from gankit.training.updates import UPDATES

from helpers import assert_same_tensors, metrics_rows, tiny_options

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the runs are forked (POSIX only)")

STEPS = 6
EVERY = 2  # checkpoint_every: checkpoints at 2, 4 and 6, of which the newest 2 are kept
ADA = {"mode": "ada", "target": -0.9, "ada_kimg": 0.1, "interval": 1}  # p moves from the first step

# per update strategy, the smallest recipe (and data) that trains with it
RUNS = {
    "joint": ("dcgan", {"augment": ADA}),
    # StyleGAN2: lazy R1 and path length (pl_mean is state) on the 4th steps, EMA ramp-up, ADA,
    # two D steps per step (two batches drawn)
    "alternating": ("stylegan", {"augment": ADA, "d_steps": 2, "penalty_every": 4}),
    "two_phase": ("mlp", {}),  # Hands-On ML's nets: no batch norm in D for the mixed pass
    "cycle": ("cyclegan", {"data": {"source": "digits-a", "source_b": "digits-b", "size": 16}}),  # its pools
    "pix2pix": ("pix2pix", {"data": {"source": "digits-edges", "size": 16}}),
}
IGNORED_IN_LOGS = ("time", "speed/")  # wall-clock values: the only ones a resume may change


def options(runs_dir: Path, update: str) -> dict:
    recipe, overrides = RUNS[update]
    return tiny_options(runs_dir, recipe, **{"batch": 4, "checkpoint_every": EVERY, "keep_checkpoints": 2,
                                             "sample_every": 3, "seed": 3, **overrides})


@pytest.mark.parametrize("update", UPDATES.names())
def test_random_kills_and_resumes_end_bit_identical(update, server, tmp_path):
    """Three kills: anywhere in the first launch (setup included); during a checkpoint write (torn
    or unrenamed); then one more of any kind. The first two land before the run's end."""
    assert update in RUNS, f"give the update strategy {update!r} a run in RUNS so that it is killed too"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(options(Path("runs"), update)))  # runs/ of the working folder
    fresh = ["train", "--config", config, "--steps", STEPS, "--name", "run"]

    reference = tmp_path / "reference"
    calls = server.run(fresh, reference, count_calls=True)["calls"]  # gankit calls of a whole run
    straight = reference / "runs" / "run"
    assert ckpt.load_checkpoint(straight)["step"] == STEPS

    run_dir = tmp_path / "killed" / "runs" / "run"
    rng = random.Random(f"kill-anywhere-{update}")
    schedule = ["call", rng.choice(["torn", "unrenamed"]), rng.choice(["call", "torn", "unrenamed", "renamed"])]
    landed = []  # (kill, newest checkpoint before, after)
    for launch in range(len(schedule) + 3):
        start = _newest_step(run_dir)
        if start == STEPS:
            break
        kind = schedule[launch] if launch < len(schedule) else None
        if kind == "call":  # within the first 3/4 of a whole run, or of what is left of one
            within = calls * 3 // 4 if launch == 0 else calls * (STEPS - start) // STEPS
            kill = {"at": "call", "n": rng.randint(1, within)}
        elif kind is not None:  # one of the checkpoints this launch writes (renamed: not the last,
            # so that a resume follows)
            steps = range(start + EVERY, STEPS + (kind != "renamed"), EVERY) or [STEPS]
            kill = {"at": kind, "step": rng.choice(steps)}
        else:
            kill = None
        argv = ["train", "--resume", run_dir] if start else fresh  # no checkpoint yet: start again
        result = server.run(argv, run_dir.parent.parent, kill=kill)
        if result["exit"] == -signal.SIGKILL:
            assert kill is not None
            landed.append((kill, start, _newest_step(run_dir)))
        else:
            assert result["exit"] == 0, f"{update}: {' '.join(map(str, argv))} failed after {landed}:\n{result['log']}"
    else:
        pytest.fail(f"{update}: the run does not finish (kills: {landed})")
    print(f"{update}: kills (kill, newest checkpoint before, after): {landed}")  # pytest -rP shows it
    mid_run = [k for k in landed if k[2] < STEPS]
    assert len(mid_run) >= 2, f"{update}: only {len(mid_run)} kills landed before the run's end: {landed}"
    assert any(k[0]["at"] in ("torn", "unrenamed") for k in mid_run), landed

    a, b = ckpt.load_checkpoint(straight), ckpt.load_checkpoint(run_dir)
    assert set(a) == set(b) and {"G", "D", "G_ema", "opt_g", "opt_d", "augment", "rng"} <= set(a)
    for key in sorted(set(a) - {"config"}):  # every tensor: weights, moments, ADA p, RNG, pools ...
        assert_same_tensors(a[key], b[key], f"{update}: {key} after kills {landed}")
    if RUNS[update][1].get("augment") == ADA:
        assert a["augment"]["p"] > 0  # it moved, so comparing it means something
    assert _config(a) == _config(b)
    assert _logged(run_dir) == _logged(straight), f"{update}: metrics.jsonl differs after kills {landed}"

    assert not [p for p in run_dir.rglob("*") if ".tmp" in p.name], f"temporary files left behind: {landed}"
    assert not (run_dir / "checkpoints" / "damaged").exists()  # no kill leaves a checkpoint that does not load
    kept = {p.name for p in ckpt.list_checkpoints(run_dir)}  # (one more when killed before pruning at the end)
    assert {p.name for p in ckpt.list_checkpoints(straight)} <= kept


def _newest_step(run_dir: Path) -> int:
    found = ckpt.list_checkpoints(run_dir)
    return ckpt.step_of(found[-1]) if found else 0


def _config(state: dict) -> dict:
    return {k: v for k, v in state["config"].items() if k != "runs_dir"}


def _logged(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if not k.startswith(IGNORED_IN_LOGS)} for row in metrics_rows(run_dir)]


# ---------------------------------------------------------------------------------------- server
class Server:
    """The test's side: launch `gankit ARGV` in a fresh child of the server and wait for its end."""

    def __init__(self, folder: Path):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # one thread: exact on CPU
        self.folder = folder
        self.process = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        cwd=folder, env=env, text=True)
        assert self._reply(timeout=300) == {"ready": True}
        self.launched = 0

    def run(self, argv: list, cwd: Path, kill: dict | None = None, count_calls: bool = False) -> dict:
        """{"exit": the exit code (-9: killed), "log": its stdout and stderr, "calls": gankit calls made}."""
        self.launched += 1
        cwd.mkdir(parents=True, exist_ok=True)
        log, calls = self.folder / f"{self.launched}.log", self.folder / f"{self.launched}.calls"
        request = {"argv": [str(arg) for arg in argv], "cwd": str(cwd), "log": str(log), "kill": kill,
                   "calls": str(calls) if count_calls else None}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        pid = self._reply(timeout=60)["pid"]
        try:
            reply = self._reply(timeout=300)
        except AssertionError:  # hung: end it, and say so
            os.kill(pid, signal.SIGKILL)
            self._reply(timeout=60)
            raise AssertionError(f"gankit {' '.join(request['argv'])} did not end in 300 s: "
                                 f"{log.read_text() if log.exists() else ''}") from None
        reply["log"] = log.read_text() if log.exists() else ""
        if count_calls:
            reply["calls"] = int(calls.read_text())
        return reply

    def _reply(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        assert ready, "the training server did not answer"
        line = self.process.stdout.readline()
        assert line, f"the training server ended (exit {self.process.wait()})"
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("server"))
    yield server
    server.close()


def serve() -> None:
    """The server's side: for each request line on stdin, fork a child that runs the command line
    with its kill point armed; answer {"pid": ...} at once and {"exit": ...} when it ends."""
    torch.set_num_threads(1)
    # what a training run imports on first use (the digits come from scikit-learn, ADA's filters
    # from PyWavelets, logs go to TensorBoard), imported once here instead of once per run
    import PIL.Image  # noqa: F401
    import pywt  # noqa: F401
    import sklearn.datasets  # noqa: F401
    from torch.utils import tensorboard  # noqa: F401

    import gankit.cli  # noqa: F401
    import gankit.run  # noqa: F401

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)  # never returns
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"exit": os.waitstatus_to_exitcode(status)}), flush=True)


def _child(request: dict) -> None:
    code = 1
    try:
        os.chdir(request["cwd"])
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(log, 1)
        os.dup2(log, 2)
        from gankit.cli import main

        calls = _arm(request["kill"])
        try:
            main(request["argv"])
            code = 0
        except SystemExit as exit_:
            code = 0 if exit_.code is None else exit_.code if isinstance(exit_.code, int) else 1
        finally:
            sys.setprofile(None)
        if request["calls"]:
            Path(request["calls"]).write_text(str(calls[0]))
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _arm(kill: dict | None) -> list[int]:
    """Install the kill point in this process; the gankit calls made so far (a one-item list)."""
    import gankit

    package = os.path.dirname(gankit.__file__) + os.sep
    calls = [0]
    at = (kill or {}).get("at")

    def count(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith(package):
            calls[0] += 1
            if at == "call" and calls[0] == kill["n"]:
                _die()

    sys.setprofile(count)
    if at in ("torn", "unrenamed", "renamed"):
        name = ckpt.checkpoint_path(Path("."), kill["step"]).name
        save, replace = torch.save, os.replace

        def torn_save(obj, f, *args, **kwargs):
            target = f if isinstance(f, (str, os.PathLike)) else getattr(f, "name", "")
            if at == "torn" and name in Path(str(target)).name:  # the temporary of that checkpoint
                whole = io.BytesIO()
                save(obj, whole, *args, **kwargs)
                with (open(target, "wb") if f is target else f) as out:
                    out.write(whole.getvalue()[: len(whole.getvalue()) // 2])
                    out.flush()
                    os.fsync(out.fileno())
                    _die()
            return save(obj, f, *args, **kwargs)

        def killed_replace(src, dst, *args, **kwargs):
            if at == "unrenamed" and Path(dst).name == name:
                _die()
            result = replace(src, dst, *args, **kwargs)
            if at == "renamed" and Path(dst).name == name:
                _die()
            return result

        torch.save, os.replace = torn_save, killed_replace
    return calls


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    serve()
