// The chunked gated delta rule (Backend::delta_rule_chunked) for prefill: the WY/UT form.
//
// Per value head j and chunk of n ≤ 64 tokens with incoming state S ([d][d], key × value index),
// γ = the cumulative log-decay inside the chunk, Γ[i][m] = e^{γ_i − γ_m} for m ≤ i:
//   L  = strictly_lower(diag(β) K Kᵀ ⊙ Γ),   T = (I + L)⁻¹   (unit lower triangular)
//   W  = T diag(β e^γ) K,   U = T diag(β) V,   P = (Q Kᵀ) ⊙ Γ (diagonal included)
//   V' = U − W S,   O = diag(e^γ) Q S + P V',   S ← e^{γ_last} S + (diag(e^{γ_last − γ}) K)ᵀ V'
// (the CPU backend's chunked_heads and docs/forward.md; equal to n recurrent steps in real
// arithmetic). Only the last three lines need the state, so the work is split in two kernels:
//
//  1. chunk_prepare_kernel, one block per (chunk, value head), all chunks in parallel: γ, L and
//     T (each thread solves one column of (I + L)·T = I by forward substitution), then W, U and P,
//     written to device scratch. This holds the big products of a chunk (K Kᵀ, Q Kᵀ, T·K, T·V).
//  2. chunk_state_kernel, one block per (value head, 32 value columns), walking the chunks in
//     order with its d × 32 slice of S in shared memory: V' = U − W S, the outputs, the state
//     update. Column c of S, V', O only needs column c of S (as in the recurrent kernel), so the
//     slices are independent.
//
// Long batches are cut into segments so the scratch (W, U: 64·d floats, P: 64·64 floats per chunk
// and head) stays bounded; segment after segment in stream order carries the state.
//
// The products are plain FMA loops over shared-memory tiles. Next step for speed: the 64×64×d
// and 64×d×32 products (K Kᵀ, Q Kᵀ, T·K, T·V in kernel 1; W S, Q S, P V', Kᵀ V' in kernel 2) map
// onto tensor cores (mma.sync m16n8k8 TF32, or WMMA 16×16×8) with the same tiles; T's column
// solve would become the blocked inverse (16×16 diagonal blocks, then their combination).
#include <algorithm>
#include <string>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_prefill.h"

namespace peregrine::cuda {
namespace {

constexpr int kChunk = 64;                // tokens per chunk
constexpr int kThreads = 128;             // 4 warps
constexpr int kWarps = kThreads / 32;
constexpr int kMaxHeadDim = 128;
constexpr int kPrepTile = 16;             // key / value channels per shared tile in kernel 1
constexpr int kCols = 32;                 // value columns of S per block in kernel 2 (one per lane)
constexpr int kStateTile = 32;            // key channels per shared tile in kernel 2
constexpr int kRowsPerWarp = kChunk / kWarps;          // chunk rows i = warp + kWarps·r in kernel 2
constexpr uint64_t kScratchBudget = 64ull << 20;       // bytes of W, U, P, γ per segment

// The delta rule's operands (n_tokens: this segment's; every pointer starts at the segment) and
// the segment's scratch.
struct ChunkArgs : DeltaArgs {
  int n_chunks;  // ceil(n_tokens / kChunk)
  // Scratch, chunk c of value head j at index j·n_chunks + c:
  float* w;      // [Hv][n_chunks][kChunk][d]
  float* u;      // [Hv][n_chunks][kChunk][d]
  float* p;      // [Hv][n_chunks][kChunk][kChunk]
  float* gamma;  // [Hv][n_chunks][kChunk]
};

__device__ __forceinline__ int64_t chunk_index(const ChunkArgs& a, int j, int c) {
  return static_cast<int64_t>(j) * a.n_chunks + c;
}

// grid: (n_chunks, Hv), block: kThreads.
__global__ void __launch_bounds__(kThreads) chunk_prepare_kernel(ChunkArgs a) {
  const int c = blockIdx.x, j = blockIdx.y, kh = j % a.n_k_heads, d = a.d, tid = threadIdx.x;
  const int64_t t0 = static_cast<int64_t>(c) * kChunk;
  const int n = static_cast<int>(min(static_cast<int64_t>(kChunk), a.n_tokens - t0));

  __shared__ float gam[kChunk];                   // γ_i (rows ≥ n: 0)
  __shared__ float bet[kChunk];                   // β_i (rows ≥ n: 0)
  __shared__ float lhs[kChunk][kPrepTile + 1];    // a tile of Q (step 2) or diag(β) V (step 4)
  __shared__ float rhs[kChunk][kPrepTile + 1];    // a tile of K (step 2) or diag(β e^γ) K (step 4)
  __shared__ float L[kChunk][kChunk + 1];
  __shared__ float Tinv[kChunk][kChunk + 1];      // T = (I + L)⁻¹

  // 1. γ (a serial prefix sum, the CPU backend's order) and β.
  if (tid == 0) {
    float acc = 0.0f;
    for (int i = 0; i < kChunk; ++i) {
      if (i < n) acc += a.g[(t0 + i) * a.n_v_heads + j];
      gam[i] = i < n ? acc : 0.0f;
    }
  }
  if (tid < kChunk) bet[tid] = tid < n ? a.beta[(t0 + tid) * a.n_v_heads + j] : 0.0f;

  // 2. K Kᵀ and Q Kᵀ over tiles of kPrepTile key channels. Thread: rows i = 4·(tid / 8) + r,
  // columns m = tid % 8 + 8·s, so a warp reads 4 rows and 8·8 columns of the tiles.
  const int row0 = 4 * (tid / 8), col0 = tid % 8;
  float kk[4][8], qk[4][8];
#pragma unroll
  for (int r = 0; r < 4; ++r)
#pragma unroll
    for (int s = 0; s < 8; ++s) kk[r][s] = qk[r][s] = 0.0f;
  for (int x0 = 0; x0 < d; x0 += kPrepTile) {
    for (int e = tid; e < kChunk * kPrepTile; e += kThreads) {
      const int i = e / kPrepTile, x = e % kPrepTile;
      const bool ok = i < n && x0 + x < d;
      rhs[i][x] = ok ? a.k[(t0 + i) * a.k_token_stride + kh * a.k_head_stride + x0 + x] : 0.0f;
      lhs[i][x] = ok ? a.q[(t0 + i) * a.q_token_stride + kh * a.q_head_stride + x0 + x] : 0.0f;
    }
    __syncthreads();
#pragma unroll 4
    for (int x = 0; x < kPrepTile; ++x) {
      float kr[4], qr[4], kc[8];
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        kr[r] = rhs[row0 + r][x];
        qr[r] = lhs[row0 + r][x];
      }
#pragma unroll
      for (int s = 0; s < 8; ++s) kc[s] = rhs[col0 + 8 * s][x];
#pragma unroll
      for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int s = 0; s < 8; ++s) {
          kk[r][s] += kr[r] * kc[s];
          qk[r][s] += qr[r] * kc[s];
        }
    }
    __syncthreads();  // before the next tile overwrites lhs / rhs
  }

  // L and P with the decay; entries outside the chunk's n × n triangle are 0. e^{γ_i − γ_m} is
  // only evaluated for m ≤ i, where the exponent is ≤ 0 (no overflow into inf · 0).
  float* P = a.p + chunk_index(a, j, c) * kChunk * kChunk;
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const int i = row0 + r;
#pragma unroll
    for (int s = 0; s < 8; ++s) {
      const int m = col0 + 8 * s;
      const bool in = i < n && m <= i;
      const float decay = in ? expf(gam[i] - gam[m]) : 0.0f;
      L[i][m] = m < i ? bet[i] * kk[r][s] * decay : 0.0f;
      P[i * kChunk + m] = qk[r][s] * decay;
    }
  }
  __syncthreads();

  // 3. T = (I + L)⁻¹: thread m solves column m, (I + L) x = e_m, top to bottom. It only reads
  // its own column of Tinv, so no barrier is needed between rows. Rows ≥ n of L are 0, which
  // makes rows ≥ n of T unit rows (and the matching rows of W and U zero below).
  if (tid < kChunk) {
    const int m = tid;
    for (int i = 0; i < kChunk; ++i) {
      float x = i == m ? 1.0f : 0.0f;
      if (i > m) {
        for (int p = m; p < i; ++p) x -= L[i][p] * Tinv[p][m];
      }
      Tinv[i][m] = x;
    }
  }
  if (tid < kChunk) a.gamma[chunk_index(a, j, c) * kChunk + tid] = gam[tid];
  __syncthreads();

  // 4. W = T diag(β e^γ) K and U = T diag(β) V over tiles of kPrepTile channels. Thread: row
  // i = tid / 2, channels (tid % 2)·8 + s of the tile; T is lower triangular (p ≤ i).
  float* W = a.w + chunk_index(a, j, c) * kChunk * d;
  float* U = a.u + chunk_index(a, j, c) * kChunk * d;
  const int wi = tid / 2, wx0 = (tid % 2) * (kPrepTile / 2);
  for (int x0 = 0; x0 < d; x0 += kPrepTile) {
    for (int e = tid; e < kChunk * kPrepTile; e += kThreads) {
      const int i = e / kPrepTile, x = e % kPrepTile;
      const bool ok = i < n && x0 + x < d;
      rhs[i][x] = ok ? bet[i] * expf(gam[i]) * a.k[(t0 + i) * a.k_token_stride + kh * a.k_head_stride + x0 + x]
                     : 0.0f;
      lhs[i][x] = ok ? bet[i] * a.v[(t0 + i) * a.v_token_stride + static_cast<int64_t>(j) * a.v_head_stride + x0 + x]
                     : 0.0f;
    }
    __syncthreads();
    float wacc[kPrepTile / 2], uacc[kPrepTile / 2];
#pragma unroll
    for (int s = 0; s < kPrepTile / 2; ++s) wacc[s] = uacc[s] = 0.0f;
    for (int p = 0; p <= wi; ++p) {
      const float t = Tinv[wi][p];
#pragma unroll
      for (int s = 0; s < kPrepTile / 2; ++s) {
        wacc[s] += t * rhs[p][wx0 + s];
        uacc[s] += t * lhs[p][wx0 + s];
      }
    }
#pragma unroll
    for (int s = 0; s < kPrepTile / 2; ++s) {
      const int x = x0 + wx0 + s;
      if (x < d) {
        W[wi * d + x] = wacc[s];
        U[wi * d + x] = uacc[s];
      }
    }
    __syncthreads();  // before the next tile overwrites lhs / rhs
  }
}

// grid: (Hv, ceil(d / kCols)), block: kThreads. Walks the segment's chunks in order.
__global__ void __launch_bounds__(kThreads) chunk_state_kernel(ChunkArgs a) {
  const int j = blockIdx.x, kh = j % a.n_k_heads, d = a.d;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int col = blockIdx.y * kCols + lane;  // this lane's value column
  const bool col_ok = col < d;

  __shared__ float S[kMaxHeadDim][kCols];            // S[a][col] for a < d
  __shared__ float lhs[kChunk][kStateTile + 1];      // a tile of W, then of the decayed K
  __shared__ float qt[kChunk][kStateTile + 1];       // a tile of Q
  __shared__ float vp[kChunk][kCols + 1];            // V'[i][col]
  __shared__ float gam[kChunk];

  float* state = a.state + static_cast<int64_t>(j) * d * d;
  for (int r = warp; r < d; r += kWarps) S[r][lane] = col_ok ? state[static_cast<int64_t>(r) * d + col] : 0.0f;

  for (int c = 0; c < a.n_chunks; ++c) {
    const int64_t t0 = static_cast<int64_t>(c) * kChunk;
    const int n = static_cast<int>(min(static_cast<int64_t>(kChunk), a.n_tokens - t0));
    const int64_t ci = chunk_index(a, j, c);
    const float* W = a.w + ci * kChunk * d;
    const float* U = a.u + ci * kChunk * d;
    const float* P = a.p + ci * kChunk * kChunk;
    if (tid < kChunk) gam[tid] = a.gamma[ci * kChunk + tid];

    // W S and Q S for this lane's column; rows i = warp + kWarps·r of the chunk.
    float ws[kRowsPerWarp], qs[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) ws[r] = qs[r] = 0.0f;
    for (int x0 = 0; x0 < d; x0 += kStateTile) {
      for (int e = tid; e < kChunk * kStateTile; e += kThreads) {
        const int i = e / kStateTile, x = e % kStateTile;
        const bool ok = i < n && x0 + x < d;
        lhs[i][x] = ok ? W[i * d + x0 + x] : 0.0f;
        qt[i][x] = ok ? a.q[(t0 + i) * a.q_token_stride + kh * a.q_head_stride + x0 + x] : 0.0f;
      }
      __syncthreads();
      const int width = min(kStateTile, d - x0);
      for (int x = 0; x < width; ++x) {
        const float s = S[x0 + x][lane];
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) {
          ws[r] += lhs[warp + kWarps * r][x] * s;
          qs[r] += qt[warp + kWarps * r][x] * s;
        }
      }
      __syncthreads();  // before the next tile (or the state update) overwrites lhs / S
    }

    // V' = U − W S (rows ≥ n and columns ≥ d: 0, so they add nothing below).
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int i = warp + kWarps * r;
      vp[i][lane] = (i < n && col_ok) ? U[i * d + col] - ws[r] : 0.0f;
    }
    __syncthreads();

    // O = e^γ (Q S) + P V' (P is lower triangular: m ≤ i). All lanes of a warp read the same P.
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int i = warp + kWarps * r;
      if (i >= n) continue;
      float o = expf(gam[i]) * qs[r];
      for (int m = 0; m <= i; ++m) o += __ldg(P + i * kChunk + m) * vp[m][lane];
      if (col_ok) a.out[(t0 + i) * a.out_token_stride + static_cast<int64_t>(j) * a.out_head_stride + col] = o;
    }

    // S ← e^{γ_last} S + Σ_m e^{γ_last − γ_m} k_m V'_mᵀ, over tiles of key channels.
    const float g_last = gam[n - 1];
    const float e_last = expf(g_last);
    for (int x0 = 0; x0 < d; x0 += kStateTile) {
      for (int e = tid; e < kChunk * kStateTile; e += kThreads) {
        const int m = e / kStateTile, x = e % kStateTile;
        const bool ok = m < n && x0 + x < d;
        lhs[m][x] = ok ? expf(g_last - gam[m]) * a.k[(t0 + m) * a.k_token_stride + kh * a.k_head_stride + x0 + x]
                       : 0.0f;
      }
      __syncthreads();
      const int width = min(kStateTile, d - x0);
      for (int x = warp; x < width; x += kWarps) {
        float s = e_last * S[x0 + x][lane];
        for (int m = 0; m < n; ++m) s += lhs[m][x] * vp[m][lane];
        S[x0 + x][lane] = s;
      }
      __syncthreads();  // before the next tile overwrites lhs; before the next chunk reads S, gam, vp
    }
  }

  for (int r = warp; r < d; r += kWarps)
    if (col_ok) state[static_cast<int64_t>(r) * d + col] = S[r][lane];
}

}  // namespace

void delta_rule_chunked_wy(CudaBackend& be, const DeltaNetDims& dims, const HeadView& q, const HeadView& k,
                           const HeadView& v, const float* g, const float* beta, float* state, const HeadView& out,
                           int64_t max_segment_chunks) {
  check_delta_args(dims, q, k, v, out);
  const int64_t n_tokens = q.n_tokens;
  if (n_tokens == 0) return;

  const int64_t d = dims.head_dim, hv = dims.n_v_heads;
  const uint64_t chunk_floats = static_cast<uint64_t>(hv) * (2 * kChunk * d + kChunk * kChunk + kChunk);
  const int64_t total_chunks = (n_tokens + kChunk - 1) / kChunk;
  int64_t segment_chunks =
      std::clamp<int64_t>(static_cast<int64_t>(kScratchBudget / (chunk_floats * sizeof(float))), 1, total_chunks);
  if (max_segment_chunks > 0) segment_chunks = std::min(segment_chunks, max_segment_chunks);
  const uint64_t seg = static_cast<uint64_t>(segment_chunks) * hv;
  float* w = static_cast<float*>(be.scratch(CudaBackend::Scratch::A, seg * kChunk * d * sizeof(float)));
  float* u = static_cast<float*>(be.scratch(CudaBackend::Scratch::B, seg * kChunk * d * sizeof(float)));
  float* p = static_cast<float*>(be.scratch(CudaBackend::Scratch::C, seg * kChunk * kChunk * sizeof(float)));
  float* gamma = static_cast<float*>(be.scratch(CudaBackend::Scratch::D, seg * kChunk * sizeof(float)));

  for (int64_t s0 = 0; s0 < n_tokens; s0 += segment_chunks * kChunk) {
    const int64_t n = std::min(segment_chunks * kChunk, n_tokens - s0);
    ChunkArgs a{};
    static_cast<DeltaArgs&>(a) = delta_args(dims, q, k, v, g, beta, state, out, s0, n);
    a.n_chunks = static_cast<int>((n + kChunk - 1) / kChunk);
    a.w = w;
    a.u = u;
    a.p = p;
    a.gamma = gamma;
    launch_kernel(chunk_prepare_kernel, dim3(static_cast<unsigned>(a.n_chunks), static_cast<unsigned>(hv)),
                  dim3(kThreads), 0, be.stream(), a);
    PEREGRINE_CUDA_LAUNCHED();
    launch_kernel(chunk_state_kernel, dim3(static_cast<unsigned>(hv), blocks_for(d, kCols)), dim3(kThreads), 0,
                  be.stream(), a);
    PEREGRINE_CUDA_LAUNCHED();
  }
}

}  // namespace peregrine::cuda
