#!/usr/bin/env bash
# Creates ./.venv (if needed) and installs enigma-edge with the given extras into it.
#   scripts/venv.sh all,model       -> the runtime
#   scripts/venv.sh test            -> the runtime + everything the test suite needs
# pip's wheel cache is reused between runs, so a second install mostly copies files.
set -euo pipefail
extras=${1:-all,model}
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${ENIGMA_EDGE_VENV:-$root/.venv}
py=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  echo "venv: creating $venv"
  "$py" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
echo "venv: installing enigma-edge[$extras] (first time: several minutes, llama-cpp-python compiles)"
"$venv/bin/python" -m pip install -q "$root[$extras]"
echo "venv: ready ($("$venv/bin/python" -c 'import enigma_edge; print(enigma_edge.__version__)'))"
