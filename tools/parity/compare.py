"""Our engine against llama.cpp on the default model: greedy continuations and logits.

    python tools/parity/compare.py                       # the CPU's kernels, default numerics
    ENIGMA_EDGE_ISA=scalar ENIGMA_EDGE_NUMERICS=llama python tools/parity/compare.py   # exact mode

Per prompt: how many of llama.cpp's 32 greedy tokens we reproduce, and the max |logit diff| over
the prompt positions, the 32 incremental steps (teacher-forced on llama.cpp's tokens) and a batch
evaluation of the whole sequence. llama.cpp runs with f16 KV and flash attention off, and is reset
before every prompt (generate(reset=True) would otherwise reuse the cached BOS token and evaluate a
different batch).
"""
from __future__ import annotations

import numpy as np

PROMPTS = ["The capital of France is", "def fibonacci(n):\n    return", "Once upon a time",
           "Water boils at", "Q: How many legs does a spider have?\nA:"]


def main() -> None:
    import llama_cpp

    from enigma_edge import _core
    from enigma_edge.models import default_model_path

    path = str(default_model_path())
    ref = llama_cpp.Llama(path, n_ctx=256, n_threads=2, logits_all=True, flash_attn=False, verbose=False)
    eng = _core.Engine(path, 256, 2, "f16")
    for prompt in PROMPTS:
        ids = ref.tokenize(prompt.encode())
        n = len(ids)
        ref.reset()
        cont = []
        for t in ref.generate(ids, temp=0.0, top_k=1, reset=True):
            cont.append(t)
            if len(cont) == 32:
                break
        inc = np.array(ref.scores[:n + 31])
        ref.reset()
        ref.eval(ids + cont)
        bat = np.array(ref.scores[:n + 32])
        eng.reset()
        eng.decode(ids, True)
        rows = [eng.logits()]
        for t in cont[:31]:
            eng.decode([t], False)
            rows.append(eng.logits()[-1:])
        d_inc = np.abs(np.concatenate(rows) - inc).max(1)
        eng.reset()
        eng.decode(ids + cont, True)
        d_bat = np.abs(eng.logits() - bat).max()
        eng.reset()
        eng.decode(ids, False)
        got = []
        for _ in range(32):
            got.append(int(eng.logits()[-1].argmax()))
            eng.decode([got[-1]], False)
        match = next((k for k in range(32) if got[k] != cont[k]), 32)
        print(f"{prompt[:24]!r:28} greedy {match:2d}/32  max|diff| prompt {d_inc[:n].max():.4f}  "
              f"steps {d_inc[n:].max():.4f}  batch {d_bat:.4f}")


if __name__ == "__main__":
    main()
