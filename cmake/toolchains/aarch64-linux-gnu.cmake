# Cross build for 64-bit Raspberry Pi OS / Debian arm64 (Pi 3, 4, 5, Zero 2 W) with Debian's
# g++-aarch64-linux-gnu. Used two ways:
#   - C++ tests:  cmake -B build-a64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
#                   -DENIGMA_EDGE_PYTHON=OFF -DENIGMA_EDGE_TESTS=ON   (ctest runs them under qemu)
#   - the wheel:  scripts/build-aarch64-wheel.sh passes this file to scikit-build-core and sets
#                 EE_AARCH64_PYTHON_SYSROOT to a sysroot holding Debian's arm64 python3.11 headers
#                 (scripts/aarch64-sysroot.sh), so pybind11 compiles against aarch64's pyconfig.h.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# libc/libstdc++ come from the cross compiler's own sysroot (/usr/aarch64-linux-gnu).
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
# Packages (pybind11's CMake config lives in the host's site-packages) and headers may come from
# the host: the only target-specific header, pyconfig.h, is taken from the Python sysroot below.
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
# ctest / try_run execute aarch64 binaries under qemu-user; -cpu max has dotprod (Pi 5 path).
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu)

if(NOT EE_AARCH64_PYTHON_SYSROOT AND DEFINED ENV{EE_AARCH64_PYTHON_SYSROOT})
  set(EE_AARCH64_PYTHON_SYSROOT "$ENV{EE_AARCH64_PYTHON_SYSROOT}")
endif()
if(EE_AARCH64_PYTHON_SYSROOT)
  # Normal variables shadow the host-interpreter values scikit-build-core puts in the cache.
  set(Python_INCLUDE_DIR "${EE_AARCH64_PYTHON_SYSROOT}/usr/include/python3.11")
  set(Python3_INCLUDE_DIR "${Python_INCLUDE_DIR}")
  # Debian's pyconfig.h is a wrapper that includes <aarch64-linux-gnu/python3.11/pyconfig.h>.
  set(CMAKE_CXX_FLAGS_INIT "-isystem ${EE_AARCH64_PYTHON_SYSROOT}/usr/include")
endif()
