#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: install, build, then run every stage in
# scripts/test.d/ in order (C++ unit tests, ARM builds under qemu, firmware, fuzzing, pytest).
# Any failing stage fails the run; the summary at the end lists each stage's result and time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/system-packages.sh" test
"$root/scripts/venv.sh" test
export ENIGMA_EDGE_ROOT=$root
export VENV=${ENIGMA_EDGE_VENV:-$root/.venv}
export PY=$VENV/bin/python
export PATH=$VENV/bin:$PATH
export HF_HUB_OFFLINE=1          # engines must never download at run time
only=${ENIGMA_EDGE_TEST_ONLY:-}  # e.g. ENIGMA_EDGE_TEST_ONLY=pytest to run one stage
summary=()
failed=0
for stage in "$root"/scripts/test.d/*.sh; do
  name=$(basename "$stage" .sh)
  if [ -n "$only" ] && [[ "$name" != *"$only"* ]]; then continue; fi
  echo "==== stage $name"
  start=$(date +%s)
  if bash "$stage"; then r=ok; else r="FAILED ($?)"; failed=1; fi
  summary+=("$(printf '%-28s %-12s %4ss' "$name" "$r" "$(( $(date +%s) - start ))")")
done
echo "==== summary"
printf '%s\n' "${summary[@]}"
exit $failed
