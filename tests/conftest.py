"""Shared test helpers. Tests import the *installed* enigma_edge (never the source tree), so
subprocesses run from a temporary directory."""
from __future__ import annotations

import subprocess
import sys
import tempfile

import pytest


def run_cli(*args: str, check: bool = False, timeout: float = 600, env=None, input=None):
    """Run `enigma-edge ARGS...` in a fresh interpreter; returns CompletedProcess (text)."""
    code = "import sys; from enigma_edge.cli import main; sys.exit(main(sys.argv[1:]))"
    with tempfile.TemporaryDirectory() as cwd:
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                              check=check, timeout=timeout, cwd=cwd, env=env, input=input)


@pytest.fixture
def cli():
    return run_cli
