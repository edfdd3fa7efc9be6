"""Fixtures shared by every test module; plain helper functions are in helpers.py."""

from __future__ import annotations

import pytest
import torch

from helpers import run_cli, tiny_options


@pytest.fixture
def tiny(tmp_path):
    """tiny(recipe="dcgan", **overrides) -> options of a seconds-fast run writing under tmp_path."""
    return lambda recipe="dcgan", **overrides: tiny_options(tmp_path / "runs", recipe, **overrides)


@pytest.fixture
def cli(capsys):
    """cli(argv) -> (exit code, stdout, stderr) of the command line run in-process."""
    return lambda argv: run_cli(argv, capsys)


@pytest.fixture
def one_thread():
    """Tiny nets on a shared 2-core machine run several times faster on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def offline(monkeypatch):
    """No network: every weights file must be found on this machine (gankit.weights' probe says no)."""
    from gankit import weights

    monkeypatch.setattr(weights, "network_reachable", lambda *args, **kwargs: False)
