"""The C++ typed getters the engine uses (File::get_u32 ... get_arr), reached through _core."""
from __future__ import annotations

import math

import pytest

pytest.importorskip("gguf")

import enigma_edge.gguf as eg  # noqa: E402
from gguf_util import V, write_gguf  # noqa: E402


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    path = tmp_path_factory.mktemp("getters") / "g.gguf"
    write_gguf(path, kvs=[
        ("k.u8", 200, V.UINT8), ("k.i8", -5, V.INT8), ("k.u32", 2**32 - 1, V.UINT32), ("k.i32", -7, V.INT32),
        ("k.u64", 2**64 - 1, V.UINT64), ("k.u64small", 12, V.UINT64), ("k.i64", -2**40, V.INT64),
        ("k.f32", 0.25, V.FLOAT32), ("k.f64", math.pi, V.FLOAT64), ("k.b", True, V.BOOL),
        ("k.s", "héllo", V.STRING), ("k.toks", ["a", "", "✓"], V.ARRAY),
    ])
    f = eg.open(path)
    yield f.core
    f.close()


def test_getters_return_values(reader):
    r = reader
    assert r.get_u32("k.u8") == 200 and r.get_u32("k.u32") == 2**32 - 1 and r.get_u32("k.u64small") == 12
    assert r.get_i32("k.i8") == -5 and r.get_i32("k.i32") == -7 and r.get_i64("k.i64") == -2**40
    assert r.get_u64("k.u64") == 2**64 - 1
    assert r.get_f32("k.f32") == 0.25 and r.get_f64("k.f64") == math.pi and r.get_f64("k.i32") == -7.0
    assert r.get_bool("k.b") is True
    assert r.get_str("k.s") == "héllo".encode()
    assert r.get_strings("k.toks") == [b"a", b"", "✓".encode()]


@pytest.mark.parametrize("getter,key,words", [
    ("get_u32", "k.u64", "does not fit in uint32"),
    ("get_u32", "k.i8", "negative value"),
    ("get_u64", "k.i64", "negative value"),
    ("get_i64", "k.u64", "does not fit in int64"),
    ("get_i32", "k.i64", "does not fit in int32"),
    ("get_u32", "k.f32", "expected an integer"),
    ("get_f32", "k.u32", "expected a float"),
    ("get_bool", "k.u8", "expected BOOL"),
    ("get_str", "k.u8", "expected STRING"),
    ("get_strings", "k.s", "expected ARRAY"),
    ("get_u32", "k.missing", "missing"),
])
def test_getters_refuse_wrong_kind_or_range(reader, getter, key, words):
    with pytest.raises(eg.GGUFError) as ei:
        getattr(reader, getter)(key)
    assert f"'{key}'" in str(ei.value) and words in str(ei.value)
