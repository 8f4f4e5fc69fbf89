#!/usr/bin/env bash
# libFuzzer (clang, ASan + UBSan, UB aborts) over the C++ GGUF reader for a bounded time, seeded
# with small valid files written by the `gguf` package. Any crash, sanitizer report, uncaught
# exception, single allocation over the malloc limit, or slow input fails the stage; the failing
# input is left in build/fuzz/ (crash-*, oom-*, timeout-*) to reproduce with `build/fuzz/fuzz_gguf FILE`.
#   FUZZ_SECONDS=600 scripts/test.sh    # a longer run
set -euo pipefail
cd "$ENIGMA_EDGE_ROOT"
build=build/fuzz
CC=clang CXX=clang++ cmake -S . -B "$build" -DENIGMA_EDGE_FUZZ=ON -DENIGMA_EDGE_PYTHON=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target fuzz_gguf -j "${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
seeds="$build/gguf-seeds"
corpus="$build/gguf-corpus"
rm -rf "$seeds"
mkdir -p "$corpus"
"$PY" csrc/tests/fuzz/make_gguf_seeds.py "$seeds"
cd "$build"
# inputs up to 8 KB; no single malloc over 64 MB (the reader must never size from a count);
# 1 GB RSS; 10 s per input.
./fuzz_gguf -max_total_time="${FUZZ_SECONDS:-60}" -max_len=8192 -malloc_limit_mb=64 -rss_limit_mb=1024 \
  -timeout=10 -dict="$ENIGMA_EDGE_ROOT/csrc/tests/fuzz/gguf.dict" -print_final_stats=1 \
  "$(basename "$corpus")" "$(basename "$seeds")"
