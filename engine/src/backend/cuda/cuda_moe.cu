// CudaBackend::matmul_experts and moe_combine: the routed experts of a decode / verify step with
// the expert ids in device memory (backend.h), so no MoE layer waits for the host.
//
// matmul_experts, for 1..kMaxGemvTokens tokens × k slots (as llama.cpp's mul_mat_id for small
// batches): grid.y walks the slots (token, j); the CTA of the first slot naming an expert
// computes that expert's rows for every token that chose it, the later slots naming it leave at
// once, so each selected expert's weights are read from DRAM once per call. Inside a CTA the
// work is the float-activation GEMV of cuda_matmul.cu (v1) without shared-memory staging: each
// warp owns kRowsPerWarp rows, every lane decodes groups of 8 weights with the BlockCodec of
// cuda_quant_blocks.cuh (bit-exact with the reference dequantizers) and accumulates them against
// the activation rows of the tokens that chose the expert; a warp reduction finishes each
// output. Results equal CudaBackend::matmul on the expert's rows up to float summation order.
//
// moe_combine: one thread per output value adds the slots in ascending expert id, each as
// round(round(w·x) + acc) — what scatter_add_rows' atomicAdd of w·x does expert after expert on
// the host-grouped path, so the two paths agree bit for bit where the expert outputs do. A token
// naming one expert twice gets NaN outputs (the CPU backend throws; a kernel cannot).
#include <string>
#include <type_traits>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_gemv.h"
#include "backend/cuda/cuda_gemv_common.cuh"
#include "backend/cuda/cuda_quant_blocks.cuh"
#include "peregrine/error.h"

namespace peregrine::cuda {
namespace {

using blocks::BlockCodec;

constexpr int kWarpsPerCta = 4;
constexpr int kRowsPerWarp = 2;
constexpr int kRowsPerCta = kWarpsPerCta * kRowsPerWarp;
constexpr int kCombineThreads = 256;

// Grid: (ceil(rows / kRowsPerCta), n_tokens · k). y: [kTokens][k][rows].
template <TensorType kType, int kTokens>
__global__ void __launch_bounds__(kWarpsPerCta * 32)
    matmul_experts_kernel(const uint8_t* __restrict__ w, uint64_t row_bytes, uint64_t expert_bytes, int64_t n_expert,
                          int64_t n_in, int64_t rows, const int32_t* __restrict__ ids, int k,
                          const float* __restrict__ x, int x_per_slot, float* __restrict__ y) {
  using Codec = BlockCodec<kType>;
  const int slot = static_cast<int>(blockIdx.y);
  const int32_t expert = ids[slot];
  for (int s = 0; s < slot; ++s)
    if (ids[s] == expert) return;  // an earlier CTA computes this expert (whole CTA leaves, no sync below)

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t first_row = (static_cast<int64_t>(blockIdx.x) * kWarpsPerCta + warp) * kRowsPerWarp;
  if (first_row >= rows) return;  // whole warps leave
  const int n_rows = static_cast<int>(min64(kRowsPerWarp, rows - first_row));

  // The slot of each token that chose this expert (−1: the token did not) and its input row.
  int token_slot[kTokens];
  const float* x_row[kTokens];
#pragma unroll
  for (int t = 0; t < kTokens; ++t) {
    token_slot[t] = -1;
    for (int j = 0; j < k; ++j)
      if (ids[t * k + j] == expert) token_slot[t] = j;
    x_row[t] = x + (x_per_slot ? static_cast<int64_t>(t) * k + max(token_slot[t], 0) : t) * n_in;
  }

  if (expert < 0 || expert >= n_expert) {  // a corrupt id: visible NaN outputs instead of a stray read
    if (lane == 0)
#pragma unroll
      for (int t = 0; t < kTokens; ++t)
        if (token_slot[t] >= 0)
          for (int r = 0; r < n_rows; ++r) y[(static_cast<int64_t>(t) * k + token_slot[t]) * rows + first_row + r] = NAN;
    return;
  }

  const uint8_t* w_rows = w + static_cast<uint64_t>(expert) * expert_bytes + static_cast<uint64_t>(first_row) * row_bytes;
  const int64_t n_blocks = n_in / Codec::kValues;
  const int64_t n_groups = n_blocks * Codec::kGroups;

  float acc[kRowsPerWarp][kTokens];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
    for (int t = 0; t < kTokens; ++t) acc[r][t] = 0.0f;

  for (int64_t g = lane; g < n_groups; g += 32) {
    const int64_t block = g / Codec::kGroups;
    const int group = static_cast<int>(g % Codec::kGroups);
    float wv[kRowsPerWarp][8];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      // Rows past the end decode the last row again (valid memory); their sums are never written.
      const uint8_t* row = w_rows + static_cast<uint64_t>(min(r, n_rows - 1)) * row_bytes;
      Codec::decode8(row + block * Codec::kBytes, group, wv[r]);
    }
    const int64_t col = block * Codec::kValues + group * 8;
#pragma unroll
    for (int t = 0; t < kTokens; ++t) {
      if (token_slot[t] < 0) continue;
      float xv[8];
      load_x8(x_row[t] + col, xv);
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
        for (int v = 0; v < 8; ++v) acc[r][t] = fmaf(wv[r][v], xv[v], acc[r][t]);
    }
  }

  if constexpr (Codec::kPlain) {
    // Rows of plain types may end in a partial group: its values, one per lane.
    const int tail = static_cast<int>(n_in % 8);
    if (lane < tail) {
      const int64_t col = n_blocks * 8 + lane;
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const uint8_t* row = w_rows + static_cast<uint64_t>(min(r, n_rows - 1)) * row_bytes;
        const float wr = Codec::value(row + n_blocks * Codec::kBytes, lane);
#pragma unroll
        for (int t = 0; t < kTokens; ++t)
          if (token_slot[t] >= 0) acc[r][t] = fmaf(wr, __ldg(x_row[t] + col), acc[r][t]);
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
    for (int t = 0; t < kTokens; ++t) {
      const float sum = warp_sum(acc[r][t]);
      if (lane == 0 && r < n_rows && token_slot[t] >= 0)
        y[(static_cast<int64_t>(t) * k + token_slot[t]) * rows + first_row + r] = sum;
    }
  }
}

template <TensorType kType>
void launch_matmul_experts(const ExpertsView& w, const int32_t* ids, int64_t n_tokens, int64_t k, const float* x,
                           bool x_per_slot, float* y, cudaStream_t stream) {
  const WeightView& s = w.stacked;
  const dim3 grid(blocks_for(w.rows, kRowsPerCta), static_cast<unsigned>(n_tokens * k));
  const uint64_t expert_bytes = static_cast<uint64_t>(w.stride) * s.row_bytes;
  with_token_count(n_tokens, [&](auto tokens) {
    launch_kernel(matmul_experts_kernel<kType, decltype(tokens)::value>, grid, dim3(kWarpsPerCta * 32), 0, stream,
                  s.data, s.row_bytes, expert_bytes, w.count(), s.n_in, w.rows, ids, static_cast<int>(k), x,
                  x_per_slot ? 1 : 0, y);
    PEREGRINE_CUDA_LAUNCHED();
  });
}

// Grid: (ceil(n / kCombineThreads), n_tokens).
__global__ void moe_combine_kernel(const float* __restrict__ expert_out, const int32_t* __restrict__ ids,
                                   const float* __restrict__ weights, int k, int64_t n, float* __restrict__ out) {
  const int64_t t = blockIdx.y;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int32_t* token_ids = ids + t * k;
  float acc = out[t * n + i];
  int32_t previous = -1;
  for (int step = 0; step < k; ++step) {
    int next = -1;  // the slot with the smallest id above the last one added
    for (int j = 0; j < k; ++j)
      if (token_ids[j] > previous && (next < 0 || token_ids[j] < token_ids[next])) next = j;
    if (next < 0) {  // a token naming one expert twice (or a negative id): never produced by the router, so
      acc = NAN;     // visible NaN outputs, as for a corrupt id in matmul_experts, rather than a partial sum
      break;
    }
    previous = token_ids[next];
    acc = __fadd_rn(acc, __fmul_rn(weights[t * k + next], expert_out[(t * k + next) * n + i]));
  }
  out[t * n + i] = acc;
}

}  // namespace

void CudaBackend::matmul_experts(const ExpertsView& w, const int32_t* ids, int64_t n_tokens, int64_t k,
                                 const float* x, bool x_per_slot, float* y) {
  if (n_tokens <= 0 || k <= 0 || w.rows <= 0) return;
  const WeightView& s = w.stacked;
  if (s.empty()) throw Error("cuda matmul_experts: tensor '" + std::string(s.name) + "' has no data");
  if (n_tokens > kMaxGemvTokens || n_tokens * k > 65535 || s.n_in == 0) {
    Backend::matmul_experts(w, ids, n_tokens, k, x, x_per_slot, y);  // the host-routed default
    return;
  }
  auto run = [&](auto type) {
    using Codec = blocks::BlockCodec<decltype(type)::value>;
    if (!Codec::kPlain && s.n_in % Codec::kValues != 0)
      throw Error("cuda matmul_experts: tensor '" + std::string(s.name) + "' has n_in = " + std::to_string(s.n_in) +
                  ", not a multiple of its block size " + std::to_string(Codec::kValues));
    launch_matmul_experts<decltype(type)::value>(w, ids, n_tokens, k, x, x_per_slot, y, stream());
  };
  if (!with_weight_type(s.type, run))
    throw Error("cuda matmul_experts: weight type " + std::string(tensor_type_info(s.type).name) + " of tensor '" +
                std::string(s.name) + "' is not supported by the CUDA backend");
}

void CudaBackend::moe_combine(const float* expert_out, const int32_t* ids, const float* weights, int64_t n_tokens,
                              int64_t k, int64_t n, float* out) {
  if (n_tokens <= 0 || k <= 0 || n <= 0) return;
  if (n_tokens > 65535) throw Error(cat("cuda moe_combine: ", n_tokens, " tokens (at most 65535, the grid's y)"));
  const dim3 grid(blocks_for(n, kCombineThreads), static_cast<unsigned>(n_tokens));
  launch_kernel(moe_combine_kernel, grid, dim3(kCombineThreads), 0, stream(), expert_out, ids, weights,
                static_cast<int>(k), n, out);
  PEREGRINE_CUDA_LAUNCHED();
}

}  // namespace peregrine::cuda
