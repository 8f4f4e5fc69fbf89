"""Every available kernel path against the scalar path for every weight type and shape class, and
the scalar path against a float64 numpy reference built from gguf-py's dequantization.

Error bounds (stated, per output y_r):
  * path vs scalar: the integer block sums are exact in every path, only the float accumulation
    order differs:  |y - y_scalar| <= 1e-5 * sum_c |W[r,c] x~[c]| + 1e-6.
  * scalar vs reference: the activation is quantized to 8 bits per block (Q8_0 per 32 with an fp16
    scale, Q8_K per 256 with an f32 scale), so |x~ - x| <= amax_block/254 (+ fp16 scale rounding
    2^-11 relative); hence |y - W x| <= sum_c |W[r,c]| (amax_block(c)/254 * 1.01 + |x_c| * 2^-10) + 1e-4 * sum_c |W x|.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as T  # noqa: E402
from gguf.quants import dequantize  # noqa: E402

from enigma_edge import _core  # noqa: E402

TYPES = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
PATHS = [p for p in _core.cpu_info()["available"] if p != "scalar"]


def make_weights(name, rows, cols, rng):
    w = (rng.standard_normal((rows, cols)) * rng.uniform(0.1, 3, size=(rows, 1))).astype(np.float32)
    return _core.quantize(name, w)


def shapes_for(name):
    bs = GGML_QUANT_SIZES[T[name]][0]
    if bs == 1:     # float rows: columns not a multiple of any SIMD width -> scalar tails
        return [(1, 1), (7, 13), (33, 67), (64, 1024)]
    if bs == 32:    # odd block counts exercise the one-block tail of the 2-block loops
        return [(1, 32), (7, 96), (33, 160), (64, 1024)]
    return [(1, 256), (7, 512), (33, 768), (17, 2560)]


def reference(name, wq, rows, cols, x):
    wf = dequantize(wq.reshape(rows, -1), T[name]).astype(np.float64).reshape(rows, cols)
    return wf, wf @ x.astype(np.float64)


def bound_vs_reference(name, wf, x):
    bs = 256 if name.endswith("_K") else 32
    if name in ("F32", "F16", "BF16"):
        return 1e-5 * (np.abs(wf) @ np.abs(x)) + 1e-6
    amax = np.repeat(np.abs(x.reshape(-1, bs)).max(axis=1), bs)
    return np.abs(wf) @ (amax / 254 * 1.01 + np.abs(x) * 2.0 ** -10) + 1e-4 * np.abs(wf @ x) + 1e-6


@pytest.mark.parametrize("name", TYPES)
def test_scalar_matches_numpy_reference(name):
    rng = np.random.default_rng(11)
    for rows, cols in shapes_for(name):
        wq = make_weights(name, rows, cols, rng)
        x = rng.standard_normal(cols).astype(np.float32)
        wf, ref = reference(name, wq, rows, cols, x)
        y = _core.matvec(name, wq, rows, cols, x, isa="scalar")
        err = np.abs(y - ref)
        assert np.all(err <= bound_vs_reference(name, wf, x)), (rows, cols, err.max())


@pytest.mark.parametrize("name", TYPES)
@pytest.mark.parametrize("path", PATHS or ["none"])
def test_every_path_matches_scalar(name, path):
    if path == "none":
        pytest.skip("this CPU has no SIMD path besides scalar")
    rng = np.random.default_rng(5)
    for rows, cols in shapes_for(name):
        wq = make_weights(name, rows, cols, rng)
        wf = dequantize(wq.reshape(rows, -1), T[name]).astype(np.float64).reshape(rows, cols)
        for n_tok in (1, 3, 19):
            X = rng.standard_normal((n_tok, cols)).astype(np.float32)
            X[0, : min(cols, 5)] = 0.0
            ys = _core.matmul(name, wq, rows, cols, X, threads=1, isa="scalar")
            bound = 1e-5 * (np.abs(X.astype(np.float64)) @ np.abs(wf).T) * 1.02 + 1e-5
            for threads in (1, 2, 3):
                y = _core.matmul(name, wq, rows, cols, X, threads=threads, isa=path)
                assert y.shape == (n_tok, rows)
                assert np.all(np.abs(y - ys) <= bound), (path, rows, cols, n_tok, threads, np.abs(y - ys).max())
            if n_tok == 1:
                yv = _core.matvec(name, wq, rows, cols, X[0], threads=3, isa=path)
                assert np.all(np.abs(yv - ys[0]) <= bound[0])


@pytest.mark.parametrize("name", TYPES)
def test_matmul_equals_matvec_per_token(name):
    rng = np.random.default_rng(9)
    rows, cols = shapes_for(name)[2]
    wq = make_weights(name, rows, cols, rng)
    X = rng.standard_normal((37, cols)).astype(np.float32)   # > one token tile, odd
    Y = _core.matmul(name, wq, rows, cols, X, threads=2)
    for t in (0, 16, 36):
        np.testing.assert_array_equal(Y[t], _core.matvec(name, wq, rows, cols, X[t], threads=2))


def test_cpu_info_reports_paths():
    info = _core.cpu_info()
    assert info["isa"] in info["available"] and "scalar" in info["available"]
    assert set(info["available"]) <= set(info["compiled"])
    assert info["arch"] in ("x86_64", "aarch64", "arm", "other")
    if "avx2" in info["available"]:
        assert {"avx2", "fma", "f16c"} <= set(info["features"])
    if "avx512" in info["available"]:
        assert {"avx512f", "avx512bw", "avx512vnni"} <= set(info["features"])
    import enigma_edge
    assert enigma_edge.cpu_info()["isa"] == info["isa"]


def _isa_in_subprocess(value):
    env = dict(os.environ, ENIGMA_EDGE_ISA=value)
    code = "import enigma_edge, json; print(json.dumps(enigma_edge.cpu_info()['isa']))"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=os.path.dirname(os.devnull))


def test_env_forces_isa_and_unavailable_is_a_clear_error():
    r = _isa_in_subprocess("scalar")
    assert r.returncode == 0 and r.stdout.strip() == '"scalar"', r.stderr
    missing = [p for p in ("avx2", "avx512", "neon", "dotprod") if p not in _core.cpu_info()["available"]]
    assert missing
    r = _isa_in_subprocess(missing[0])
    assert r.returncode != 0 and f"ENIGMA_EDGE_ISA={missing[0]}" in r.stderr and "not available" in r.stderr
    r = _isa_in_subprocess("sse9")
    assert r.returncode != 0 and "unknown ISA" in r.stderr


def test_bad_shapes_are_errors():
    w = np.zeros(34 * 4, np.uint8)
    with pytest.raises(ValueError, match="bytes"):
        _core.matvec("Q8_0", w, 5, 32, np.zeros(32, np.float32))
    with pytest.raises(ValueError, match="multiple of 32"):
        _core.matvec("Q8_0", w, 1, 31, np.zeros(31, np.float32))
    with pytest.raises(ValueError, match="activations"):
        _core.matvec("Q8_0", w, 4, 32, np.zeros(31, np.float32))
    with pytest.raises(RuntimeError, match="not available|unknown ISA"):
        _core.matvec("Q8_0", w, 4, 32, np.zeros(32, np.float32), isa="sse9")


def test_unaligned_weight_buffer_is_handled():
    rng = np.random.default_rng(1)
    wq = make_weights("Q4_0", 3, 64, rng)
    buf = np.zeros(wq.size + 1, np.uint8)
    buf[1:] = wq
    x = rng.standard_normal(64).astype(np.float32)
    np.testing.assert_array_equal(_core.matvec("Q4_0", buf[1:], 3, 64, x), _core.matvec("Q4_0", wq, 3, 64, x))


@pytest.mark.parametrize("isa", _core.cpu_info()["available"])
def test_matmul_rows_are_bit_identical_to_matvec(isa):
    """A token's output must not depend on whether it was computed alone (decode) or in a batch
    (prefill): otherwise a prompt served from the KV cache and the same prompt computed cold give
    different logits, and seeded sampling stops being reproducible."""
    rng = np.random.default_rng(11)
    rows = 19
    for t in ("F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
              "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"):
        # 32-blocks: groups of 8 blocks and a tail of 3 or 1 block(s), a lone partial group, one
        # whole group, a single block
        for cols in (768,) if t.endswith("_K") else (608, 544, 224, 256, 32):
            w = _core.quantize(t, rng.standard_normal(rows * cols).astype(np.float32))
            # 6 tokens: register tiles and a remainder; 21: also the expanded-row path and a token tile edge
            for n_tok in (6, 21):
                x = rng.standard_normal((n_tok, cols)).astype(np.float32)
                y = _core.matmul(t, w, rows, cols, x, threads=2, isa=isa)
                for i in range(n_tok):
                    np.testing.assert_array_equal(_core.matvec(t, w, rows, cols, x[i], threads=2, isa=isa), y[i],
                                                  err_msg=f"{t} {cols} cols, {n_tok} tokens, token {i}")
