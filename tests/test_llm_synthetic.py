"""Differential test: tiny random llama / qwen2 models (written with the gguf package, real SPM and
BPE vocabularies) — our logits at every position of a 64-token sequence vs llama.cpp's.

Tolerances: F32 weights 1e-4 (same math, float summation order only); quantized weights 0.1 (our
kernels quantize activations to Q8_0 like llama.cpp; rare rounding-boundary flips move a logit by
a few hundredths). llama.cpp runs with flash attention off and an f32 KV cache; ours with f32 KV.
"""
from __future__ import annotations

import numpy as np
import pytest

llama_cpp = pytest.importorskip("llama_cpp")
import _llm_models as tiny  # noqa: E402

CASES = [
    ("llama", "F32", False, 1e-4), ("llama", "Q8_0", False, 0.1), ("llama", "Q4_0", False, 0.1),
    ("llama", "F32", True, 0.1),
    ("qwen2", "F32", False, 1e-4), ("qwen2", "Q8_0", False, 0.1), ("qwen2", "Q4_0", False, 0.1),
    ("qwen2", "F32", True, 0.1),
]


@pytest.fixture(scope="module")
def vocabs():
    return {"llama": tiny.spm_vocab(), "qwen2": tiny.bpe_vocab("qwen2")}


@pytest.mark.parametrize("arch,wtype,mixed,tol", CASES,
                         ids=[f"{a}-{'mixed' if m else w}" for a, w, m, _ in CASES])
def test_logits_match_llama_cpp(tmp_path, vocabs, arch, wtype, mixed, tol):
    from enigma_edge import _core

    path = tiny.write_tiny(tmp_path / f"{arch}.gguf", arch, wtype, vocabs[arch], mixed=mixed, seed=3)
    ref = llama_cpp.Llama(str(path), n_ctx=128, n_threads=1, logits_all=True, flash_attn=False,
                          type_k=0, type_v=0, verbose=False)
    ids = [int(x) for x in np.random.default_rng(7).integers(0, ref.n_vocab(), 64)]
    ref.eval(ids)
    expected = np.array(ref.scores[:64])
    eng = _core.Engine(str(path), 128, 2, "f32")
    eng.decode(ids, True)
    got = eng.logits()
    assert got.shape == expected.shape
    diff = np.abs(got - expected).max(axis=1)
    assert diff.max() < tol, f"max |diff| {diff.max():.3g} at position {diff.argmax()}"
    assert (got.argmax(1) == expected.argmax(1)).all()


def test_f16_and_q8_kv_close_to_f32(tmp_path, vocabs):
    from enigma_edge import _core

    path = tiny.write_tiny(tmp_path / "m.gguf", "llama", "F32", vocabs["llama"], seed=5, n_head=2, n_head_kv=1)
    ids = list(range(300, 364))
    out = {}
    for kv in ("f32", "f16", "q8_0"):
        e = _core.Engine(str(path), 128, 1, kv)
        e.decode(ids, True)
        out[kv] = e.logits()
    assert np.abs(out["f16"] - out["f32"]).max() < 0.02
    assert np.abs(out["q8_0"] - out["f32"]).max() < 0.2
    assert (out["f16"].argmax(1) == out["f32"].argmax(1)).mean() > 0.95


def test_incremental_decode_equals_batch(tmp_path, vocabs):
    """Prefill in one batch vs token by token: same cache, same logits (context shift off)."""
    from enigma_edge import _core

    path = tiny.write_tiny(tmp_path / "m.gguf", "qwen2", "Q8_0", vocabs["qwen2"], seed=9)
    ids = list(range(1000, 1032))
    a = _core.Engine(str(path), 64, 1, "f32")
    a.decode(ids, True)
    b = _core.Engine(str(path), 64, 1, "f32")
    rows = []
    for t in ids:
        b.decode([t])
        rows.append(b.logits()[0])
    np.testing.assert_allclose(np.array(rows), a.logits(), atol=0.1)


def test_context_shift_keeps_going_and_rerotates(tmp_path, vocabs):
    """A full context shifts (keeping n_keep tokens) instead of stopping. In a one-layer model a
    layer's keys depend only on token and position, so the re-rotated cache must give the same
    logits as evaluating the surviving tokens from scratch (deeper layers legitimately differ:
    their cached keys saw the dropped tokens, as in llama.cpp)."""
    from enigma_edge import _core

    path = tiny.write_tiny(tmp_path / "m.gguf", "llama", "F32", vocabs["llama"], seed=11, n_layer=1)
    e = _core.Engine(str(path), 32, 1, "f32")
    e.set_n_keep(4)
    ids = list(range(500, 532))
    e.decode(ids)
    assert e.n_past == 32
    e.decode([600])                       # full: drops half of the non-kept part
    kept = e.tokens
    assert kept[:4] == ids[:4] and kept[-1] == 600 and len(kept) < 32
    fresh = _core.Engine(str(path), 32, 1, "f32")
    fresh.decode(kept)
    np.testing.assert_allclose(e.logits()[-1], fresh.logits()[-1], atol=1e-3)


def test_errors_name_missing_hyperparameters_and_arch(tmp_path, vocabs):
    import gguf
    from enigma_edge import _core

    p = tmp_path / "bad.gguf"
    w = gguf.GGUFWriter(str(p), "llama")
    w.add_embedding_length(64)
    w.add_tensor("token_embd.weight", np.zeros((8, 64), np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    with pytest.raises(RuntimeError, match="llama.block_count"):
        _core.Engine(str(p), 64, 1, "f16")
    p2 = tmp_path / "arch.gguf"
    w = gguf.GGUFWriter(str(p2), "mamba")
    w.add_tensor("token_embd.weight", np.zeros((8, 64), np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    with pytest.raises(RuntimeError, match="unsupported architecture 'mamba'"):
        _core.Engine(str(p2), 64, 1, "f16")
    with pytest.raises(FileNotFoundError):
        _core.Engine(str(tmp_path / "missing.gguf"), 64, 1, "f16")
    with pytest.raises(RuntimeError, match="kv_type"):
        _core.Engine(str(tiny.write_tiny(tmp_path / "ok.gguf", "llama", "F32", vocabs["llama"])), 64, 1, "q3")
