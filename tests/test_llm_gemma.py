"""The default model (Gemma 3 270M Q4_K_M) against llama.cpp (llama-cpp-python), f16 KV cache and
flash attention off on both sides.

Exact: with the scalar kernels and ENIGMA_EDGE_NUMERICS=llama our engine follows llama.cpp's x86
AVX2 CPU backend operation by operation (activation quantization, fused multiply-add order of every
dot product, its batch-size-dependent prompt kernels, softmax expf, RMSNorm, RoPE, GELU table), so
the greedy continuations are token-identical and the logits equal at every step: measured max
|diff| 0.0 over all 5 prompts x 32 steps (prompt positions included). Asserted: identical ids and
top-5 logits within 1e-5.

Default path (the CPU's SIMD kernels, default numerics): other summation orders, and every prompt
token computed as in a one-token decode. Gemma 270M amplifies float rounding (in llama.cpp itself,
evaluating the same tokens as one batch or one by one moves logits by up to 2.7), so that path is
checked teacher-forced on llama.cpp's continuation: our argmax must equal llama.cpp's unless its
top-2 margin is a near-tie (< 0.5), and llama.cpp's top-5 logits must be within 2.0 of ours
(measured on AVX2: max 1.77; argmax differed only at 3 steps, all with margins < 0.1).

llama.cpp's reference is always generated after ref.reset(): generate(reset=True) alone keeps the
longest cached prefix (the BOS token of the previous prompt) and evaluates only the rest, which is
a different batch and so (above) different numbers.
"""
from __future__ import annotations

import numpy as np
import pytest

llama_cpp = pytest.importorskip("llama_cpp")

PROMPTS = ["The capital of France is", "def fibonacci(n):\n    return", "Once upon a time",
           "Water boils at", "Q: How many legs does a spider have?\nA:"]
N_GEN = 32


@pytest.fixture(scope="module")
def ref():
    from enigma_edge.models import default_model_path

    return llama_cpp.Llama(str(default_model_path()), n_ctx=256, n_threads=2, logits_all=True, flash_attn=False,
                           verbose=False)


def llama_greedy(ref, prompt):
    """llama.cpp's greedy continuation of `prompt` and its logits at each generation step."""
    ids = ref.tokenize(prompt.encode())
    ref.reset()
    cont = []
    for t in ref.generate(ids, temp=0.0, top_k=1, reset=True):
        cont.append(t)
        if len(cont) == N_GEN:
            break
    steps = np.array(ref.scores[len(ids) - 1:len(ids) - 1 + N_GEN])
    return ids, cont, steps


def llama_cpp_is_avx2():
    info = llama_cpp.llama_print_system_info().decode()
    return "AVX2 = 1" in info and "AVX512" not in info


@pytest.mark.slow
@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_continuation_is_identical_to_llama_cpp(ref, prompt, monkeypatch):
    if not llama_cpp_is_avx2():
        pytest.skip("exact numerics are those of llama.cpp's x86 AVX2 build; this llama.cpp was built for: "
                    + llama_cpp.llama_print_system_info().decode())
    from enigma_edge import _core
    from enigma_edge.models import default_model_path

    ids, cont, steps = llama_greedy(ref, prompt)
    monkeypatch.setenv("ENIGMA_EDGE_ISA", "scalar")
    monkeypatch.setenv("ENIGMA_EDGE_NUMERICS", "llama")
    ours = _core.Engine(str(default_model_path()), 256, 2, "f16")
    ours.decode(ids, False)
    got_ids, got_steps = [], []
    for _ in range(N_GEN):
        row = ours.logits()[-1]
        got_steps.append(row)
        got_ids.append(int(row.argmax()))
        ours.decode([got_ids[-1]], False)
    assert got_ids == cont
    got_steps = np.array(got_steps)
    for s in range(N_GEN):
        top = np.argsort(-steps[s])[:5]
        assert np.abs(got_steps[s][top] - steps[s][top]).max() <= 1e-5, f"step {s}: top-5 logits differ"


@pytest.mark.slow
@pytest.mark.parametrize("prompt", PROMPTS)
def test_default_path_teacher_forced_matches_llama_cpp(ref, prompt):
    from enigma_edge import _core
    from enigma_edge.models import default_model_path

    ids, cont, _ = llama_greedy(ref, prompt)
    seq = ids + cont
    ref.reset()
    ref.eval(seq)
    expected = np.array(ref.scores[:len(seq)])
    ours = _core.Engine(str(default_model_path()), 256, 2, "f16")
    ours.decode(seq, True)
    got = ours.logits()
    for p in range(len(ids) - 1, len(seq) - 1):
        e, g = expected[p], got[p]
        top = np.argsort(-e)[:5]
        assert np.abs(e[top] - g[top]).max() < 2.0, f"step {p}: top-5 logits differ"
        margin = e[top[0]] - e[top[1]]
        if margin >= 0.5:
            assert g.argmax() == top[0], f"step {p}: argmax {g.argmax()} != {top[0]} (margin {margin:.2f})"
