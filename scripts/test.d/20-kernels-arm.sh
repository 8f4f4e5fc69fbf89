#!/usr/bin/env bash
# ARM for real: cross-build the C++ kernel tests with Debian's cross g++ and run them under qemu-user.
#   aarch64 on cortex-a72 (NEON, no dotprod) -> the default path must be neon
#   aarch64 on cortex-a76 (dotprod)          -> the default path must be dotprod
#   armv7 (armhf) on cortex-a7 with NEON     -> neon
#   armv6 (Pi Zero W): scalar-only build with -march=armv6 -mfpu=vfp -marm; compile + link check and
#   an ELF attribute check (Debian's armhf libc is armv7, so the binary cannot run on arm1176).
# Every run checks every available path against scalar (csrc/tests/test_kernels.cpp).
set -euo pipefail
cd "$ENIGMA_EDGE_ROOT"
jobs=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
build() {  # dir toolchain extra-args...
  local dir=$1 tc=$2; shift 2
  cmake -S . -B "$dir" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_TOOLCHAIN_FILE="cmake/toolchains/$tc.cmake" \
    -DENIGMA_EDGE_PYTHON=OFF -DENIGMA_EDGE_TESTS=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs" --target ee_tests
}
run() {  # expected-isa emulator args...
  local want=$1; shift
  echo "---- $* (expect $want)"
  ENIGMA_EDGE_EXPECT_ISA=$want "$@"
}

build build/cross-aarch64 aarch64-linux-gnu
run neon    qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu cortex-a72 build/cross-aarch64/ee_tests
run dotprod qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu cortex-a76 build/cross-aarch64/ee_tests

build build/cross-armhf arm-linux-gnueabihf
run neon qemu-arm -L /usr/arm-linux-gnueabihf -cpu cortex-a7 build/cross-armhf/ee_tests

echo "---- armv6 scalar build (compile + link)"
build build/cross-armv6 arm-linux-gnueabihf -DENIGMA_EDGE_ARMV6=ON \
  "-DCMAKE_C_FLAGS=-march=armv6 -mfpu=vfp -marm" "-DCMAKE_CXX_FLAGS=-march=armv6 -mfpu=vfp -marm"
attrs=$(readelf -A build/cross-armv6/libee_core.a)
if grep -q "Tag_CPU_arch: v7" <<<"$attrs" || grep -q "Tag_Advanced_SIMD_arch" <<<"$attrs"; then
  echo "armv6 build contains armv7/NEON objects" >&2; exit 1
fi
grep -q "Tag_CPU_arch: v6" <<<"$attrs"
echo "armv6: every ee_core object is Tag_CPU_arch v6 without NEON"
