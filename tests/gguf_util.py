"""Helpers for the GGUF tests: small valid files written by the `gguf` package's GGUFWriter, and
the byte offsets of their fields (found with gguf-py's GGUFReader) so tests can patch them."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

gguf = __import__("gguf")  # the PyPI package (not enigma_edge.gguf)
V = gguf.GGUFValueType


def write_gguf(path: Path, kvs=(), tensors=(), alignment: int | None = None, arch: str = "llama") -> bytes:
    """Write a GGUF with GGUFWriter. kvs: (key, value, GGUFValueType[, sub_type]);
    tensors: (name, ndarray[, raw_dtype]). Returns the bytes."""
    w = gguf.GGUFWriter(str(path), arch)
    if alignment is not None:
        w.add_custom_alignment(alignment)
    for kv in kvs:
        w.add_key_value(*kv)
    for t in tensors:
        name, arr, *raw = t
        w.add_tensor(name, arr, raw_dtype=raw[0] if raw else None)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return Path(path).read_bytes()


def small_model(path: Path) -> bytes:
    """A small valid file: a few KVs of different kinds and three tensors (F32, Q8_0, F16).
    The last tensor's size is a multiple of the alignment, so the file has no trailing padding:
    every proper prefix of it is truncated somewhere that matters."""
    V = gguf.GGUFValueType
    rng = np.random.default_rng(0)
    q8 = gguf.quants.quantize(rng.standard_normal((2, 64)).astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
    return write_gguf(path, kvs=[
        ("test.u32", 7, V.UINT32),
        ("test.str", "hello", V.STRING),
        ("test.bool", True, V.BOOL),
        ("test.f32", 0.5, V.FLOAT32),
        ("test.arr_i32", [1, 2, 3], V.ARRAY, V.INT32),
        ("test.arr_str", ["a", "bc"], V.ARRAY),
        ("test.nested", [[1, 2], [3]], V.ARRAY),
    ], tensors=[
        ("t.a", rng.standard_normal((3, 4)).astype(np.float32)),
        ("t.q", q8, gguf.GGMLQuantizationType.Q8_0),
        ("t.h", rng.standard_normal((16,)).astype(np.float16)),
    ])


class Layout:
    """Byte offsets of the fields of a valid file, read with gguf-py's GGUFReader."""

    def __init__(self, path: Path):
        r = gguf.GGUFReader(str(path))
        self.reader = r
        self.kv = {}  # key -> dict(entry, key, type, value)
        for name, f in r.fields.items():
            if name.startswith("GGUF."):
                continue
            klen = len(name.encode())
            self.kv[name] = dict(entry=f.offset, key=f.offset + 8, type=f.offset + 8 + klen,
                                 value=f.offset + 8 + klen + 4)
        self.tensor = {}  # name -> dict(entry, n_dims, dims, type, offset)
        for t in r.tensors:
            o = t.field.offset
            nlen = len(t.name.encode())
            n_dims = len(t.shape)
            d = dict(entry=o, name=o + 8, n_dims=o + 8 + nlen, dims=o + 8 + nlen + 4)
            d["type"] = d["dims"] + 8 * n_dims
            d["offset"] = d["type"] + 4
            self.tensor[t.name] = d
        self.data_offset = r.data_offset


def patch(data: bytes, offset: int, fmt: str, value) -> bytes:
    b = bytearray(data)
    struct.pack_into("<" + fmt, b, offset, value)
    return bytes(b)
