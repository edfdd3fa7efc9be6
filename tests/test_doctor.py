"""gankit doctor: its facts agree with torch, and what cannot be written is reported with a hint."""

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from gankit import doctor


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder no file can be made in. Root ignores mode bits, so for root it is also made
    immutable (chattr +i) where the file system allows; otherwise the test is skipped."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = os.geteuid() == 0 and shutil.which("chattr") is not None and \
        subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    try:
        (folder / "probe").touch()
        (folder / "probe").unlink()
        writable = True
    except OSError:
        writable = False
    if not writable:
        yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)
    if writable:
        pytest.skip("cannot make a read-only folder here (root, without chattr +i)")


def test_json_holds_every_section_and_agrees_with_torch(tmp_path, cli):
    code, out, err = cli(["doctor", "--json", "--runs-dir", tmp_path / "runs"])
    assert code == 0, err
    facts = json.loads(out)
    assert {"versions", "cuda", "mps", "cpu", "distributed", "paths", "extras", "checks", "ok"} <= facts.keys()
    assert facts["ok"] and facts["versions"]["torch"] == torch.__version__
    cuda = facts["cuda"]
    assert cuda["available"] == torch.cuda.is_available() and cuda["version"] == torch.version.cuda
    assert len(cuda["devices"]) == (torch.cuda.device_count() if cuda["available"] else 0)
    for device in cuda["devices"]:
        props = torch.cuda.get_device_properties(device["index"])
        assert device["name"] == props.name and device["capability"] == f"{props.major}.{props.minor}"
    assert facts["mps"]["available"] == torch.backends.mps.is_available()
    assert facts["distributed"]["gloo"] == torch.distributed.is_gloo_available()
    assert facts["distributed"]["nccl"] == torch.distributed.is_nccl_available()
    cpu = facts["cpu"]
    assert cpu["capability"] == torch.backends.cpu.get_cpu_capability() and cpu["cores"] == os.cpu_count()
    if os.path.exists("/proc/cpuinfo"):
        assert set(cpu["extensions"]) == {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}
    for name, version in facts["extras"].items():
        try:
            assert version == importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            assert version is None
    runs = facts["paths"]["runs"]
    assert runs["path"] == str(tmp_path / "runs") and runs["writable"] and not runs["exists"]
    assert not (tmp_path / "runs").exists()  # checked, not made
    hub = facts["paths"]["torch_hub"]
    assert hub["path"] == str(torch.hub.get_dir() + "/checkpoints") and "vgg19-dcbb9e9d.pth" in hub["known"]
    assert {c["status"] for c in facts["checks"]} <= {"ok", "warn"}

    code, out, _ = cli(["doctor", "--runs-dir", tmp_path / "runs"])  # the same checks, one line each
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == len(facts["checks"])
    assert all(line.split()[0] in ("ok", "warn") for line in lines)
    assert all("->" in line for line in lines if line.startswith("warn"))  # every warning has a hint


def test_unwritable_caches_are_warnings_with_a_hint(read_only_folder, monkeypatch, tmp_path, cli):
    monkeypatch.setenv("GANKIT_CACHE", str(read_only_folder))
    monkeypatch.setenv("TORCH_HOME", str(read_only_folder / "torch"))
    code, out, err = cli(["doctor", "--json", "--runs-dir", tmp_path / "runs"])
    assert code == 0, err  # the runs can still be saved: warnings only
    facts = json.loads(out)
    for name in ("metrics_cache", "dataset_cache", "torch_hub", "pretrained_cache"):
        place = facts["paths"][name]
        assert place["path"].startswith(str(read_only_folder)) and not place["writable"], name
    checks = {c["what"]: c for c in facts["checks"]}
    assert checks["dataset_cache"]["status"] == "warn" and "set $GANKIT_CACHE to a writable folder" in checks["dataset_cache"]["hint"]
    assert "set $TORCH_HOME" in checks["torch_hub"]["hint"]
    code, out, _ = cli(["doctor", "--runs-dir", tmp_path / "runs"])
    line = next(line for line in out.splitlines() if line.split()[1] == "metrics_cache")
    assert line.startswith("warn") and "NOT writable" in line and "-> " in line and "GANKIT_CACHE" in line


def test_an_unwritable_runs_folder_or_a_broken_torch_is_exit_1(read_only_folder, monkeypatch, cli):
    code, out, _ = cli(["doctor", "--runs-dir", read_only_folder / "runs"])
    line = next(line for line in out.splitlines() if line.split()[1] == "runs")
    assert code == 1 and line.startswith("error") and "writable --runs-dir" in line

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    result = doctor.report(read_only_folder.parent)
    assert not result["ok"] and result["cuda"] is None and result["versions"]["torch"] is None
    assert result["checks"][0]["status"] == "error" and "pytorch.org" in result["checks"][0]["hint"]
