"""Write the GGUF fuzzer's seed corpus: small valid files made with the `gguf` package's GGUFWriter.

    python csrc/tests/fuzz/make_gguf_seeds.py OUT_DIR
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import gguf

V, Q = gguf.GGUFValueType, gguf.GGMLQuantizationType


def write(path: Path, kvs=(), tensors=(), alignment=None) -> None:
    w = gguf.GGUFWriter(str(path), "llama")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    for kv in kvs:
        w.add_key_value(*kv)
    for name, arr, *raw in tensors:
        w.add_tensor(name, arr, raw_dtype=raw[0] if raw else None)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    scalars = [("s.u8", 1, V.UINT8), ("s.i8", -1, V.INT8), ("s.u16", 2, V.UINT16), ("s.i16", -2, V.INT16),
               ("s.u32", 3, V.UINT32), ("s.i32", -3, V.INT32), ("s.u64", 4, V.UINT64), ("s.i64", -4, V.INT64),
               ("s.f32", 0.5, V.FLOAT32), ("s.f64", 0.25, V.FLOAT64), ("s.b", True, V.BOOL), ("s.s", "hi", V.STRING)]
    arrays = [("a.i32", [1, 2], V.ARRAY, V.INT32), ("a.s", ["x", "yz"], V.ARRAY), ("a.b", [True, False], V.ARRAY, V.BOOL),
              ("a.n", [[1, 2], [3]], V.ARRAY), ("a.ns", [["p"], ["q", "r"]], V.ARRAY)]
    write(out / "metadata.gguf", kvs=scalars + arrays)
    q8 = gguf.quants.quantize(rng.standard_normal((2, 32)).astype(np.float32), Q.Q8_0)
    write(out / "small.gguf", kvs=[("llama.block_count", 1, V.UINT32), ("tokenizer.ggml.tokens", ["a", "b"], V.ARRAY)],
          tensors=[("t.f32", np.ones((2, 3), np.float32)), ("t.q8", q8, Q.Q8_0), ("t.f16", np.ones(4, np.float16))])
    write(out / "align1.gguf", tensors=[("a", np.ones(3, np.int8)), ("b", np.ones(2, np.int16))], alignment=1)
    write(out / "align64.gguf", tensors=[("a", np.ones(3, np.float32)), ("b", np.ones((1, 1, 1, 2), np.float64))],
          alignment=64)
    write(out / "empty.gguf")
    # every block type once (raw bytes): small enough to stay under libFuzzer's -max_len
    for i, chunk in enumerate([list(Q)[k:k + 6] for k in range(0, len(Q), 6)]):
        tensors = []
        for qt in chunk:
            block, size = gguf.GGML_QUANT_SIZES[qt]
            tensors.append((f"t.{qt.name}", rng.integers(0, 256, (1, size), dtype=np.uint8), qt))
        write(out / f"types{i}.gguf", tensors=tensors)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
