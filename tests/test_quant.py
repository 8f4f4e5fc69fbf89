"""Block formats against the `gguf` package's reference (gguf.quants): dequantization bit-exact
for every supported type, quantization bit-exact for Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 (and F16/BF16)."""
from __future__ import annotations

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as T  # noqa: E402
from gguf.quants import dequantize, quantize  # noqa: E402

from enigma_edge import _core  # noqa: E402

ALL = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
EXACT_Q = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "F16", "BF16"]
# byte offsets of the fp16 scale fields inside one block (d, dmin / m)
SCALE_FIELDS = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
                "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}
EDGE_HALVES = np.array([0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x3C00, 0x7BFF, 0xFBFF, 0x1400, 0x5800],
                       dtype=np.uint16)  # +-0, subnormals, 1.0, +-65504 (max), small / large normals


def random_blocks(name: str, n_blocks: int, rng) -> np.ndarray:
    """Random bytes with finite fp16 scales, then edge cases written into some blocks."""
    bs, ts = GGML_QUANT_SIZES[T[name]]
    raw = rng.integers(0, 256, size=(n_blocks, ts), dtype=np.uint8)
    if name in ("F32", "F16", "BF16"):
        vals = rng.standard_normal(n_blocks * bs).astype(np.float32) * 100
        edge = np.array([0.0, -0.0, 1e-45, 65504.0, 6e-8, -3.4e38, 1e-30, 3.0e38], dtype=np.float32)
        vals[: len(edge)] = edge
        with np.errstate(over="ignore"):   # -3.4e38 overflows fp16 to -inf on purpose
            return quantize(vals, T[name]).view(np.uint8).reshape(-1) if name != "F32" else vals.view(np.uint8)
    for off in SCALE_FIELDS[name]:
        h = rng.integers(0, 0x7800, size=n_blocks, dtype=np.uint16) | (rng.integers(0, 2, n_blocks, dtype=np.uint16) << 15)
        h[: len(EDGE_HALVES)] = EDGE_HALVES          # zero scale, subnormal and extreme scales
        raw[:, off:off + 2] = h.view(np.uint8).reshape(n_blocks, 2)
    raw[len(EDGE_HALVES), :] = 0xFF                     # every nibble / bit field at its maximum
    raw[len(EDGE_HALVES) + 1, :] = 0x00
    for off in SCALE_FIELDS[name]:                      # ... with finite scales
        raw[len(EDGE_HALVES):len(EDGE_HALVES) + 2, off:off + 2] = np.array([0x3C00], np.uint16).view(np.uint8)
    return raw.reshape(-1)


@pytest.mark.parametrize("name", ALL)
def test_dequantize_bit_exact(name):
    rng = np.random.default_rng(list(T.__members__).index(name))
    bs, _ = GGML_QUANT_SIZES[T[name]]
    n_blocks = 96 if bs > 1 else 4096
    raw = random_blocks(name, n_blocks, rng)
    with np.errstate(all="ignore"):
        ref = dequantize(raw, T[name]).reshape(-1).astype(np.float32)
    got = _core.dequantize(name, raw, ref.size)
    assert got.dtype == np.float32 and got.shape == ref.shape
    np.testing.assert_array_equal(got.view(np.uint32), ref.view(np.uint32))


def test_all_nibble_values_cover_the_range():
    # one Q4_0 block whose 32 values are 0..15 twice, scale 1.0: dequantizes to q - 8 exactly
    qs = (np.arange(16, dtype=np.uint8) | (np.arange(16, dtype=np.uint8)[::-1] << 4))
    raw = np.concatenate([np.array([0x3C00], np.uint16).view(np.uint8), qs])
    got = _core.dequantize("Q4_0", raw, 32)
    np.testing.assert_array_equal(got, np.concatenate([np.arange(16) - 8, np.arange(16)[::-1] - 8]).astype(np.float32))


@pytest.mark.parametrize("name", EXACT_Q)
@pytest.mark.parametrize("kind", ["normal", "edge"])
def test_quantize_bit_exact(name, kind):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(32 * 64).astype(np.float32)
    if kind == "edge":
        x = x.reshape(64, 32)
        x[0] = 0.0                                  # zero block -> zero scale
        x[1] = 1e30                                 # scale overflows fp16
        x[2] = np.linspace(-1, 1, 32)               # exact ties / rounding boundaries
        x[3] = -x[3] * 1e-6                         # subnormal scales
        x[4, :] = 5.0; x[4, 7] = -5.0               # equal |max| with both signs
        x[5] = np.round(x[5] * 8) / 8               # values on the grid
        x = x.reshape(-1)
    with np.errstate(all="ignore"):
        ref = quantize(x, T[name]).view(np.uint8).reshape(-1)
    got = _core.quantize(name, x)
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("name", ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"])
def test_k_quantize_is_approximate_but_close(name):
    # documented approximation: error bounded by half a step of each sub-block's range
    rng = np.random.default_rng(3)
    x = rng.standard_normal(256 * 16).astype(np.float32)
    bits = {"Q2_K": 2, "Q3_K": 3, "Q4_K": 4, "Q5_K": 5, "Q6_K": 6}[name]
    y = _core.dequantize(name, _core.quantize(name, x), x.size)
    rel = np.sqrt(np.mean((y - x) ** 2)) / np.sqrt(np.mean(x ** 2))
    assert rel < 1.6 * 2.0 ** (1 - bits), rel     # ~ step / sqrt(12) relative to the data's rms


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="multiple of 32"):
        _core.dequantize("Q4_0", np.zeros(18, np.uint8), 33)
    with pytest.raises(ValueError, match="bytes"):
        _core.dequantize("Q4_K", np.zeros(100, np.uint8), 256)
    with pytest.raises(ValueError, match="unknown ggml type"):
        _core.quantize("Q9_9", np.zeros(32, np.float32))
    with pytest.raises(ValueError, match="unsupported type"):
        _core.dequantize("IQ2_XXS", np.zeros(66, np.uint8), 256)
