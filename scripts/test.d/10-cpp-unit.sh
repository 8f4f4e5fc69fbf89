#!/usr/bin/env bash
# Native C++ unit tests (csrc/tests, doctest): builds ee_core + ee_tests without Python and runs them.
# On x86 this checks every kernel path this CPU supports against the scalar one.
set -euo pipefail
cd "$ENIGMA_EDGE_ROOT"
b=build/native-tests
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B "$b" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DENIGMA_EDGE_PYTHON=OFF -DENIGMA_EDGE_TESTS=ON >/dev/null
cmake --build "$b" -j "${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
"$b/ee_tests"
