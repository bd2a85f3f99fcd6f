#!/usr/bin/env bash
# Builds Peregrine and runs it: peregrine-cli chats with the small bundled model (a random-weight
# Qwen 3.5/3.6-architecture model from tests/data, so its answer is not meaningful text — it shows
# the whole path from chat template to tokens to streamed output). Pass another GGUF as $1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
cmake --preset default >/dev/null
cmake --build --preset default -j "$(nproc)" --target peregrine-cli
model="${1:-tests/data/qwen35-tiny/tiny-mtp-f32.gguf}"
./build/bin/peregrine-cli inspect "$model"
./build/bin/peregrine-cli run --model "$model" --chat --prompt "What is the capital of France?" --max-tokens 48 --temp 0
