#!/usr/bin/env bash
# The CUDA test suite on a machine with a GPU, and its result table for docs/perf.md (issue 6):
# device, driver, every test with its outcome and the largest error it measured.
#
#   scripts/cuda-tests.sh [--no-build] [OUT_DIR]
#
# Builds the CUDA tests (the default preset: CUDA on when the toolkit is found, architecture
# `native` when a GPU is present), runs each test binary with gtest's JSON report into OUT_DIR
# (default: $BUILD_DIR/cuda-tests), and prints the Markdown table (also OUT_DIR/table.md).
# Exit status: 0 when every test passed or skipped, 1 when one failed, 2 when a GPU is present but
# every GPU test skipped (the build has no CUDA backend, or the device was not usable).
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
out=""
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "cuda-tests: unknown option $arg" >&2; exit 2 ;;
    *) out="$arg" ;;
  esac
done
BUILD_DIR="${BUILD_DIR:-build}"
out="${out:-$BUILD_DIR/cuda-tests}"
tests=(test_cuda_memory test_cuda_ops test_cuda_matmul test_cuda_attention test_cuda_forward
       test_cuda_quant_blocks_host test_cuda_vec_dot_host)

if ((build)); then
  if [[ "$BUILD_DIR" == build ]]; then cmake --preset default >/dev/null; else
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null; fi
  cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" --target "${tests[@]}"
fi

mkdir -p "$out"
rm -f "$out"/*.json
failed=0
for t in "${tests[@]}"; do
  bin="$BUILD_DIR/bin/$t"
  [[ -x "$bin" ]] || { echo "cuda-tests: $bin is missing (build it, or drop --no-build)" >&2; exit 1; }
  echo "== $t"
  "$bin" --gtest_output="json:$out/$t.json" --gtest_brief=1 || failed=1
done

device="none"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  device="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -n 1)"
fi
python3 scripts/cuda_test_table.py --device "$device" "$out"/*.json | tee "$out/table.md"
summary_rc=${PIPESTATUS[0]}
((failed)) && exit 1
exit "$summary_rc"
