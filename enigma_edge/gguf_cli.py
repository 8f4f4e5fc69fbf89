"""`enigma-edge inspect [MODEL.gguf] [--json] [--ctx N] [--tensors]`: what a GGUF model is and
what it needs to run, read from its header only (tensor data is never touched).

RAM estimate (decode, one sequence, batch 1), in bytes:

* weights  = sum of all tensor sizes (memory-mapped: resident once touched, shared, evictable)
* KV cache = n_layer * ctx * n_head_kv * (key_length + value_length) * 2   (K and V in f16)
* scratch  = 4 * (n_vocab + n_head * ctx + 3 * n_embd + 2 * n_ff + 3 * n_head * head_dim)
             (f32 logits, attention scores over the context, residual/norm buffers, FFN
             activations, q/k/v of one token)
* total    = weights + KV cache + scratch   (the Python process itself, ~30-60 MB, is extra)

ctx is the model's context length unless --ctx is given. The KV term is an upper bound for models
with sliding-window layers (gemma3), whose local layers need only the window.

>>> from enigma_edge.gguf_cli import summarize
>>> info = summarize("model.gguf", ctx=2048)  # doctest: +SKIP
>>> info["architecture"], info["ram"]["total"] > info["ram"]["weights"]  # doctest: +SKIP
('gemma3', True)
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Any

# llama.cpp's llama_ftype values (general.file_type)
FILE_TYPES = {
    0: "ALL_F32", 1: "MOSTLY_F16", 2: "MOSTLY_Q4_0", 3: "MOSTLY_Q4_1", 7: "MOSTLY_Q8_0", 8: "MOSTLY_Q5_0",
    9: "MOSTLY_Q5_1", 10: "MOSTLY_Q2_K", 11: "MOSTLY_Q3_K_S", 12: "MOSTLY_Q3_K_M", 13: "MOSTLY_Q3_K_L",
    14: "MOSTLY_Q4_K_S", 15: "MOSTLY_Q4_K_M", 16: "MOSTLY_Q5_K_S", 17: "MOSTLY_Q5_K_M", 18: "MOSTLY_Q6_K",
    32: "MOSTLY_BF16",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", default=None,
                        help="GGUF file (default: the installed default model, Gemma 3 270M Q4_K_M)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--ctx", type=int, default=None,
                        help="context length for the RAM estimate (default: the model's)")
    parser.add_argument("--tensors", action="store_true", help="also list every tensor")
    parser.set_defaults(func=run)


def _len(v) -> int | None:
    try:
        return len(v)
    except TypeError:
        return None


def summarize(path: str | os.PathLike, ctx: int | None = None, tensors: bool = False) -> dict[str, Any]:
    """Header summary of a GGUF file as a JSON-ready dict (see the module docstring for RAM)."""
    from . import gguf

    with gguf.open(path) as f:
        md, types = f.metadata, f.metadata_types
        arch = md.get("general.architecture")
        if not isinstance(arch, str):
            raise ValueError(f"{path}: general.architecture is missing or not a string")

        def key(name: str):
            return md.get(f"{arch}.{name}")

        n_embd, n_layer, n_head = key("embedding_length"), key("block_count"), key("attention.head_count")
        n_head_kv = key("attention.head_count_kv") or n_head
        n_ff = key("feed_forward_length")
        if isinstance(n_ff, (list, tuple)) or hasattr(n_ff, "shape"):  # per-layer FFN sizes
            n_ff = int(max(n_ff))
        head_dim = (n_embd // n_head) if (n_embd and n_head) else None
        k_len = key("attention.key_length") or head_dim
        v_len = key("attention.value_length") or head_dim
        tokens = md.get("tokenizer.ggml.tokens")
        n_vocab = _len(tokens) if tokens is not None else key("vocab_size")
        if n_vocab is None and "token_embd.weight" in f.tensors:
            n_vocab = f.tensors["token_embd.weight"].shape[-1]
        n_ctx_train = key("context_length")
        n_ctx = ctx if ctx is not None else n_ctx_train
        if n_ctx is not None and n_ctx <= 0:
            raise ValueError(f"--ctx must be positive, got {n_ctx}")

        by_type: dict[str, dict[str, int]] = {}
        for t in f.tensors.values():
            e = by_type.setdefault(t.type, {"count": 0, "bytes": 0})
            e["count"] += 1
            e["bytes"] += t.nbytes
        weights = sum(e["bytes"] for e in by_type.values())

        ram: dict[str, Any] = {"ctx": n_ctx, "weights": weights}
        dims = (n_layer, n_ctx, n_head_kv, k_len, v_len, n_embd, n_head)
        if all(isinstance(x, int) for x in dims):
            ram["kv_cache"] = n_layer * n_ctx * n_head_kv * (k_len + v_len) * 2
            ram["scratch"] = 4 * ((n_vocab or 0) + n_head * n_ctx + 3 * n_embd + 2 * (n_ff or 0)
                                  + 3 * n_head * (k_len or 0))
        else:  # not a transformer we know the shape of: weights only, said so
            ram["kv_cache"] = ram["scratch"] = None
        ram["total"] = weights + (ram["kv_cache"] or 0) + (ram["scratch"] or 0)

        metadata = {}
        for k, v in md.items():
            if types[k].startswith("ARRAY"):
                metadata[k] = {"type": types[k], "length": _len(v)}
            else:
                metadata[k] = v
        out: dict[str, Any] = {
            "file": os.fspath(path), "file_size": f.file_size, "version": f.version, "alignment": f.alignment,
            "architecture": arch, "name": md.get("general.name"),
            "file_type": FILE_TYPES.get(md.get("general.file_type"), md.get("general.file_type")),
            "context_length": n_ctx_train, "embedding_length": n_embd, "block_count": n_layer,
            "feed_forward_length": n_ff, "head_count": n_head, "head_count_kv": n_head_kv,
            "key_length": k_len, "value_length": v_len, "vocab_size": n_vocab,
            "tokenizer_model": md.get("tokenizer.ggml.model"),
            "tensor_count": len(f.tensors), "tensor_bytes": weights,
            "tensor_bytes_by_type": dict(sorted(by_type.items(), key=lambda kv: -kv[1]["bytes"])),
            "ram": ram, "metadata": metadata,
        }
        if tensors:
            out["tensors"] = [{"name": t.name, "type": t.type, "shape": list(t.shape), "offset": t.offset,
                               "nbytes": t.nbytes} for t in f.tensors.values()]
        return out


def _mb(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:,.1f} MB"


def format_text(s: dict[str, Any]) -> str:
    ram = s["ram"]
    lines = [
        f"file          {s['file']}  ({_mb(s['file_size'])}, GGUF v{s['version']}, alignment {s['alignment']})",
        f"architecture  {s['architecture']}" + (f"  ({s['name']})" if s["name"] else "")
        + (f"  file type {s['file_type']}" if s["file_type"] is not None else ""),
        f"context       {s['context_length']}",
        f"embedding     {s['embedding_length']}",
        f"blocks        {s['block_count']}",
        f"feed-forward  {s['feed_forward_length']}",
        f"heads         {s['head_count']} (kv {s['head_count_kv']}), key/value length {s['key_length']}/{s['value_length']}",
        f"vocab         {s['vocab_size']}  (tokenizer {s['tokenizer_model']})",
        f"tensors       {s['tensor_count']}, {_mb(s['tensor_bytes'])}",
    ]
    for t, e in s["tensor_bytes_by_type"].items():
        lines.append(f"  {t:<8} {e['count']:>5} tensors  {_mb(e['bytes']):>12}")
    lines.append(f"RAM estimate  ctx {ram['ctx']}: weights {_mb(ram['weights'])} (mapped) + KV cache "
                 f"{_mb(ram['kv_cache'])} (f16) + scratch {_mb(ram['scratch'])} = {_mb(ram['total'])}")
    for t in s.get("tensors", []):
        lines.append(f"  {t['name']:<40} {t['type']:<8} {str(tuple(t['shape'])):<24} @{t['offset']:<12} {t['nbytes']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from .models import resolve_model

    path = resolve_model(args.model)
    s = summarize(path, ctx=args.ctx, tensors=args.tensors)
    print(json.dumps(s, indent=2, default=str) if args.json else format_text(s))
    return 0
