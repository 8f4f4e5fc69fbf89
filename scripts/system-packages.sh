#!/usr/bin/env bash
# Installs the Debian / Raspberry Pi OS packages enigma-edge needs.
#   scripts/system-packages.sh main   -> what running the assistant needs
#   scripts/system-packages.sh test   -> plus compilers, emulators and fuzzing tools for the test suite
# Idempotent: packages already present are skipped quickly.
set -euo pipefail
what=${1:-main}

main_pkgs=(
  python3 python3-venv python3-dev g++ cmake ninja-build git
  libportaudio2            # sounddevice (PortAudio) for microphone and speaker
  alsa-utils               # aplay/arecord, used by `enigma-edge doctor`
)
test_pkgs=(
  clang libclang-rt-14-dev                       # libFuzzer + ASan/UBSan for the GGUF fuzzer
  doctest-dev                                    # header-only C++ unit-test framework (also cross builds)
  libsimde-dev                                   # portable SIMD intrinsics: tests the AVX-512 kernels on CPUs without it
  qemu-user g++-aarch64-linux-gnu g++-arm-linux-gnueabihf   # ARM kernels under emulation
  gcc-avr avr-libc simavr libsimavr-dev arduino-core-avr    # robot firmware under simavr
  socat                                           # serial pty pairs
  systemd                                         # systemd-analyze verify for the generated unit
  patchelf                                        # auditwheel for the cross-built aarch64 wheel
)
pkgs=("${main_pkgs[@]}")
[ "$what" = test ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all ${#pkgs[@]} present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system packages: done"
