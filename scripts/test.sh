#!/usr/bin/env bash
# Builds Peregrine and runs every test. This is the README's test command and what CI runs.
#  1. the default build (Qt 5.15 + KF5 on Debian 12, CUDA when a toolkit is found): everything;
#  2. a Qt 6 build of the app and its widgets (highlighting compiled out where KF6 is missing),
#     so the Qt 6 side never rots;
#  3. a CUDA emulation build running the CUDA tests on the CPU (no GPU needed);
#  4. every test of the default build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
jobs=$(nproc)

cmake --preset default
cmake --build --preset default -j "$jobs"

if dpkg-query -W -f='${Status}' qt6-base-dev 2>/dev/null | grep -q "install ok installed"; then
  echo "== Qt 6 build of app/ and ui/ =="
  cmake -S . -B build-qt6 -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPEREGRINE_QT=6 -DPEREGRINE_CUDA=OFF \
        -DPEREGRINE_BUILD_BENCHMARKS=OFF
  cmake --build build-qt6 -j "$jobs" --target peregrine_app_tests peregrine_ui_tests
  ctest --test-dir build-qt6 -L 'app|ui' --output-on-failure -j "$jobs"
fi

# The CUDA code run for real on the CPU: the CUDA backend built against the host-run CUDA
# emulator (docs/cuda.md, "Running the CUDA code without a GPU"), engine and CUDA tests only.
echo "== CUDA emulation build: the CUDA tests on the CPU =="
cmake -S . -B build-cuda-emulation -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPEREGRINE_CUDA_EMULATION=ON \
      -DPEREGRINE_QT=OFF -DPEREGRINE_BUILD_BENCHMARKS=OFF
cmake --build build-cuda-emulation -j "$jobs" --target peregrine_cuda_tests
ctest --test-dir build-cuda-emulation -L cuda --output-on-failure -j "$jobs"

# The full suite last, so its summary closes the output.
ctest --preset default -j "$jobs"
