# Cross build for 32-bit Raspberry Pi OS / armhf: Debian's g++-arm-linux-gnueabihf (armv7-a, VFPv3,
# hard float). NEON files get -mfpu=neon-vfpv4 (cmake/isa.cmake) and are picked at run time from
# HWCAP_NEON. For the Pi Zero W / Pi 1 (armv6, no NEON) add -DENIGMA_EDGE_ARMV6=ON and
#   -DCMAKE_CXX_FLAGS="-march=armv6 -mfpu=vfp -marm"   (scalar kernels only; compile check:
# Debian's armhf startup files are armv7, so a runnable armv6 binary needs another libc).
# Binaries run under `qemu-arm -L /usr/arm-linux-gnueabihf -cpu cortex-a7`.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)
set(CMAKE_CXX_COMPILER arm-linux-gnueabihf-g++)
set(CMAKE_FIND_ROOT_PATH /usr/arm-linux-gnueabihf)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-arm;-L;/usr/arm-linux-gnueabihf)
