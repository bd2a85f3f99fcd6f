// GEMV v3 (cuda_gemv.h): 8-bit activations and integer dot products, as llama.cpp's MMVQ.
//
// 1. The activation rows are quantized once per call into scratch, in the CPU backend's
//    Quantized8 formats (Q8_K for Q4_K, Q5_K, Q6_K, IQ4_XS; Q8_0 for Q8_0), by the per-value
//    steps of cuda_vec_dot_q8.cuh: one warp per 256-value Q8_K block (8 values per lane; the
//    scale's sign comes from the first value of largest magnitude, found with a warp ballot),
//    4 lanes per 32-value Q8_0 block.
// 2. The GEMV: a warp owns kRowsPerWarp rows. A block dot product is split into Dot::kParts
//    parts (8 for the 256-value formats, 2 for Q8_0), one per lane, so a warp covers
//    32 / kParts blocks of each of its rows per step. Each lane computes its part's integers with
//    __dp4a (Q8Dot::part) for every (row, token), turns them into a float (Q8Dot::combine) and
//    accumulates; a warp reduction finishes each output. Every weight byte is read from DRAM once
//    per call; activation words come from L1/L2 and serve every row of the warp.
//
// Results equal the CPU backend's Quantized8 path up to float summation order (the host test
// proves the per-block integers bit for bit and bounds the order's effect).
#include <cstdint>
#include <string>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_gemv.h"
#include "backend/cuda/cuda_gemv_common.cuh"
#include "backend/cuda/cuda_vec_dot_q8.cuh"
#include "peregrine/error.h"

namespace peregrine::cuda {
namespace {

using q8::PartSums;
using q8::Q8Dot;

constexpr int kWarpsPerCta = 4;
constexpr int kRowsPerWarp = 2;
constexpr int kRowsPerCta = kWarpsPerCta * kRowsPerWarp;

// ---- activation quantizers ----

// One warp per (token, 256-value block); lane l holds values 8l..8l+7.
__global__ void quantize_q8k_kernel(const float* __restrict__ x, int64_t n_in, int64_t n_blocks_total,
                                    uint8_t* __restrict__ act) {
  const int lane = threadIdx.x & 31;
  const int64_t block = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  if (block >= n_blocks_total) return;  // whole warps
  const int64_t blocks_per_row = n_in / 256;
  const int64_t token = block / blocks_per_row, b = block % blocks_per_row;
  float v[8];
  load_x8(x + token * n_in + b * 256 + 8 * lane, v);
  uint8_t* dst = act + block * q8::kQ8KBytes;

  float amax = 0.0f;
#pragma unroll
  for (int k = 0; k < 8; ++k) amax = fmaxf(amax, fabsf(v[k]));
  amax = warp_max(amax);
  if (amax == 0.0f) {  // the CPU writes an all-zero block
    for (int i = lane; i < q8::kQ8KBytes / 4; i += 32) reinterpret_cast<uint32_t*>(dst)[i] = 0u;
    return;
  }
  // The first value (lowest index) whose magnitude is amax gives the sign of the scale.
  int first = 8;
#pragma unroll
  for (int k = 7; k >= 0; --k)
    if (fabsf(v[k]) == amax) first = k;
  const unsigned holders = __ballot_sync(0xffffffffu, first < 8);
  const int owner = __ffs(holders) - 1;
  float mine = 0.0f;
#pragma unroll
  for (int k = 0; k < 8; ++k)
    if (k == first) mine = v[k];
  const float max = __shfl_sync(0xffffffffu, mine, owner);

  const float iscale = q8::q8k_inverse_scale(max);
  uint32_t packed[2] = {0u, 0u};
  int sum = 0;
#pragma unroll
  for (int k = 0; k < 8; ++k) {
    const int q = q8::q8k_code(v[k], iscale);
    packed[k / 4] |= static_cast<uint32_t>(static_cast<uint8_t>(static_cast<int8_t>(q))) << (8 * (k % 4));
    sum += q;
  }
  reinterpret_cast<uint32_t*>(dst + q8::kQ8KQs)[2 * lane] = packed[0];
  reinterpret_cast<uint32_t*>(dst + q8::kQ8KQs)[2 * lane + 1] = packed[1];
  sum += __shfl_xor_sync(0xffffffffu, sum, 1);  // lanes 2s and 2s+1 hold the 16 values of bsum s
  if ((lane & 1) == 0) reinterpret_cast<int16_t*>(dst + q8::kQ8KBsums)[lane / 2] = static_cast<int16_t>(sum);
  if (lane == 0) *reinterpret_cast<float*>(dst) = 1.0f / iscale;
}

// 4 lanes per (token, 32-value block); lane l of the 4 holds values 8l..8l+7.
static_assert(Q8Dot<TensorType::Q8_0>::kValues == 4 * 8, "quantize_q8_0_kernel: 4 lanes of 8 values per block");
__global__ void quantize_q8_0_kernel(const float* __restrict__ x, int64_t n_in, int64_t n_blocks_total,
                                     uint8_t* __restrict__ act) {
  const int64_t thread = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t block = thread >> 2;
  const int sub = static_cast<int>(thread & 3);
  // Keep whole 4-lane groups alive for the shuffles; blocks past the end compute and do not store.
  const bool valid = block < n_blocks_total;
  const int64_t safe = valid ? block : n_blocks_total - 1;
  constexpr int kBlockValues = Q8Dot<TensorType::Q8_0>::kValues;
  const int64_t blocks_per_row = n_in / kBlockValues;
  const int64_t token = safe / blocks_per_row, b = safe % blocks_per_row;
  float v[8];
  load_x8(x + token * n_in + b * kBlockValues + 8 * sub, v);
  float amax = 0.0f;
#pragma unroll
  for (int k = 0; k < 8; ++k) amax = fmaxf(amax, fabsf(v[k]));
  amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
  amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 2));
  if (!valid) return;
  const float inverse_scale = q8::q8_0_inverse_scale(amax);
  uint8_t* dst = act + safe * q8::kQ8_0Bytes;
  uint16_t* qs = reinterpret_cast<uint16_t*>(dst + 2 + 8 * sub);  // Q8_0 blocks (34 bytes): 2-byte aligned
#pragma unroll
  for (int k = 0; k < 8; k += 2) {
    const uint32_t lo = static_cast<uint8_t>(static_cast<int8_t>(q8::q8_0_code(v[k], inverse_scale)));
    const uint32_t hi = static_cast<uint8_t>(static_cast<int8_t>(q8::q8_0_code(v[k + 1], inverse_scale)));
    qs[k / 2] = static_cast<uint16_t>(lo | (hi << 8));
  }
  if (sub == 0) *reinterpret_cast<uint16_t*>(dst) = static_cast<uint16_t>(q8::float_to_half_bits(amax / 127.0f));
}

// ---- GEMV ----

template <TensorType kType, int kTokens>
__global__ void __launch_bounds__(kWarpsPerCta * 32)
    gemv_q8_kernel(const uint8_t* __restrict__ w, uint64_t row_bytes, int64_t n_blocks, int64_t n_out,
                   const uint8_t* __restrict__ act, uint64_t act_row_bytes, float* __restrict__ y) {
  using Dot = Q8Dot<kType>;
  constexpr int kBlocksPerStep = 32 / Dot::kParts;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t first_row = (static_cast<int64_t>(blockIdx.x) * kWarpsPerCta + warp) * kRowsPerWarp;
  if (first_row >= n_out) return;
  const int n_rows = static_cast<int>(min64(kRowsPerWarp, n_out - first_row));
  const int part = lane % Dot::kParts;

  float acc[kRowsPerWarp][kTokens];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
    for (int t = 0; t < kTokens; ++t) acc[r][t] = 0.0f;

  for (int64_t b = lane / Dot::kParts; b < n_blocks; b += kBlocksPerStep) {
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      // Rows past the end repeat the last row (valid memory); their sums are never written.
      const uint8_t* wb = w + static_cast<uint64_t>(first_row + min(r, n_rows - 1)) * row_bytes + b * Dot::kWeightBytes;
#pragma unroll
      for (int t = 0; t < kTokens; ++t) {
        const uint8_t* ab = act + t * act_row_bytes + b * Dot::kActBytes;
        acc[r][t] += Dot::combine(wb, ab, Dot::part(wb, ab, part));
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
    for (int t = 0; t < kTokens; ++t) {
      const float sum = warp_sum(acc[r][t]);
      if (lane == 0 && r < n_rows) y[t * n_out + first_row + r] = sum;
    }
  }
}

template <TensorType kType>
void gemv_q8_typed(CudaBackend& be, const WeightView& w, const float* x, float* y, int64_t n_tokens) {
  using Dot = Q8Dot<kType>;
  const int64_t n_blocks = w.n_in / Dot::kValues;
  const uint64_t act_row_bytes = static_cast<uint64_t>(n_blocks) * Dot::kActBytes;
  auto* act = static_cast<uint8_t*>(be.scratch(CudaBackend::Scratch::A, act_row_bytes * static_cast<uint64_t>(n_tokens)));
  const int64_t n_act_blocks = n_blocks * n_tokens;
  constexpr int kThreads = 256;
  if constexpr (Dot::kValues == 256)
    launch_kernel(quantize_q8k_kernel, blocks_for(n_act_blocks * 32, kThreads), kThreads, 0, be.stream(), x, w.n_in,
                  n_act_blocks, act);
  else
    launch_kernel(quantize_q8_0_kernel, blocks_for(n_act_blocks * 4, kThreads), kThreads, 0, be.stream(), x, w.n_in,
                  n_act_blocks, act);
  PEREGRINE_CUDA_LAUNCHED();
  with_token_count(n_tokens, [&](auto tokens) {
    launch_kernel(gemv_q8_kernel<kType, decltype(tokens)::value>, blocks_for(w.n_out, kRowsPerCta), kWarpsPerCta * 32,
                  0, be.stream(), w.data, w.row_bytes, n_blocks, w.n_out, act, act_row_bytes, y);
    PEREGRINE_CUDA_LAUNCHED();
  });
}

// Row alignment the type's word loads need, 0 for types v3 does not handle.
int row_align(TensorType type) {
  switch (type) {
    case TensorType::Q8_0: return Q8Dot<TensorType::Q8_0>::kRowAlign;
    case TensorType::Q4_K: return Q8Dot<TensorType::Q4_K>::kRowAlign;
    case TensorType::Q5_K: return Q8Dot<TensorType::Q5_K>::kRowAlign;
    case TensorType::Q6_K: return Q8Dot<TensorType::Q6_K>::kRowAlign;
    case TensorType::IQ4_XS: return Q8Dot<TensorType::IQ4_XS>::kRowAlign;
    default: return 0;
  }
}

}  // namespace

bool gemv_v3_supports(const WeightView& w) {
  const int align = row_align(w.type);
  return align > 0 && w.n_in > 0 && w.n_in % static_cast<int64_t>(tensor_type_info(w.type).block_elems) == 0 &&
         reinterpret_cast<uintptr_t>(w.data) % static_cast<uintptr_t>(align) == 0 && w.row_bytes % align == 0;
}

void gemv_v3(CudaBackend& be, const WeightView& w, const float* x, float* y, int64_t n_tokens) {
  if (!gemv_v3_supports(w))
    throw Error("cuda matmul: GEMV v3 has no kernel for tensor '" + std::string(w.name) + "' (type " +
                std::string(tensor_type_info(w.type).name) + ")");
  switch (w.type) {
    case TensorType::Q8_0: return gemv_q8_typed<TensorType::Q8_0>(be, w, x, y, n_tokens);
    case TensorType::Q4_K: return gemv_q8_typed<TensorType::Q4_K>(be, w, x, y, n_tokens);
    case TensorType::Q5_K: return gemv_q8_typed<TensorType::Q5_K>(be, w, x, y, n_tokens);
    case TensorType::Q6_K: return gemv_q8_typed<TensorType::Q6_K>(be, w, x, y, n_tokens);
    case TensorType::IQ4_XS: return gemv_q8_typed<TensorType::IQ4_XS>(be, w, x, y, n_tokens);
    default: break;
  }
}

}  // namespace peregrine::cuda
