#!/usr/bin/env bash
# Builds Peregrine and runs it. With a display: the desktop app (first start makes a small
# random-weight demo model so the UI can be tried; add real GGUF models with File → Open model
# folder…). Without a display: peregrine-cli answers one chat message with the bundled tiny model
# (random weights, so the answer is gibberish — it shows template → tokens → streamed text).
# Pass a GGUF path as $1 to use it in the CLI run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
cmake --preset default >/dev/null
cmake --build --preset default -j "$(nproc)" --target peregrine-cli
if [ -z "${1:-}" ] && [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && cmake --build --preset default -j "$(nproc)" --target peregrine; then
  exec ./build/bin/peregrine
fi
model="${1:-tests/data/qwen35-tiny/tiny-mtp-f32.gguf}"
./build/bin/peregrine-cli inspect "$model"
./build/bin/peregrine-cli run --model "$model" --chat --prompt "What is the capital of France?" --max-tokens 48 --temp 0
