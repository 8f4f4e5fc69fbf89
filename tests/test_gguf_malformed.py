"""Every malformed-input case of issue 2 item 4: a valid file written by GGUFWriter, one field
patched, and the reader must raise GGUFError (a ValueError) naming that field and its offset."""
from __future__ import annotations

import pytest

pytest.importorskip("gguf")  # the PyPI package: the [test] extra installs it

import enigma_edge.gguf as eg  # noqa: E402
from gguf_util import V, Layout, gguf, patch, small_model, write_gguf  # noqa: E402

import numpy as np  # noqa: E402


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = tmp_path_factory.mktemp("gguf") / "small.gguf"
    data = small_model(path)
    return data, Layout(path)


@pytest.fixture
def expect(tmp_path):
    """expect(data, field, offset, *words): both the mmap path and the bytes path must raise
    GGUFError with .field containing `field`, .offset == offset, and a message naming both."""
    def check(data: bytes, field: str, offset: int, *words: str):
        p = tmp_path / "bad.gguf"
        p.write_bytes(data)
        for opener in (lambda: eg.open(p), lambda: eg.from_bytes(data)):
            with pytest.raises(eg.GGUFError) as ei:
                opener()
            e = ei.value
            assert isinstance(e, ValueError)
            msg = str(e)
            assert field in e.field, msg
            assert e.offset == offset, msg
            assert field in msg and f"at offset {offset}" in msg, msg
            for w in words:
                assert w in msg, msg
        return msg
    return check


def test_base_is_valid(base):
    data, lay = base
    with eg.from_bytes(data) as f:
        assert set(f.tensors) == {"t.a", "t.q", "t.h"}
        assert f.metadata["test.u32"] == 7


# ---- header

def test_bad_magic(base, expect):
    data, _ = base
    expect(b"GGUX" + data[4:], "magic", 0, "expected 'GGUF'")


@pytest.mark.parametrize("version", [0, 1, 4, 0xFFFF, 0xFFFFFFFF])
def test_unsupported_version(base, expect, version):
    data, _ = base
    expect(patch(data, 4, "I", version), "version", 4, f"unsupported version {version}")


def test_big_endian_version_is_named(base, expect):
    data, _ = base
    expect(patch(data, 4, "I", 0x03000000), "version", 4, "big-endian")


@pytest.mark.parametrize("count", [2**64 - 1, 2**63, "just_too_many"])
def test_n_kv_larger_than_file_allows(base, expect, count):
    data, _ = base
    if count == "just_too_many":
        count = (len(data) - 24) // 14 + 1  # smallest KV is 14 bytes
    expect(patch(data, 16, "Q", count), "n_kv", 16, "cannot fit")


@pytest.mark.parametrize("count", [2**64 - 1, 2**62, "just_too_many"])
def test_n_tensors_larger_than_file_allows(base, expect, count):
    data, _ = base
    if count == "just_too_many":
        n_kv = int.from_bytes(data[16:24], "little")
        count = (len(data) - 24 - 14 * n_kv) // 33 + 1  # smallest tensor info is 33 bytes
    expect(patch(data, 8, "Q", count), "n_tensors", 8, "cannot fit")


# ---- keys and strings

@pytest.mark.parametrize("length", [2**64 - 1, 2**63, 65536])
def test_key_length_huge(base, expect, length):
    data, lay = base
    at = lay.kv["test.u32"]["entry"]
    expect(patch(data, at, "Q", length), "kv[1] key", at)


def test_key_length_past_end(base, expect):
    data, lay = base
    at = lay.kv["test.u32"]["entry"]
    expect(patch(data, at, "Q", len(data) - at - 8 + 1), "kv[1] key", at, "runs past the end")


def test_string_value_length_huge(base, expect):
    data, lay = base
    at = lay.kv["test.str"]["value"]
    expect(patch(data, at, "Q", 2**64 - 1), "'test.str' string length", at, "runs past the end")


def test_string_value_length_past_end(base, expect):
    data, lay = base
    at = lay.kv["test.str"]["value"]
    expect(patch(data, at, "Q", len(data) - at - 8 + 1), "'test.str' string length", at, "runs past the end")


def test_string_inside_array_past_end(base, expect):
    data, lay = base
    # test.arr_str = ["a", "bc"]: elem type (4) + count (8) + "a" (8 + 1), then "bc"'s length
    at = lay.kv["test.arr_str"]["value"] + 12 + 9
    expect(patch(data, at, "Q", 2**63), "'test.arr_str'[1] string length", at, "runs past the end")


def test_empty_key(base, expect):
    data, lay = base
    at = lay.kv["test.u32"]["entry"]
    expect(patch(data, at, "Q", 0), "kv[1] key", at, "empty key")


def test_duplicate_key(base, expect):
    data, lay = base
    # "test.f32" -> "test.u32": same length, so the file stays well-formed otherwise
    at = lay.kv["test.f32"]["key"]
    bad = data[:at] + b"test.u32" + data[at + 8:]
    expect(bad, "kv[4] 'test.u32' key", lay.kv["test.f32"]["entry"], "duplicate key",
           f"first at offset {lay.kv['test.u32']['entry']}")


def test_key_not_utf8(base, expect):
    data, lay = base
    at = lay.kv["test.u32"]["key"]
    expect(data[:at] + b"\xff" + data[at + 1:], "kv[1] key", at, "not valid UTF-8")


# ---- value types

def test_unknown_value_type(base, expect):
    data, lay = base
    at = lay.kv["test.u32"]["type"]
    expect(patch(data, at, "I", 13), "'test.u32' value type", at, "unknown value type 13")


def test_unknown_array_element_type(base, expect):
    data, lay = base
    at = lay.kv["test.arr_i32"]["value"]
    expect(patch(data, at, "I", 99), "'test.arr_i32' array element type", at, "unknown value type 99")


@pytest.mark.parametrize("count", [2**62, 2**64 - 1, 2**63 + 1])
def test_array_count_times_size_overflow(base, expect, count):
    data, lay = base
    at = lay.kv["test.arr_i32"]["value"] + 4
    expect(patch(data, at, "Q", count), "'test.arr_i32' array count", at, f"{count} elements x 4 bytes")


def test_string_array_count_too_large(base, expect):
    data, lay = base
    at = lay.kv["test.arr_str"]["value"] + 4
    expect(patch(data, at, "Q", 2**61), "'test.arr_str' array count", at, "cannot fit")


def test_bool_not_zero_or_one(base, expect):
    data, lay = base
    at = lay.kv["test.bool"]["value"]
    expect(patch(data, at, "B", 2), "'test.bool' bool", at, "byte 2 is not 0 or 1")


def test_array_nesting_too_deep(tmp_path, expect):
    value = [1]
    for _ in range(9):  # 10 levels of arrays
        value = [value]
    data = write_gguf(tmp_path / "deep.gguf", kvs=[("test.deep", value, V.ARRAY)])
    msg = expect(data, "'test.deep'", _deep_array_offset(data, 9), "nested deeper than 8")
    assert "[0][0]" in msg  # the element path is named


def _deep_array_offset(data: bytes, level: int) -> int:
    """Offset of the array at nesting `level` (1 = the KV value) inside test.deep."""
    at = data.index(b"test.deep") + len(b"test.deep") + 4  # after the value type
    return at + 12 * (level - 1)


def test_nested_arrays_within_limit_are_fine(tmp_path):
    value = [1]
    for _ in range(7):  # 8 levels
        value = [value]
    data = write_gguf(tmp_path / "ok.gguf", kvs=[("test.deep", value, V.ARRAY)])
    with eg.from_bytes(data) as f:
        assert f.metadata["test.deep"].tolist() == value


# ---- general.alignment

def _aligned(tmp_path, alignment):
    path = tmp_path / "al.gguf"
    data = write_gguf(path, tensors=[("t.a", np.ones(8, np.float32))], alignment=alignment)
    return data, Layout(path)


@pytest.mark.parametrize("vtype", [V.INT32, V.FLOAT32])
def test_alignment_wrong_type(tmp_path, expect, vtype):
    data, lay = _aligned(tmp_path, 32)
    at = lay.kv["general.alignment"]["type"]
    expect(patch(data, at, "I", int(vtype)), "general.alignment' value type", at, "must be UINT32")


@pytest.mark.parametrize("value,words", [(0, "is zero"), (48, "not a power of two"), (3, "not a power of two"),
                                         (2**31, "absurd"), (1 << 21, "absurd")])
def test_alignment_bad_value(tmp_path, expect, value, words):
    data, lay = _aligned(tmp_path, 32)
    at = lay.kv["general.alignment"]["value"]
    expect(patch(data, at, "I", value), "general.alignment' value", at, words)


def test_alignment_custom_is_honoured(tmp_path):
    data, _ = _aligned(tmp_path, 64)
    with eg.from_bytes(data) as f:
        assert f.alignment == 64 and f.data_offset % 64 == 0


# ---- tensor infos

def test_empty_tensor_name(base, expect):
    data, lay = base
    at = lay.tensor["t.q"]["entry"]
    expect(patch(data, at, "Q", 0), "tensor[1] name", at, "empty name")


def test_tensor_name_length_huge(base, expect):
    data, lay = base
    at = lay.tensor["t.q"]["entry"]
    expect(patch(data, at, "Q", 2**64 - 8), "tensor[1] name", at)


def test_duplicate_tensor_name(base, expect):
    data, lay = base
    at = lay.tensor["t.q"]["name"]
    bad = data[:at] + b"t.a" + data[at + 3:]
    expect(bad, "tensor[1] 't.a' name", lay.tensor["t.q"]["entry"], "duplicate tensor name")


@pytest.mark.parametrize("n_dims", [0, 5, 2**32 - 1])
def test_bad_n_dims(base, expect, n_dims):
    data, lay = base
    at = lay.tensor["t.a"]["n_dims"]
    expect(patch(data, at, "I", n_dims), "tensor[0] 't.a' n_dims", at, "is not in 1..4")


def test_zero_dimension(base, expect):
    data, lay = base
    at = lay.tensor["t.a"]["dims"] + 8
    expect(patch(data, at, "Q", 0), "'t.a' ne[1]", at, "zero dimension")


def test_negative_dimension(base, expect):
    data, lay = base
    at = lay.tensor["t.a"]["dims"]
    expect(patch(data, at, "q", -4), "'t.a' ne[0]", at, "negative dimension (-4 as int64)")


def test_dimension_product_overflow(base, expect):
    data, lay = base
    at = lay.tensor["t.a"]["dims"]
    bad = patch(patch(data, at, "Q", 2**40), at + 8, "Q", 2**40)
    expect(bad, "'t.a' ne[1]", at + 8, "dimension product overflows")


def test_byte_size_overflow(base, expect):
    data, lay = base
    at = lay.tensor["t.a"]["dims"]  # F32: 2**61 x 2 elements fit int64, x 4 bytes do not fit 64 bits
    bad = patch(patch(data, at, "Q", 2**61), at + 8, "Q", 2)
    expect(bad, "'t.a' ne", at, "byte size overflows")


@pytest.mark.parametrize("ne0", [48, 1, 65])
def test_row_length_not_multiple_of_block(base, expect, ne0):
    data, lay = base
    at = lay.tensor["t.q"]["dims"]
    expect(patch(data, at, "Q", ne0), "'t.q' ne[0]", at, f"row length {ne0} is not a multiple of the Q8_0 block size 32")


@pytest.mark.parametrize("type_id", [4, 5, 31, 32, 33, 36, 37, 38, 99, 2**32 - 1])
def test_unknown_or_removed_type(base, expect, type_id):
    data, lay = base
    at = lay.tensor["t.a"]["type"]
    expect(patch(data, at, "I", type_id), "'t.a' type", at, f"unknown or removed ggml type id {type_id}")


def test_tensor_offset_unaligned(base, expect):
    data, lay = base
    at = lay.tensor["t.q"]["offset"]
    rel = int.from_bytes(data[at:at + 8], "little")
    expect(patch(data, at, "Q", rel + 4), "'t.q' offset", at, "is not a multiple of the alignment 32")


@pytest.mark.parametrize("rel", [2**40, "just_past"])
def test_tensor_offset_past_end(base, expect, rel):
    data, lay = base
    at = lay.tensor["t.h"]["offset"]
    if rel == "just_past":
        rel = (len(data) - lay.data_offset) // 32 * 32  # aligned, starts inside but ends past the end
    expect(patch(data, at, "Q", rel), "'t.h' offset", at, "runs past the end of the data section")


def test_tensor_overlaps_another(base, expect):
    data, lay = base
    at = lay.tensor["t.q"]["offset"]
    expect(patch(data, at, "Q", 0), "tensor[1] 't.q' offset", at, "overlaps tensor 't.a'")


def test_tensor_offset_plus_size_overflows(base, expect):
    data, lay = base
    at = lay.tensor["t.h"]["offset"]
    expect(patch(data, at, "Q", 2**64 - 32), "'t.h' offset", at, "overflows 64 bits")


# ---- truncation at every byte

def test_truncation_at_every_byte(base, tmp_path):
    data, lay = base
    with eg.from_bytes(data):
        pass
    p = tmp_path / "cut.gguf"
    for n in range(len(data)):
        cut = data[:n]
        p.write_bytes(cut)
        for opener in (lambda: eg.open(p), lambda: eg.from_bytes(cut)):
            with pytest.raises(eg.GGUFError) as ei:
                opener()
            assert f"at offset {ei.value.offset}" in str(ei.value)
            assert ei.value.offset <= n  # the offset points inside (or at the end of) what is there


def test_missing_file_is_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        eg.open(tmp_path / "nope.gguf")
    with pytest.raises(IsADirectoryError):
        eg.open(tmp_path)


def test_first_duplicate_in_file_order_is_reported(base, expect):
    data, lay = base
    b = bytearray(data)
    for name in ("t.h", "t.q"):  # three tensors all named "t.a"
        at = lay.tensor[name]["name"]
        b[at:at + 3] = b"t.a"
    expect(bytes(b), "tensor[1] 't.a' name", lay.tensor["t.q"]["entry"], "duplicate tensor name",
           f"first at offset {lay.tensor['t.a']['entry']}")
