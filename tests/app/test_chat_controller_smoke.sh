#!/bin/sh
# Starts the real `peregrine` binary under Xvfb with an empty home: first start makes and loads
# the demo model, sends one message, saves a screenshot once the answer is in, and quits.
#   test_chat_controller_smoke.sh <peregrine binary> <output folder>
# Exit 77 (skipped) where xvfb-run is not installed.
set -eu
binary=$1
out=$2
command -v xvfb-run >/dev/null 2>&1 || { echo "xvfb-run not installed: skipped"; exit 77; }
home="$out/peregrine-smoke-home"
rm -rf "$home"
mkdir -p "$home/config" "$home/data" "$home/runtime"
chmod 700 "$home/runtime"
shot="$out/screenshots/peregrine-app.png"
mkdir -p "$out/screenshots"
rm -f "$shot"
HOME="$home" XDG_CONFIG_HOME="$home/config" XDG_DATA_HOME="$home/data" XDG_RUNTIME_DIR="$home/runtime" \
  timeout 120 xvfb-run -a -s '-screen 0 1400x1000x24' "$binary" --screenshot "$shot" --ask "Hello, demo model"
test -s "$shot" || { echo "no screenshot written to $shot"; exit 1; }
test -s "$home/data/Peregrine/peregrine/models/peregrine-demo-random-weights.gguf" || { echo "no demo model made"; exit 1; }
test -s "$home/data/Peregrine/peregrine/conversations.db" || { echo "no conversation database"; exit 1; }
echo "screenshot: $shot"
