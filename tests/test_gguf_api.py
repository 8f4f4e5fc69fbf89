"""enigma_edge.gguf Python API: lifetime of the map, views, laziness, closing."""
from __future__ import annotations

import gc
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("gguf")

import enigma_edge.gguf as eg  # noqa: E402
from gguf_util import small_model  # noqa: E402


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.gguf"
    small_model(path)
    return path


def test_views_outlive_the_file(small):
    f = eg.open(small)
    a = f.tensor_data("t.a")
    tags = f.metadata["test.arr_str"]
    ints = f.metadata["test.arr_i32"]
    expected = a.copy()
    f.close()
    del f
    gc.collect()
    # the map is still alive through the views
    assert np.array_equal(a, expected) and a.shape == (3, 4) and a.dtype == np.float32
    assert ints.tolist() == [1, 2, 3]
    assert list(tags) == ["a", "bc"]


def test_close_is_idempotent_and_closed_file_refuses(small):
    with eg.open(small) as f:
        pass
    assert f.closed
    f.close()
    with pytest.raises(ValueError, match="closed"):
        f.tensor_data("t.a")
    with pytest.raises(KeyError):
        eg.open(small).tensor_data("nope")


def test_views_are_read_only(small):
    with eg.open(small) as f:
        a = f.tensor_data("t.a")
        with pytest.raises(ValueError):
            a[0, 0] = 1.0
        with pytest.raises(ValueError):
            f.metadata["test.arr_i32"].numpy()[0] = 5
        with pytest.raises(TypeError):
            f.metadata["test.arr_i32"][0] = 5
        with pytest.raises(TypeError, match="no numpy view"):
            f.metadata["test.arr_str"].numpy()


def test_quantized_tensor_is_bytes_and_f16_is_half(small):
    with eg.open(small) as f:
        q = f.tensor_data("t.q")
        assert q.dtype == np.uint8 and q.shape == (2, 64 // 32 * 34)
        assert f.tensors["t.q"].shape == (64, 2) and f.tensors["t.q"].type == "Q8_0"
        h = f.tensor_data("t.h")
        assert h.dtype == np.float16 and h.shape == (16,)


def test_from_bytes_equals_open(small):
    data = small.read_bytes()
    with eg.open(small) as a, eg.from_bytes(data) as b:
        assert a.tensors == b.tensors
        assert {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in a.metadata.items()} == \
               {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in b.metadata.items()}


def test_lazy_string_array_sequence_protocol(small):
    with eg.open(small) as f:
        arr = f.metadata["test.arr_str"]
        assert len(arr) == 2 and arr[0] == "a" and arr[-1] == "bc" and arr[::-1] == ["bc", "a"]
        assert arr.element_type == "STRING" and "GGUFArray STRING x 2" in repr(arr)
        with pytest.raises(IndexError):
            arr[2]


def test_invalid_utf8_string_value_is_gguf_error(small):
    """String values are not decoded at open; decoding an invalid one names the key and offset."""
    data = bytearray(small.read_bytes())
    at = data.index(b"hello")
    data[at] = 0xFF
    with eg.from_bytes(bytes(data)) as f:
        with pytest.raises(eg.GGUFError) as ei:
            f.metadata
        assert ei.value.offset == at and "'test.str'" in str(ei.value) and "UTF-8" in str(ei.value)


def test_reading_headers_does_not_import_numpy(small):
    """`import enigma_edge` loads neither numpy nor the core; opening a file and reading its metadata
    and tensor list loads the core but still not numpy (so `inspect` starts fast)."""
    code = ("import sys, enigma_edge; assert 'numpy' not in sys.modules and 'enigma_edge._core' not in sys.modules;"
            "import enigma_edge.gguf as g; f = g.open(sys.argv[1]); md = f.metadata; md['test.arr_i32'].tolist();"
            "list(f.tensors); assert 'numpy' not in sys.modules, 'numpy imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code, str(small)], capture_output=True, text=True, cwd="/")
    assert out.stdout.strip() == "ok", out.stderr


def test_path_with_nul_byte_is_refused(small):
    with pytest.raises(ValueError, match="null byte"):
        eg.open(str(small) + "\0.ignored")
