#!/usr/bin/env bash
# Cross-builds the aarch64 wheel (scripts/build-aarch64-wheel.sh), installs it with pip running on
# Debian's arm64 CPython 3.11 under qemu-aarch64 (pip checks the wheel's tags against the aarch64
# interpreter), imports enigma_edge._core there and runs a real matvec against numpy, on a
# Cortex-A72 (Pi 4: no dotprod) and on qemu's "max" CPU (has dotprod, like the Pi 5's A76).
# The sysroot and the aarch64 numpy wheel are cached in ~/.cache/enigma-edge/, so after the first
# run this stage costs the build plus about a minute.
set -euo pipefail
root=${ENIGMA_EDGE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
py=${PY:-python3}
cache=${ENIGMA_EDGE_CACHE:-$HOME/.cache/enigma-edge}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
whl=$(PY=$py "$root/scripts/build-aarch64-wheel.sh" "$work/wheelhouse")
sysroot=$("$root/scripts/aarch64-sysroot.sh")

# pip itself (pure Python) to run on the aarch64 interpreter: the wheel ensurepip bundles, Debian's
# copy, or one downloaded once into the cache.
pipwhl=$("$py" -c 'import ensurepip, pathlib; print(next(iter(sorted(pathlib.Path(ensurepip.__file__).parent.glob("_bundled/pip-*.whl"))), ""))' 2>/dev/null || true)
[ -n "$pipwhl" ] || pipwhl=$(ls /usr/share/python-wheels/pip-*.whl 2>/dev/null | head -1 || true)
if [ -z "$pipwhl" ]; then
  mkdir -p "$cache/wheels"
  "$py" -m pip download -q --no-deps --only-binary=:all: -d "$cache/wheels" pip
  pipwhl=$(ls "$cache"/wheels/pip-*.whl | head -1)
fi
numpy_dir=$cache/aarch64-wheels
if ! ls "$numpy_dir"/numpy-*-cp311-*aarch64*.whl >/dev/null 2>&1; then
  "$py" -m pip download -q --no-deps --only-binary=:all: --platform manylinux2014_aarch64 \
    --python-version 3.11 --implementation cp -d "$numpy_dir" "numpy>=1.26"
fi

a64() { OPENBLAS_NUM_THREADS=1 PYTHONPATH="$work/site" qemu-aarch64 -cpu "$1" -L "$sysroot" "$sysroot/usr/bin/python3.11" "${@:2}"; }
echo "installing $(basename "$whl") ($(stat -c %s "$whl") bytes) with pip on aarch64 CPython under qemu"
a64 cortex-a72 "$pipwhl/pip" install -q --no-index --no-deps --no-cache-dir --disable-pip-version-check \
  --root-user-action=ignore --target "$work/site" "$whl" "$numpy_dir"/numpy-*-cp311-*aarch64*.whl
cd "$work"
cat > check.py <<'PY'
import platform
import numpy as np
import enigma_edge
from enigma_edge import _core
assert platform.machine() == "aarch64", platform.machine()
assert _core.__file__.endswith("cpython-311-aarch64-linux-gnu.so"), _core.__file__
import sys
info = enigma_edge.cpu_info()
print(f"  {info['arch']} isa={info['isa']} available={info['available']} features={info['features']}")
# the run-time dispatch picks NEON on a Cortex-A72 (Pi 4) and SDOT on a CPU with dotprod (Pi 5)
assert info["arch"] == "aarch64" and "dotprod" in info["compiled"], info
assert info["isa"] == sys.argv[1], (sys.argv[1], info)
rng = np.random.default_rng(0)
rows, cols = 64, 256
x = rng.standard_normal(cols).astype(np.float32)
# F32 weights: exact up to summation order
w = rng.standard_normal((rows, cols)).astype(np.float32)
y = _core.matvec("F32", w.view(np.uint8).ravel(), rows, cols, x)
np.testing.assert_allclose(y, w @ x, rtol=1e-5, atol=1e-4)
# Q8_0 weights (blocks of fp16 scale + 32 int8): the integer-dot path the Pi runs
q = rng.integers(-127, 128, size=(rows, cols // 32, 32), dtype=np.int8)
d = (rng.random((rows, cols // 32)) * 0.01 + 0.001).astype(np.float16)
blocks = np.zeros((rows, cols // 32), dtype=[("d", "<f2"), ("q", "i1", 32)])
blocks["d"], blocks["q"] = d, q
ref = (d.astype(np.float32)[..., None] * q).reshape(rows, cols) @ x
yq = _core.matvec("Q8_0", blocks.view(np.uint8).ravel(), rows, cols, x)
err = float(np.max(np.abs(yq - ref)) / np.max(np.abs(ref)))
assert err < 2e-2, err  # x is quantized to Q8_0 per 32 values, as llama.cpp does
print(f"  matvec F32 and Q8_0 {rows}x{cols} ok (Q8_0 max rel err {err:.1e})")
PY
for run in cortex-a72:neon max:dotprod; do
  echo "qemu-aarch64 -cpu ${run%%:*} (expect the ${run##*:} path):"
  a64 "${run%%:*}" check.py "${run##*:}"
done
