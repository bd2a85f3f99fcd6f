// Helpers shared by the GEMV versions (cuda_matmul.cu, cuda_gemv_direct.cu, cuda_gemv_q8.cu) and
// matmul_experts (cuda_moe.cu).
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "backend/cuda/cuda_gemv.h"
#include "peregrine/error.h"

namespace peregrine::cuda {

// Calls f(std::integral_constant<int, n>{}) for n = n_tokens in 1..kMaxGemvTokens: one kernel
// instantiation per token count, so the accumulators stay in registers.
template <int kTokens = 1, class F>
void with_token_count(int64_t n_tokens, F&& f) {
  if constexpr (kTokens > kMaxGemvTokens) {
    throw Error("cuda matmul: GEMV called with " + std::to_string(n_tokens) + " tokens");
  } else {
    if (n_tokens == kTokens) return f(std::integral_constant<int, kTokens>{});
    with_token_count<kTokens + 1>(n_tokens, std::forward<F>(f));
  }
}

// Calls f(std::integral_constant<TensorType, t>{}) for the weight's type; false for types without
// a codec (cuda_quant_blocks.cuh): the weight types of every CUDA matrix product.
template <class F>
bool with_weight_type(TensorType type, F&& f) {
  switch (type) {
    case TensorType::F32: f(std::integral_constant<TensorType, TensorType::F32>{}); return true;
    case TensorType::F16: f(std::integral_constant<TensorType, TensorType::F16>{}); return true;
    case TensorType::BF16: f(std::integral_constant<TensorType, TensorType::BF16>{}); return true;
    case TensorType::Q8_0: f(std::integral_constant<TensorType, TensorType::Q8_0>{}); return true;
    case TensorType::Q4_0: f(std::integral_constant<TensorType, TensorType::Q4_0>{}); return true;
    case TensorType::Q4_1: f(std::integral_constant<TensorType, TensorType::Q4_1>{}); return true;
    case TensorType::Q5_0: f(std::integral_constant<TensorType, TensorType::Q5_0>{}); return true;
    case TensorType::Q5_1: f(std::integral_constant<TensorType, TensorType::Q5_1>{}); return true;
    case TensorType::Q4_K: f(std::integral_constant<TensorType, TensorType::Q4_K>{}); return true;
    case TensorType::Q5_K: f(std::integral_constant<TensorType, TensorType::Q5_K>{}); return true;
    case TensorType::Q6_K: f(std::integral_constant<TensorType, TensorType::Q6_K>{}); return true;
    case TensorType::IQ4_XS: f(std::integral_constant<TensorType, TensorType::IQ4_XS>{}); return true;
    default: return false;
  }
}

// 8 consecutive activations; vector loads when the address allows (n_in need not be a multiple
// of 4 for plain weight types, so rows of x are not always 16-byte aligned).
__device__ __forceinline__ void load_x8(const float* p, float* out) {
  if ((reinterpret_cast<uintptr_t>(p) & 15u) == 0) {
    const float4 a = __ldg(reinterpret_cast<const float4*>(p));
    const float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
    out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w;
    out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
  } else {
#pragma unroll
    for (int k = 0; k < 8; ++k) out[k] = __ldg(p + k);
  }
}

__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

}  // namespace peregrine::cuda
