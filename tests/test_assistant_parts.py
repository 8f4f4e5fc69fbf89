"""Memory persistence and bounds, prompts, and the tool policy (allow-list, validation, rate)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from enigma_edge.assistant_parts import (
    FEW_SHOT_STOP, Memory, RateLimit, ToolDenied, ToolPolicy, chat_messages, few_shot_prompt,
)


def test_memory_persists_and_reloads(tmp_path):
    m = Memory(max_chars=1000, path=tmp_path / "mem.json")
    m.add("hello", "hi there")
    m.add("what time is it", "It is noon.")
    again = Memory(max_chars=1000, path=tmp_path / "mem.json")
    assert again.turns == [("hello", "hi there"), ("what time is it", "It is noon.")]


def test_memory_drops_oldest_turns_to_fit():
    m = Memory(max_chars=30)
    for i in range(10):
        m.add(f"q{i}", "a" * 8)
    assert sum(len(q) + len(a) for q, a in m.turns) <= 30
    assert m.turns[-1][0] == "q9" and m.turns[0][0] != "q0"


def test_memory_rejects_a_tampered_file_and_starts_from_backup(tmp_path):
    p = tmp_path / "mem.json"
    m = Memory(path=p)
    m.add("a", "b")
    m.add("c", "d")
    p.write_text(json.dumps({"format": 1, "crc32": 1, "data": {"turns": "x"}}))
    assert Memory(path=p).turns == [("a", "b")]  # the .bak holds the state before the last turn


def test_memory_kill_during_turn_loses_at_most_that_turn(tmp_path):
    p = tmp_path / "mem.json"
    code = textwrap.dedent(f"""
        import os, signal
        from enigma_edge.assistant_parts import Memory
        m = Memory(path={str(p)!r})
        for i in range(5):
            m.add("q%d" % i, "a%d" % i)
        os.kill(os.getpid(), signal.SIGKILL)   # dies mid-conversation, before the 6th turn
    """)
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path)
    assert [q for q, _ in Memory(path=p).turns] == [f"q{i}" for i in range(5)]


def test_few_shot_prompt_shape():
    m = Memory()
    m.add("Who wrote Hamlet?", "Shakespeare wrote Hamlet.")
    p = few_shot_prompt("  what is   two plus two? ", m)
    assert p.endswith("Q: Who wrote Hamlet?\nA: Shakespeare wrote Hamlet.\nQ: what is two plus two?\nA:")
    assert "\nQ:" in FEW_SHOT_STOP


def test_chat_messages_roles():
    m = Memory()
    m.add("x", "y")
    msgs = chat_messages("z", m, system="be brief")
    assert [d["role"] for d in msgs] == ["system", "user", "assistant", "user"]


def _validate(name, args):
    if name not in ("move", "stop", "set_pin"):
        raise ValueError(f"unknown tool {name!r}")
    if name == "move":
        if set(args) - {"direction", "speed"}:
            raise ValueError("unexpected field")
        if not 0 <= args.get("speed", 0) <= 1:
            raise ValueError("speed out of range")
    return dict(args)


def test_policy_allow_list_per_source():
    pol = ToolPolicy(_validate)
    assert pol.check("voice", "move", {"direction": "forward", "speed": 0.5})["speed"] == 0.5
    with pytest.raises(ToolDenied, match="not allowed for source 'peer'"):
        pol.check("peer", "move", {"direction": "forward", "speed": 0.5})
    assert pol.check("peer", "stop", {}) == {}   # stop is always allowed
    with pytest.raises(ToolDenied, match="unknown source"):
        pol.check("internet", "stop", {})


def test_policy_rejects_invalid_calls():
    pol = ToolPolicy(_validate)
    for name, args in [("launch", {}), ("move", {"speed": 5}), ("move", {"speed": 0.1, "x": 1}),
                       ("move", "fast")]:
        with pytest.raises(ToolDenied):
            pol.check("voice", name, args)
    assert pol.denied["invalid"] == 3 and pol.denied["not_allowed"] == 1


def test_policy_rate_limits_but_never_blocks_stop():
    pol = ToolPolicy(_validate, default_limit=(0.001, 2))
    pol.check("voice", "move", {"speed": 0.1})
    pol.check("voice", "move", {"speed": 0.1})
    with pytest.raises(ToolDenied, match="rate limit"):
        pol.check("voice", "move", {"speed": 0.1})
    for _ in range(10):
        pol.check("voice", "stop", {})


def test_rate_limit_refills():
    r = RateLimit(per_second=10, burst=1)
    t0 = r._t
    assert r.take(t0) and not r.take(t0 + 0.01) and r.take(t0 + 0.2)
