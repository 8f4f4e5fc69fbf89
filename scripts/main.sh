#!/usr/bin/env bash
# The main job, from a fresh Debian 12 / Raspberry Pi OS Bookworm machine: install, then run the
# voice assistant on the default model (Gemma 3 270M) over a synthesized utterance:
#   "Okay nabu. Turn on the kitchen light."  -> fast path: the LED pin goes high
#   "Okay nabu. What is the capital of France?" -> speech to text, the LLM answers
# It prints each transcript, action, reply and timings, and writes the spoken replies to reply.wav.
# Extra arguments go to `enigma-edge assistant` (e.g. --board pi_4, --json).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/system-packages.sh" main
"$root/scripts/venv.sh" all,model
venv=${ENIGMA_EDGE_VENV:-$root/.venv}
export HF_HUB_OFFLINE=1
out=${ENIGMA_EDGE_OUT:-$PWD}
"$venv/bin/enigma-edge" say --deterministic --pause 1.5 -o "$out/utterance.wav" \
  "Okay nabu." "Turn on the kitchen light." "Okay nabu." "What is the capital of France?"
exec "$venv/bin/enigma-edge" assistant --wav "$out/utterance.wav" --reply-wav "$out/reply.wav" "$@"
