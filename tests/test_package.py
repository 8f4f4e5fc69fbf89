import subprocess
import sys

import pytest

import enigma_edge


def test_version_is_exposed():
    assert enigma_edge.__version__ == "0.1.0"


def test_import_is_cheap():
    """`import enigma_edge` must not pull numpy, the C++ core or any capability."""
    code = (
        "import sys, time; t=time.perf_counter(); import enigma_edge; dt=time.perf_counter()-t;"
        "heavy=[m for m in ('numpy','enigma_edge._core','torch','onnxruntime','jinja2') if m in sys.modules];"
        "print(dt, ','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    heavy = out.split()[1:]
    assert heavy == [], f"import enigma_edge loaded heavy modules: {heavy}"


def test_core_module_loads():
    from enigma_edge import _core
    assert _core.ggml_type_name(12) == "Q4_K"
    assert _core.ggml_type_name(4) is None  # Q4_2: removed from ggml


def test_cli_help_lists_commands(cli):
    out = cli("--help", check=True).stdout
    assert "inspect" in out


def test_cli_without_command_is_usage_error(cli):
    assert cli().returncode == 2
