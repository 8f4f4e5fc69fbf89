"""`enigma-edge boards` and `enigma-edge doctor`, run as a user runs them (fresh interpreter)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import run_cli
from test_boards import _tiny_gguf

FIXTURES = Path(__file__).parent / "fixtures" / "boards"


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ("ENIGMA_EDGE_BOARD", "GPIOZERO_PIN_FACTORY")}
    env["ENIGMA_EDGE_CONFIG"] = str(tmp_path / "config.toml")
    env.update(extra)
    return env


def _row(out: str, name: str) -> str:
    return next(line for line in out.splitlines() if line[2:].startswith(name + " "))


def test_boards_marks_the_detected_board(tmp_path):
    r = run_cli("boards", "--root", str(FIXTURES / "pi_5"), env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert _row(r.stdout, "pi_5").startswith("*>")
    assert _row(r.stdout, "pi_4").startswith("  ")
    assert "* detected: pi_5 (revision code d04170: Raspberry Pi 5, BCM2712, 8192 MB)" in r.stdout
    for name in ("pi_zero", "pi_zero2", "pi_3", "pi_4", "desktop"):
        _row(r.stdout, name)


def test_boards_shows_the_override(tmp_path):
    (tmp_path / "config.toml").write_text('board = "pi_zero2"\n')
    r = run_cli("boards", "--root", str(FIXTURES / "pi_4"), env=_env(tmp_path, ENIGMA_EDGE_BOARD="pi_3"))
    assert r.returncode == 0, r.stderr
    assert _row(r.stdout, "pi_4").startswith("* ") and _row(r.stdout, "pi_3").startswith(" >")
    assert "> selected: pi_3 (by ENIGMA_EDGE_BOARD)" in r.stdout
    r = run_cli("boards", "--root", str(FIXTURES / "pi_4"), env=_env(tmp_path))
    assert "> selected: pi_zero2 (by config file" in r.stdout


def test_boards_check_reports_a_bad_profile(tmp_path):
    src = (FIXTURES.parent.parent.parent / "boards" / "pi_4.toml").read_text()
    bad = tmp_path / "pi_4.toml"
    bad.write_text(src.replace("n_ctx = 4096", "n_ctx = 64"))
    r = run_cli("boards", "--check", str(bad), env=_env(tmp_path))
    assert r.returncode == 1
    assert r.stderr.strip() == f"enigma-edge boards: error: {bad}: llm.n_ctx: 64 is out of range 128..1048576"
    good = tmp_path / "ok" / "pi_4.toml"
    good.parent.mkdir()
    good.write_text(src)
    r = run_cli("boards", "--check", str(good), env=_env(tmp_path))
    assert r.returncode == 0 and "valid profile 'pi_4'" in r.stdout


def _section(out: str, title: str) -> str:
    m = re.search(rf"^== {re.escape(title)}\n(.*?)(?=^== |\Z)", out, re.S | re.M)
    assert m, f"no section {title!r} in:\n{out}"
    return m.group(1)


def test_doctor_on_a_recorded_zero2(tmp_path):
    model = tmp_path / "tiny.gguf"
    _tiny_gguf(model)
    r = run_cli("doctor", "--root", str(FIXTURES / "pi_zero2"), "--model", str(model), env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    board = _section(r.stdout, "board")
    assert "pi_zero2 - Raspberry Pi Zero 2 W" in board and "(chosen by detected)" in board
    assert "revision         902120: Pi Zero 2 W, BCM2837, 512 MB, made by Sony UK" in board
    assert "MemAvailable 324 MB" in board
    assert "fp asimd evtstrm crc32 cpuid (from auxv HWCAP)" in _section(r.stdout, "ISA path")
    plan = _section(r.stdout, "memory plan")
    assert "decision         load" in plan and "(512 x q8_0)" in plan  # context capped by the model's 512
    assert "thermal_zone0:cpu-thermal 46.7 C" in _section(r.stdout, "thermal")
    assert "led=17" in _section(r.stdout, "gpio")
    where = _section(r.stdout, "what runs where")
    assert "LLM              local, 3 thread(s) (+1 core(s) kept for audio), 512 tokens, q8_0 KV" in where
    assert "pocketsphinx" in where


def test_doctor_offloads_a_zero_w_to_the_configured_peer(tmp_path):
    model = tmp_path / "tiny.gguf"
    _tiny_gguf(model)
    (tmp_path / "config.toml").write_text('[[offload.peers]]\nurl = "http://desktop.lan:8080"\nname = "desk"\n')
    r = run_cli("doctor", "--root", str(FIXTURES / "pi_zero"), "--model", str(model), env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "decision         offload" in _section(r.stdout, "memory plan")
    assert "peers            desk http://desktop.lan:8080" in _section(r.stdout, "offload")
    assert "LLM              peer http://desktop.lan:8080" in _section(r.stdout, "what runs where")


def test_doctor_warns_about_a_32bit_os_on_a_pi3(tmp_path):
    model = tmp_path / "tiny.gguf"
    _tiny_gguf(model)
    r = run_cli("doctor", "--root", str(FIXTURES / "pi_3"), "--model", str(model), env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    isa = _section(r.stdout, "ISA path")
    assert "neon" in isa and "profile expects asimd but the CPU does not report it" in isa


def test_doctor_unknown_board_is_one_clear_error(tmp_path):
    r = run_cli("doctor", "--board", "pi_6", env=_env(tmp_path))
    assert r.returncode == 1
    assert r.stderr.startswith("enigma-edge doctor: error: --board: unknown board 'pi_6'; known boards:")


@pytest.mark.slow
def test_doctor_on_this_machine_plans_the_default_model(tmp_path):
    models = pytest.importorskip("enigma_edge.models")
    try:
        models.default_model_path(assemble=False)
    except models.ModelNotFoundError:
        pytest.skip("the default model ([model] extra) is not installed")
    r = run_cli("doctor", env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "desktop - x86-64 desktop" in _section(r.stdout, "board")
    isa = _section(r.stdout, "ISA path")
    import enigma_edge
    assert f"kernel path      {enigma_edge.cpu_info()['isa']} (available: " in isa
    plan = _section(r.stdout, "memory plan (default model)")
    assert "gemma-3-270m-q4_k_m.gguf (gemma3, 18 layers, 1 KV heads x 256, context 32768" in plan
    assert "decision         load" in plan and "weights 235 MB + KV 144 MB (8192 x f16)" in plan
    for title in ("thermal", "audio", "gpio", "serial", "offload", "what runs where"):
        _section(r.stdout, title)
