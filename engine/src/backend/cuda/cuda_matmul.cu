// CudaBackend::matmul: y[t] = W·x[t] for weights in their GGUF encoding (docs/cuda.md,
// "Matrix products").
//
// Layouts: W is row-major, n_out rows of n_in values, row_bytes apart (GGUF / ggml ne =
// [n_in, n_out]); x is row-major [n_tokens][n_in] floats, y row-major [n_tokens][n_out] floats.
//
// Decode (n_tokens ≤ kMaxGemvTokens): one of the GEMV versions of cuda_gemv.h, chosen per call by
// choose_gemv_version. This file holds v1: each warp owns kRowsPerWarp consecutive rows; it stages
// a tile of each row's blocks in shared memory with 16-byte loads, every lane decodes groups of 8
// values (cuda_quant_blocks.cuh, the same math as the reference dequantizers) and accumulates
// float products against every activation row, so every weight byte is read from DRAM once per
// call whatever the token count, and each activation value loaded into registers serves
// kRowsPerWarp rows. A warp reduction finishes each output.
//
// Prefill (more tokens): the weight is dequantized to float32 row tiles in scratch (at most
// kPrefillTileBytes) and multiplied with cuBLAS (TF32 tensor cores, float accumulation; exact
// float32 with PEREGRINE_CUDA_PREFILL_MATH=fp32). Float32
// tiles rather than F16 keep activations in float (no F16 overflow for large activations) at the
// price of twice the tile traffic; F32 weights are used in place.
#include <cublas_v2.h>

#include <algorithm>
#include <climits>
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
constexpr int kRowsPerWarp = 4;
constexpr int kRowsPerCta = kWarpsPerCta * kRowsPerWarp;
constexpr int kStageBytesPerRow = 1024;                     // weight bytes of one row staged per step
constexpr uint64_t kPrefillTileBytes = 64ull << 20;         // float32 dequantization tile

// ---- GEMV ----

template <class Codec>
struct GemvTile {
  // Whole blocks of one row staged per step, and the shared-memory slot holding them (16 bytes
  // of slack so the slot can mirror the row's alignment modulo 16, see stage_row).
  static constexpr int kBlocks = kStageBytesPerRow / Codec::kBytes > 0 ? kStageBytesPerRow / Codec::kBytes : 1;
  static constexpr int kBytes = kBlocks * Codec::kBytes;
  static constexpr int kSlotBytes = (kBytes + 16 + 15) / 16 * 16;
  static constexpr int kMaxChunksPerLane = (kSlotBytes / 16 + 31) / 32;
};

// Copies `bytes` bytes from global `src` (any alignment) into `slot` (16-byte aligned, at least
// bytes + 16 long) using the whole warp, and returns where src[0] landed. The byte at src + i goes
// to slot[(src mod 16) + i], so the 16-byte aligned body of the source maps onto 16-byte aligned
// shared memory and moves with uint4 loads; the unaligned head and tail move byte by byte (no
// load reaches outside [src, src + bytes)). The caller syncs the warp before reading.
template <int kMaxChunksPerLane>
__device__ __forceinline__ const uint8_t* stage_row(uint8_t* slot, const uint8_t* src, int bytes, int lane) {
  const int misalign = static_cast<int>(reinterpret_cast<uintptr_t>(src) & 15u);
  const int head = misalign == 0 ? 0 : min(16 - misalign, bytes);
  const int n_chunks = (bytes - head) / 16;
  const int tail = bytes - head - 16 * n_chunks;
  uint8_t* dst = slot + misalign;
  if (lane < head) dst[lane] = __ldg(src + lane);
  if (lane < tail) dst[bytes - tail + lane] = __ldg(src + bytes - tail + lane);
  const uint4* body_src = reinterpret_cast<const uint4*>(src + head);
  uint4* body_dst = reinterpret_cast<uint4*>(dst + head);
  uint4 chunk[kMaxChunksPerLane];
#pragma unroll
  for (int i = 0; i < kMaxChunksPerLane; ++i) {
    const int c = lane + 32 * i;
    if (c < n_chunks) chunk[i] = __ldg(body_src + c);  // all loads in flight before any store
  }
#pragma unroll
  for (int i = 0; i < kMaxChunksPerLane; ++i) {
    const int c = lane + 32 * i;
    if (c < n_chunks) body_dst[c] = chunk[i];
  }
  return dst;
}

// Grid: ceil(n_out / kRowsPerCta) CTAs of kWarpsPerCta warps; warp w of CTA c computes rows
// [(c·kWarpsPerCta + w)·kRowsPerWarp, +kRowsPerWarp) for all kTokens activation rows.
template <TensorType kType, int kTokens>
__global__ void __launch_bounds__(kWarpsPerCta * 32)
    gemv_kernel(const uint8_t* __restrict__ w, uint64_t row_bytes, int64_t n_in, int64_t n_out,
                const float* __restrict__ x, float* __restrict__ y) {
  using Codec = BlockCodec<kType>;
  using Tile = GemvTile<Codec>;
  __shared__ __align__(16) uint8_t stage[kWarpsPerCta][kRowsPerWarp][Tile::kSlotBytes];

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t first_row = (static_cast<int64_t>(blockIdx.x) * kWarpsPerCta + warp) * kRowsPerWarp;
  if (first_row >= n_out) return;  // the whole warp leaves; nothing below syncs across warps
  const int n_rows = static_cast<int>(min64(kRowsPerWarp, n_out - first_row));
  const int64_t n_blocks = n_in / Codec::kValues;

  float acc[kRowsPerWarp][kTokens];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
    for (int t = 0; t < kTokens; ++t) acc[r][t] = 0.0f;

  for (int64_t block0 = 0; block0 < n_blocks; block0 += Tile::kBlocks) {
    const int tile_blocks = static_cast<int>(min64(Tile::kBlocks, n_blocks - block0));
    const uint8_t* staged[kRowsPerWarp];
    __syncwarp();  // every lane is done with the previous tile
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      staged[r] = nullptr;
      if (r < n_rows)
        staged[r] = stage_row<Tile::kMaxChunksPerLane>(
            stage[warp][r], w + static_cast<uint64_t>(first_row + r) * row_bytes + block0 * Codec::kBytes,
            tile_blocks * Codec::kBytes, lane);
    }
    __syncwarp();

    const int n_groups = tile_blocks * Codec::kGroups;
    for (int g = lane; g < n_groups; g += 32) {
      const int block = g / Codec::kGroups, group = g % Codec::kGroups;
      float wv[kRowsPerWarp][8];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        if (r < n_rows) {
          Codec::decode8(staged[r] + block * Codec::kBytes, group, wv[r]);
        } else {
#pragma unroll
          for (int k = 0; k < 8; ++k) wv[r][k] = 0.0f;
        }
      }
      const int64_t col = (block0 + block) * Codec::kValues + group * 8;
#pragma unroll
      for (int t = 0; t < kTokens; ++t) {
        float xv[8];
        load_x8(x + t * n_in + col, xv);
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
          for (int k = 0; k < 8; ++k) acc[r][t] = fmaf(wv[r][k], xv[k], acc[r][t]);
      }
    }
  }

  if constexpr (Codec::kPlain) {
    // Rows of plain types may end in a partial group: its values, one per lane.
    const int tail = static_cast<int>(n_in % 8);
    if (lane < tail) {
      const int64_t col = n_blocks * 8 + lane;
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        if (r < n_rows) {
          const float wr = Codec::value(w + static_cast<uint64_t>(first_row + r) * row_bytes + n_blocks * Codec::kBytes, lane);
#pragma unroll
          for (int t = 0; t < kTokens; ++t) acc[r][t] = fmaf(wr, __ldg(x + t * n_in + col), acc[r][t]);
        }
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

template <TensorType kType, int kTokens>
void launch_gemv(const WeightView& w, const float* x, float* y, cudaStream_t stream) {
  const unsigned grid = blocks_for(w.n_out, kRowsPerCta);
  launch_kernel(gemv_kernel<kType, kTokens>, grid, kWarpsPerCta * 32, 0, stream, w.data, w.row_bytes, w.n_in, w.n_out,
                x, y);
  PEREGRINE_CUDA_LAUNCHED();
}

template <TensorType kType>
void gemv_typed(const WeightView& w, const float* x, float* y, int64_t n_tokens, cudaStream_t stream) {
  with_token_count(n_tokens, [&](auto tokens) { launch_gemv<kType, decltype(tokens)::value>(w, x, y, stream); });
}

// ---- prefill: dequantized float32 tiles + cuBLAS ----

// tile[r][c] = W[first row + r][c] for r < n_rows: block types one thread per group of 8 values,
// plain types one thread per value.
template <TensorType kType>
__global__ void dequantize_rows_kernel(const uint8_t* __restrict__ w, uint64_t row_bytes, int64_t n_in, int64_t n_rows,
                                       float* __restrict__ tile) {
  using Codec = BlockCodec<kType>;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if constexpr (Codec::kPlain) {
    if (i >= n_rows * n_in) return;
    const int64_t r = i / n_in, c = i % n_in;
    tile[i] = Codec::value(w + static_cast<uint64_t>(r) * row_bytes + (c / 8) * Codec::kBytes, static_cast<int>(c % 8));
  } else {
    const int64_t groups_per_row = n_in / 8;
    if (i >= n_rows * groups_per_row) return;
    const int64_t r = i / groups_per_row, g = i % groups_per_row;
    float v[8];
    Codec::decode8(w + static_cast<uint64_t>(r) * row_bytes + (g / Codec::kGroups) * Codec::kBytes,
                   static_cast<int>(g % Codec::kGroups), v);
    float* out = tile + r * n_in + g * 8;  // 32-byte aligned: n_in is a multiple of 32 here
    reinterpret_cast<float4*>(out)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4*>(out)[1] = make_float4(v[4], v[5], v[6], v[7]);
  }
}

template <TensorType kType>
void dequantize_rows(const WeightView& w, int64_t n_rows, float* tile, cudaStream_t stream) {
  constexpr int kThreads = 256;
  const int64_t n_threads = BlockCodec<kType>::kPlain ? n_rows * w.n_in : n_rows * (w.n_in / 8);
  launch_kernel(dequantize_rows_kernel<kType>, blocks_for(n_threads, kThreads), kThreads, 0, stream, w.data,
                w.row_bytes, w.n_in, n_rows, tile);
  PEREGRINE_CUDA_LAUNCHED();
}

void check_cublas(cublasStatus_t status, const char* call, const WeightView& w) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw Error(std::string("cuda matmul: ") + call + " failed for tensor '" + std::string(w.name) +
                "': " + cublasGetStatusString(status));
}

int checked_int(int64_t v, const char* what, const WeightView& w) {
  if (v < 0 || v > INT_MAX)
    throw Error("cuda matmul: " + std::string(what) + " = " + std::to_string(v) + " of tensor '" + std::string(w.name) +
                "' exceeds cuBLAS's int range");
  return static_cast<int>(v);
}

// Column-major view for cuBLAS: a row-major [rows][n_in] weight tile with row stride `lda` floats
// is the column-major n_in × rows matrix A (lda); x is column-major n_in × T (ld n_in) and y is
// column-major n_out × T (ld n_out). So y rows [first, first + rows) = op(A)ᵀ·x with op = T:
// C (rows × T, at y + first, ldc n_out) = Aᵀ (rows × n_in) · B (n_in × T).
void gemm_rows(cublasHandle_t handle, cublasComputeType_t math, const WeightView& w, const float* a, int64_t lda,
               int64_t first, int64_t rows, const float* x, float* y, int64_t n_tokens) {
  const float alpha = 1.0f, beta = 0.0f;
  check_cublas(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, checked_int(rows, "rows", w),
                            checked_int(n_tokens, "n_tokens", w), checked_int(w.n_in, "n_in", w), &alpha, a, CUDA_R_32F,
                            checked_int(lda, "lda", w), x, CUDA_R_32F, checked_int(w.n_in, "n_in", w), &beta, y + first,
                            CUDA_R_32F, checked_int(w.n_out, "n_out", w), math,
                            CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx", w);
}

template <TensorType kType>
void prefill(CudaBackend& be, const WeightView& w, const float* x, float* y, int64_t n_tokens) {
  cublasHandle_t handle = be.cublas();
  const cublasComputeType_t math = be.tf32_prefill() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  check_cublas(cublasSetStream(handle, be.stream()), "cublasSetStream", w);
  check_cublas(cublasSetPointerMode(handle, CUBLAS_POINTER_MODE_HOST), "cublasSetPointerMode", w);
  if constexpr (kType == TensorType::F32) {
    if (w.row_bytes % sizeof(float) == 0 && (reinterpret_cast<uintptr_t>(w.data) & 3u) == 0) {
      gemm_rows(handle, math, w, reinterpret_cast<const float*>(w.data), static_cast<int64_t>(w.row_bytes / sizeof(float)),
                0, w.n_out, x, y, n_tokens);
      return;
    }
  }
  const uint64_t row_floats_bytes = static_cast<uint64_t>(w.n_in) * sizeof(float);
  const int64_t tile_rows = std::min<int64_t>(w.n_out, std::max<int64_t>(1, kPrefillTileBytes / row_floats_bytes));
  auto* tile = static_cast<float*>(be.scratch(CudaBackend::Scratch::A, static_cast<uint64_t>(tile_rows) * row_floats_bytes));
  // One stream: the next tile's dequantization waits for the previous GEMM to finish reading.
  for (int64_t first = 0; first < w.n_out; first += tile_rows) {
    const int64_t rows = std::min(tile_rows, w.n_out - first);
    dequantize_rows<kType>(w.rows(first, rows), rows, tile, be.stream());
    gemm_rows(handle, math, w, tile, w.n_in, first, rows, x, y, n_tokens);
  }
}

template <TensorType kType>
void matmul_typed(CudaBackend& be, const WeightView& w, const float* x, float* y, int64_t n_tokens) {
  if (!BlockCodec<kType>::kPlain && w.n_in % BlockCodec<kType>::kValues != 0)
    throw Error("cuda matmul: tensor '" + std::string(w.name) + "' has n_in = " + std::to_string(w.n_in) +
                ", not a multiple of its block size " + std::to_string(BlockCodec<kType>::kValues));
  if (n_tokens <= kMaxGemvTokens)
    run_gemv(be, choose_gemv_version(w, n_tokens), w, x, y, n_tokens);
  else
    prefill<kType>(be, w, x, y, n_tokens);
}

}  // namespace

bool gemv_v1_supports(const WeightView& w) {
  return with_weight_type(w.type, [](auto) {});
}

void gemv_v1(const WeightView& w, const float* x, float* y, int64_t n_tokens, cudaStream_t stream) {
  if (!with_weight_type(w.type, [&](auto type) { gemv_typed<decltype(type)::value>(w, x, y, n_tokens, stream); }))
    throw Error("cuda matmul: GEMV v1 has no kernel for weight type " + std::string(tensor_type_info(w.type).name));
}

void CudaBackend::matmul(const WeightView& w, const float* x, float* y, int64_t n_tokens) {
  if (n_tokens <= 0 || w.n_out <= 0) return;
  if (w.empty()) throw Error("cuda matmul: tensor '" + std::string(w.name) + "' has no data");
  if (w.n_in == 0) {  // an empty sum
    PEREGRINE_CUDA_CHECK(cudaMemsetAsync(y, 0, static_cast<uint64_t>(n_tokens * w.n_out) * sizeof(float), stream()));
    return;
  }
  if (!with_weight_type(w.type, [&](auto type) { matmul_typed<decltype(type)::value>(*this, w, x, y, n_tokens); }))
    throw Error("cuda matmul: weight type " + std::string(tensor_type_info(w.type).name) + " of tensor '" +
                std::string(w.name) + "' is not supported by the CUDA backend (supported: f32, f16, bf16, q8_0, "
                "q4_0, q4_1, q5_0, q5_1, q4_K, q5_K, q6_K, iq4_xs)");
}

}  // namespace peregrine::cuda
