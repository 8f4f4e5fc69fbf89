"""Dump llama.cpp's intermediate tensors (llama-cpp-python, ggml eval callback) for one batch.

    python tools/parity/llama_dump.py OUT.npz 2,818,5279 [--step 506] [--model PATH]

Saves every f32/f16 node as float32 under its graph name (repeats get '#1', '#2'...; e.g.
'attn_norm-0', 'Qcur-0' (matmul), 'Qcur-0#2' (after RoPE), 'kq-0', 'kq_soft_max-0', 'kqv_out-0',
'ffn_geglu-0', 'ffn_out-0', 'l_out-0', 'result_output'). With --step, the batch is evaluated first
and only the tensors of the following one-token decode are kept. Note: the callback splits the
graph per node; for these models the logits are unchanged by it (checked).
"""
from __future__ import annotations

import argparse
import ctypes

import numpy as np


class GgmlTensor(ctypes.Structure):   # ggml.h struct ggml_tensor (GGML_MAX_SRC 10, MAX_NAME 64)
    _fields_ = [("type", ctypes.c_int), ("buffer", ctypes.c_void_p), ("ne", ctypes.c_int64 * 4),
                ("nb", ctypes.c_size_t * 4), ("op", ctypes.c_int), ("op_params", ctypes.c_int32 * 16),
                ("flags", ctypes.c_int32), ("src", ctypes.c_void_p * 10), ("view_src", ctypes.c_void_p),
                ("view_offs", ctypes.c_size_t), ("data", ctypes.c_void_p), ("name", ctypes.c_char * 64),
                ("extra", ctypes.c_void_p), ("padding", ctypes.c_char * 8)]


def main() -> None:
    import llama_cpp
    from llama_cpp import _internals

    from enigma_edge.models import default_model_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("tokens", help="comma-separated token ids")
    ap.add_argument("--step", type=int, help="then decode this token and keep only its tensors")
    ap.add_argument("--model", default=None)
    a = ap.parse_args()
    out: dict[str, np.ndarray] = {}

    def cb(t, ask, _):
        if ask:
            return True
        tt = ctypes.cast(t, ctypes.POINTER(GgmlTensor)).contents
        if tt.type in (0, 1) and tt.data:
            item = 4 if tt.type == 0 else 2
            ne, nb = list(tt.ne), list(tt.nb)
            size = sum((ne[i] - 1) * nb[i] for i in range(4)) + item
            raw = np.frombuffer((ctypes.c_char * size).from_address(tt.data), np.float32 if item == 4 else np.float16)
            arr = np.lib.stride_tricks.as_strided(raw, shape=ne[::-1], strides=nb[::-1]).astype(np.float32)
            name = key = tt.name.decode()
            k = 1
            while key in out:
                key, k = f"{name}#{k}", k + 1
            out[key] = arr
        return True

    cbf = llama_cpp.ggml_backend_sched_eval_callback(cb)
    path = a.model or str(default_model_path())
    llm = llama_cpp.Llama(path, n_ctx=256, n_threads=2, logits_all=True, flash_attn=False, verbose=False)
    cp = llm.context_params
    cp.cb_eval = cbf
    ctx = _internals.LlamaContext(model=llm._model, params=cp, verbose=False)
    toks = [int(x) for x in a.tokens.split(",")]
    batch = _internals.LlamaBatch(n_tokens=256, embd=0, n_seq_max=1, verbose=False)
    batch.set_batch(toks, n_past=0, logits_all=True)
    ctx.decode(batch)
    if a.step is not None:
        out.clear()
        batch.set_batch([a.step], n_past=len(toks), logits_all=True)
        ctx.decode(batch)
    np.savez(a.out, **out)
    print(f"{len(out)} tensors -> {a.out}")


if __name__ == "__main__":
    main()
