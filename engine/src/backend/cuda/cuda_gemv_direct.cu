// GEMV v2 (cuda_gemv.h): float activations, weights loaded straight from global memory into
// registers, no shared-memory staging.
//
// A row is a sequence of units (Unit<type>): kBlocks whole blocks whose bytes are a multiple of 16
// (Q4_K 144 = 9·16, Q5_K 176 = 11·16, IQ4_XS 2·136 = 17·16, Q8_0 8·34 = 17·16, F16/BF16 4·16,
// F32 2·32). A warp owns kGroupsPerWarp groups of kRowsPerLane consecutive rows; its work items
// are (group, unit) pairs, spread over the lanes. A lane issues all 16-byte loads of its unit for
// its kRowsPerLane rows (up to 2·17 loads in flight per lane) before decoding any of them, then
// decodes groups of 8 values from registers with the same BlockCodec math as v1 and multiplies
// them with the activations, each activation value serving kRowsPerLane rows. Every weight byte
// is read from DRAM exactly once per call; flattening (group, unit) keeps the lanes busy when a
// row has fewer units than a warp has lanes (a 5120-wide Q4_K row has 20 units).
//
// Needs 16-byte aligned rows (data and row_bytes) and n_in a multiple of the unit's values;
// otherwise gemv_v2_supports is false and the caller falls back to v1.
#include <cstdint>
#include <string>
#include <type_traits>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_gemv.h"
#include "backend/cuda/cuda_gemv_common.cuh"
#include "backend/cuda/cuda_quant_blocks.cuh"
#include "peregrine/error.h"

namespace peregrine::cuda {
namespace {

using blocks::BlockCodec;

constexpr int kWarpsPerCta = 4;
constexpr int kRowsPerLane = 2;
constexpr int kGroupsPerWarp = 2;
constexpr int kRowsPerWarp = kRowsPerLane * kGroupsPerWarp;
constexpr int kRowsPerCta = kWarpsPerCta * kRowsPerWarp;

// Blocks per unit, 0 for types v2 does not handle.
template <TensorType kType>
constexpr int unit_blocks() {
  switch (kType) {
    case TensorType::F32: return 2;
    case TensorType::F16:
    case TensorType::BF16: return 4;
    case TensorType::Q8_0: return 8;
    case TensorType::Q4_K:
    case TensorType::Q5_K: return 1;
    case TensorType::IQ4_XS: return 2;
    default: return 0;
  }
}

template <TensorType kType>
struct Unit {
  using Codec = BlockCodec<kType>;
  static constexpr int kBlocks = unit_blocks<kType>();
  static constexpr int kBytes = kBlocks * Codec::kBytes;
  static constexpr int kValues = kBlocks * Codec::kValues;
  static constexpr int kChunks = kBytes / 16;  // uint4 loads per row
  static_assert(kBlocks == 0 || kBytes % 16 == 0, "a unit is whole 16-byte chunks");
};

template <TensorType kType, int kTokens>
__global__ void __launch_bounds__(kWarpsPerCta * 32)
    gemv_direct_kernel(const uint8_t* __restrict__ w, uint64_t row_bytes, int64_t n_in, int64_t n_out,
                       const float* __restrict__ x, float* __restrict__ y) {
  using U = Unit<kType>;
  using Codec = typename U::Codec;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t first_row = (static_cast<int64_t>(blockIdx.x) * kWarpsPerCta + warp) * kRowsPerWarp;
  if (first_row >= n_out) return;  // whole warps leave; nothing syncs across warps
  const int n_rows = static_cast<int>(min64(kRowsPerWarp, n_out - first_row));
  const int n_units = static_cast<int>(n_in / U::kValues);
  const int n_items = kGroupsPerWarp * n_units;

  float acc[kRowsPerWarp][kTokens];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
    for (int t = 0; t < kTokens; ++t) acc[r][t] = 0.0f;

  for (int item = lane; item < n_items; item += 32) {
    const int group = item / n_units, unit = item % n_units;
    uint4 chunk[kRowsPerLane][U::kChunks];
#pragma unroll
    for (int r = 0; r < kRowsPerLane; ++r) {
      const int row = group * kRowsPerLane + r;
      const uint4* src = reinterpret_cast<const uint4*>(w + static_cast<uint64_t>(first_row + min(row, n_rows - 1)) *
                                                                row_bytes) +
                         static_cast<int64_t>(unit) * U::kChunks;
#pragma unroll
      for (int c = 0; c < U::kChunks; ++c) chunk[r][c] = __ldg(src + c);  // all loads before any decode
    }

    float part[kRowsPerLane][kTokens];
#pragma unroll
    for (int r = 0; r < kRowsPerLane; ++r)
#pragma unroll
      for (int t = 0; t < kTokens; ++t) part[r][t] = 0.0f;
#pragma unroll
    for (int b = 0; b < U::kBlocks; ++b) {
#pragma unroll
      for (int g = 0; g < Codec::kGroups; ++g) {
        float wv[kRowsPerLane][8];
#pragma unroll
        for (int r = 0; r < kRowsPerLane; ++r)
          Codec::decode8(reinterpret_cast<const uint8_t*>(chunk[r]) + b * Codec::kBytes, g, wv[r]);
        const int64_t col = static_cast<int64_t>(unit) * U::kValues + b * Codec::kValues + g * 8;
#pragma unroll
        for (int t = 0; t < kTokens; ++t) {
          float xv[8];
          load_x8(x + t * n_in + col, xv);
#pragma unroll
          for (int r = 0; r < kRowsPerLane; ++r)
#pragma unroll
            for (int k = 0; k < 8; ++k) part[r][t] = fmaf(wv[r][k], xv[k], part[r][t]);
        }
      }
    }
    // The item's group is known only at run time: a predicated add keeps acc in registers.
#pragma unroll
    for (int gi = 0; gi < kGroupsPerWarp; ++gi) {
      if (gi == group) {
#pragma unroll
        for (int r = 0; r < kRowsPerLane; ++r)
#pragma unroll
          for (int t = 0; t < kTokens; ++t) acc[gi * kRowsPerLane + r][t] += part[r][t];
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
void gemv_direct_typed(const WeightView& w, const float* x, float* y, int64_t n_tokens, cudaStream_t stream) {
  if constexpr (Unit<kType>::kBlocks > 0) {
    with_token_count(n_tokens, [&](auto tokens) {
      launch_kernel(gemv_direct_kernel<kType, decltype(tokens)::value>, blocks_for(w.n_out, kRowsPerCta),
                    kWarpsPerCta * 32, 0, stream, w.data, w.row_bytes, w.n_in, w.n_out, x, y);
      PEREGRINE_CUDA_LAUNCHED();
    });
  }
}

// Values per unit of the weight's type, 0 when v2 has no kernel for it.
int unit_values(TensorType type) {
  switch (type) {
    case TensorType::F32: return Unit<TensorType::F32>::kValues;
    case TensorType::F16: return Unit<TensorType::F16>::kValues;
    case TensorType::BF16: return Unit<TensorType::BF16>::kValues;
    case TensorType::Q8_0: return Unit<TensorType::Q8_0>::kValues;
    case TensorType::Q4_K: return Unit<TensorType::Q4_K>::kValues;
    case TensorType::Q5_K: return Unit<TensorType::Q5_K>::kValues;
    case TensorType::IQ4_XS: return Unit<TensorType::IQ4_XS>::kValues;
    default: return 0;
  }
}

}  // namespace

bool gemv_v2_supports(const WeightView& w) {
  const int values = unit_values(w.type);
  return values > 0 && w.n_in > 0 && w.n_in % values == 0 && (reinterpret_cast<uintptr_t>(w.data) & 15u) == 0 &&
         w.row_bytes % 16 == 0;
}

void gemv_v2(const WeightView& w, const float* x, float* y, int64_t n_tokens, cudaStream_t stream) {
  if (!gemv_v2_supports(w))
    throw Error("cuda matmul: GEMV v2 has no kernel for tensor '" + std::string(w.name) + "' (type " +
                std::string(tensor_type_info(w.type).name) + ", n_in " + std::to_string(w.n_in) + ")");
  switch (w.type) {
    case TensorType::F32: return gemv_direct_typed<TensorType::F32>(w, x, y, n_tokens, stream);
    case TensorType::F16: return gemv_direct_typed<TensorType::F16>(w, x, y, n_tokens, stream);
    case TensorType::BF16: return gemv_direct_typed<TensorType::BF16>(w, x, y, n_tokens, stream);
    case TensorType::Q8_0: return gemv_direct_typed<TensorType::Q8_0>(w, x, y, n_tokens, stream);
    case TensorType::Q4_K: return gemv_direct_typed<TensorType::Q4_K>(w, x, y, n_tokens, stream);
    case TensorType::Q5_K: return gemv_direct_typed<TensorType::Q5_K>(w, x, y, n_tokens, stream);
    case TensorType::IQ4_XS: return gemv_direct_typed<TensorType::IQ4_XS>(w, x, y, n_tokens, stream);
    default: break;
  }
}

}  // namespace peregrine::cuda
