// doctest entry point for ee_tests (native and cross-built under qemu-user).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
