#!/usr/bin/env bash
# The GPU benchmark of issue 7 (docs/perf.md, "GPU benchmark (issue 7): how to run").
#
#   scripts/bench-gpu.sh [--cpu-smoke] [--steps LIST] [--keep-models] [--fresh] [SCRATCH_DIR]
#
# Steps, in order (default: all):
#   build      configure (CUDA on) and build peregrine-cli and bench_cuda_matmul
#   bandwidth  bench_cuda_matmul: device read bandwidth (the roofline) and GEMV GB/s per type
#   27b-q4     synthetic qwen3.6-27b Q4_K_M: prefill 512 / 4096, decode at depth 512 / 8192,
#              roofline fraction, verify widths 1..9, draft pass, MTP-3 projection (0.8,0.6,0.45),
#              a per-operation table of one decode step and one verify pass (bench --op-profile,
#              CUDA events), and a per-kernel table of decode steps when nsys is installed
#   27b-q8     the same for Q8_0 (no kernel table)
#   35b-q4     the same for qwen3.6-35b-a3b Q4_K_M
#   summary    the Markdown table for docs/perf.md, from everything measured so far
# Every number lands in $BUILD_DIR/bench-gpu/results.jsonl (one JSON object a line); steps append,
# so a run can be split across several commands (--fresh starts the file over).
# Synthetic models go to SCRATCH_DIR ($1, else $BENCH_DIR, else $BUILD_DIR/bench-gpu/models) and
# are deleted after their step unless --keep-models (the three together take about 65 GB).
#
# --cpu-smoke: the same pipeline on the CPU backend with the small bench-1b shape and tiny token
# counts (no GPU needed), to prove the machinery; its numbers mean nothing for issue 7.
#
# Environment: BUILD_DIR (default: build, the CMake preset's), BENCH_REPS (default 3; smoke 1),
# BENCH_JOBS (build jobs, default nproc), BENCH_ROOFLINE_GBS (skip the bandwidth measurement).
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0 keep_models=0 fresh=0 steps="" scratch="${BENCH_DIR:-}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cpu-smoke) smoke=1 ;;
    --keep-models) keep_models=1 ;;
    --fresh) fresh=1 ;;
    --steps) steps="$2"; shift ;;
    --steps=*) steps="${1#--steps=}" ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    -*) echo "bench-gpu: unknown option $1" >&2; exit 2 ;;
    *) scratch="$1" ;;
  esac
  shift
done
[[ -n "$steps" ]] || steps="build,bandwidth,27b-q4,27b-q8,35b-q4,summary"

build_dir="${BUILD_DIR:-build}"
results_dir="$build_dir/bench-gpu"
results="$results_dir/results.jsonl"
scratch="${scratch:-$results_dir/models}"
reps="${BENCH_REPS:-3}"
jobs="${BENCH_JOBS:-$(nproc)}"
cli="$build_dir/bin/peregrine-cli"
summary=(python3 scripts/bench_summary.py)
mkdir -p "$results_dir" "$scratch"
[[ $fresh -eq 1 ]] && rm -f "$results"

say() { echo "== bench-gpu: $*" >&2; }
has_step() { [[ ",$steps," == *",$1,"* ]]; }

if [[ $smoke -eq 1 ]]; then
  backend=cpu
  # Small enough for a 2-core machine in a minute or two; the shape is the same for every "model".
  shape_27b=bench-1b shape_35b=tiny-moe prefill=(16 32) depths=(8 32) n_gen=4 widths=4
  reps="${BENCH_REPS:-1}"
else
  backend=cuda
  shape_27b=qwen3.6-27b shape_35b=qwen3.6-35b-a3b prefill=(512 4096) depths=(512 8192) n_gen=128 widths=9
  if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "bench-gpu: no NVIDIA GPU found (nvidia-smi); use --cpu-smoke to check the pipeline on the CPU" >&2
    exit 1
  fi
  say "about 65 GB of disk for the synthetic models under $scratch (each deleted after its step)"
fi

# The device line every summary starts from.
if [[ $smoke -eq 1 ]]; then
  device_info="cpu smoke test,none,$(nproc) cores"
else
  device_info="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)"
fi
"${summary[@]}" device --info "$device_info" --backend "$backend" >>"$results"

if has_step build; then
  say "build in $build_dir"
  if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
    cuda_option=-DPEREGRINE_CUDA=ON
    [[ $smoke -eq 1 ]] && cuda_option=-DPEREGRINE_CUDA=AUTO
    if [[ "$build_dir" == build ]]; then
      cmake --preset default "$cuda_option"
    else
      cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPEREGRINE_BUILD_TESTS=ON "$cuda_option"
    fi
  fi
  targets=(peregrine-cli)
  [[ $smoke -eq 0 ]] && targets+=(bench_cuda_matmul)
  cmake --build "$build_dir" -j "$jobs" --target "${targets[@]}"
fi
[[ -x "$cli" ]] || { echo "bench-gpu: $cli is missing; run the build step" >&2; exit 1; }

bandwidth_file="$results_dir/read_bandwidth_gbs"
if [[ -n "${BENCH_ROOFLINE_GBS:-}" ]]; then
  echo "$BENCH_ROOFLINE_GBS" >"$bandwidth_file"
elif has_step bandwidth; then
  if [[ $smoke -eq 1 ]]; then
    # No CUDA here: a nominal figure, recorded as such, so the roofline columns can be checked.
    echo 20 >"$bandwidth_file"
    "${summary[@]}" wrap --kind bandwidth --label "nominal (cpu smoke)" <<<'{"read_bandwidth_gbs": 20}' >>"$results"
  else
    say "read bandwidth and GEMV throughput (bench_cuda_matmul)"
    "$build_dir/bin/bench_cuda_matmul" | tee "$results_dir/cuda_matmul.jsonl" |
      "${summary[@]}" wrap --kind cuda_matmul --label gemv --lines >>"$results"
    "${summary[@]}" bandwidth <"$results_dir/cuda_matmul.jsonl" >"$bandwidth_file"
  fi
fi
[[ -s "$bandwidth_file" ]] || { echo "bench-gpu: no read bandwidth yet; run the bandwidth step" >&2; exit 1; }
read_gbs="$(cat "$bandwidth_file")"
say "roofline at $read_gbs GB/s"

# bench_model LABEL SHAPE TYPE [kernels]
bench_model() {
  local label="$1" shape="$2" type="$3" kernels="${4:-}"
  local model="$scratch/$label.gguf"
  if [[ ! -f "$model" ]]; then
    say "$label: make-synthetic --shape $shape --type $type"
    "$cli" make-synthetic --shape "$shape" --type "$type" --out "$model" --threads "$(nproc)" >&2
  fi
  local i profile=()
  [[ -n "$kernels" ]] && profile=(--op-profile)
  for i in 0 1; do
    local p="${prefill[$i]}" d="${depths[$i]}"
    say "$label: prefill $p, decode $n_gen at depth $d, verify widths 1..$widths, MTP-3"
    "$cli" bench --model "$model" --backend "$backend" -r "$reps" -p "$p" -n "$n_gen" --depth "$d" \
      --verify-widths "$widths" --roofline-gbs "$read_gbs" --mtp 3 --acceptance 0.8,0.6,0.45 \
      ${profile[@]+"${profile[@]}"} --json |
      "${summary[@]}" wrap --kind bench --label "$label" --shape "$shape" --type "$type" >>"$results"
  done
  if [[ -n "$kernels" ]]; then
    if command -v nsys >/dev/null; then
      say "$label: per-kernel times of $n_gen decode steps from an empty sequence (nsys)"
      local report="$results_dir/$label-kernels"
      nsys profile --force-overwrite true --trace cuda -o "$report" \
        "$cli" bench --model "$model" --backend "$backend" -r 1 -p 0 -n "$n_gen" >&2
      nsys stats --force-export true --report cuda_gpu_kern_sum --format csv -o "$report" "$report.nsys-rep" >&2
      "${summary[@]}" kernels --label "$label" --steps "$((n_gen + 1))" <"$report"_cuda_gpu_kern_sum.csv >>"$results"
    else
      say "$label: nsys not installed, no per-kernel table"
      "${summary[@]}" wrap --kind kernels --label "$label" <<<'{"skipped": "nsys not installed"}' >>"$results"
    fi
  fi
  [[ $keep_models -eq 1 ]] || rm -f "$model"
}

has_step 27b-q4 && bench_model 27b-q4 "$shape_27b" Q4_K_M kernels
has_step 27b-q8 && bench_model 27b-q8 "$shape_27b" Q8_0
has_step 35b-q4 && bench_model 35b-q4 "$shape_35b" Q4_K_M
if has_step summary; then
  "${summary[@]}" summary <"$results" | tee "$results_dir/summary.md"
fi
say "results: $results"
