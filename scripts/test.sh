#!/usr/bin/env bash
# Builds Peregrine and runs every test. This is the README's test command and what CI runs.
#  1. the default build (Qt 5.15 + KF5 on Debian 12, CUDA when a toolkit is found): everything;
#  2. a Qt 6 build of the app and its widgets (highlighting compiled out where KF6 is missing),
#     so the Qt 6 side never rots (preset qt6, build-qt6/);
#  3. a CUDA emulation build running the CUDA tests on the CPU, no GPU needed (preset
#     cuda-emulation, build-cuda-emulation/);
#  4. every test of the default build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
jobs=$(nproc)

cmake --preset default
cmake --build --preset default -j "$jobs"

if dpkg-query -W -f='${Status}' qt6-base-dev 2>/dev/null | grep -q "install ok installed"; then
  echo "== Qt 6 build of app/ and ui/ =="
  cmake --preset qt6
  cmake --build --preset qt6 -j "$jobs"
  ctest --preset qt6 -j "$jobs"
fi

# The CUDA code run for real on the CPU: the CUDA backend built against the host-run CUDA
# emulator (docs/cuda.md, "Running the CUDA code without a GPU"), engine and CUDA tests only.
echo "== CUDA emulation build: the CUDA tests on the CPU =="
cmake --preset cuda-emulation
cmake --build --preset cuda-emulation -j "$jobs"
ctest --preset cuda-emulation -j "$jobs"

# The full suite last, so its summary closes the output.
ctest --preset default -j "$jobs"
