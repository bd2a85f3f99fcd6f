// The gated delta rule (Backend::delta_rule_recurrent / delta_rule_chunked).
//
// Per value head j, token by token (the CPU backend's order: decay, then update, then readout):
//   S ← e^{g_t}·S;   u = β_t (v_t − Sᵀk_t);   S ← S + k_t uᵀ;   o_t = Sᵀq_t
// with S the [d][d] state (key index i × value index c) and q, k from key head j mod Hk.
//
// Column c of S evolves on its own: u[c], S[·][c] and o[c] only need column c, k, q, v[c], g
// and β. So one block owns (value head j, 32 consecutive value columns) and keeps that d × 32
// slice of S in registers for all tokens of the call: lane l holds column c0 + l, warp w holds
// the key rows i = w, w + 4, w + 8, ... (d ≤ 128 ⇒ at most 32 rows per thread). Per token the
// two dot products over i (Sᵀk and Sᵀq) are per-thread partial sums finished across the four
// warps through shared memory. One launch covers all tokens; the state is read and written
// once per call, coalesced (a warp touches 32 consecutive floats of one state row).
//
// delta_rule_chunked runs this kernel for short batches (fewer than kChunkedDeltaMinTokens):
// stepping every token with the state on chip gives the chunked form's result up to rounding,
// which the contract allows. Longer batches take the WY/UT chunked kernels
// (cuda_delta_net_chunked.cu).
#include <algorithm>
#include <string>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_prefill.h"

namespace peregrine::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kColsPerBlock = 32;                        // one value column per lane
constexpr int kMaxHeadDim = 128;
constexpr int kRowsPerThread = kMaxHeadDim / kWarps;     // key rows i = warp + kWarps·r


// grid: (Hv, ceil(d / 32)), block: kThreads.
__global__ void __launch_bounds__(kThreads) delta_rule_kernel(DeltaArgs a) {
  const int j = blockIdx.x;                    // value head
  const int kh = j % a.n_k_heads;              // the key head it reads
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int c = blockIdx.y * kColsPerBlock + lane;  // this thread's value column
  const bool col_ok = c < a.d;
  const int d = a.d;

  __shared__ float k_sh[kMaxHeadDim];
  __shared__ float q_sh[kMaxHeadDim];
  __shared__ float kS_partial[kWarps][kColsPerBlock];   // per warp: Σ_{its rows} S[i][c]·k[i]
  __shared__ float out_partial[kWarps][kColsPerBlock];  // per warp: Σ_{its rows} S[i][c]·q[i]

  float* S = a.state + static_cast<int64_t>(j) * d * d;
  float s[kRowsPerThread];  // s[r] = S[warp + kWarps·r][c]; rows ≥ d and columns ≥ d stay 0
#pragma unroll
  for (int r = 0; r < kRowsPerThread; ++r) {
    const int i = warp + kWarps * r;
    s[r] = (col_ok && i < d) ? S[static_cast<int64_t>(i) * d + c] : 0.0f;
  }

  for (int64_t t = 0; t < a.n_tokens; ++t) {
    // k_t and q_t of key head kh into shared memory (every thread needs its rows of both).
    const float* kt = a.k + t * a.k_token_stride + kh * a.k_head_stride;
    const float* qt = a.q + t * a.q_token_stride + kh * a.q_head_stride;
    for (int i = threadIdx.x; i < d; i += kThreads) {
      k_sh[i] = kt[i];
      q_sh[i] = qt[i];
    }
    __syncthreads();  // (1) k_sh, q_sh ready

    // S ← e^g·S, and this thread's share of (Sᵀk)[c] with the decayed state.
    const float decay = expf(a.g[t * a.n_v_heads + j]);
    const float b = a.beta[t * a.n_v_heads + j];
    float kS = 0.0f;
#pragma unroll
    for (int r = 0; r < kRowsPerThread; ++r) {
      const int i = warp + kWarps * r;
      if (i < d) {
        s[r] *= decay;
        kS += s[r] * k_sh[i];
      }
    }
    kS_partial[warp][lane] = kS;
    __syncthreads();  // (2) partial sums of Sᵀk ready

    // u = β (v − Sᵀk) for column c (every warp computes the same value for its lane's column).
    float kS_total = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) kS_total += kS_partial[w][lane];
    const float vc = col_ok ? a.v[t * a.v_token_stride + static_cast<int64_t>(j) * a.v_head_stride + c] : 0.0f;
    const float u = b * (vc - kS_total);

    // S ← S + k uᵀ, and this thread's share of o = Sᵀq with the updated state.
    float o = 0.0f;
#pragma unroll
    for (int r = 0; r < kRowsPerThread; ++r) {
      const int i = warp + kWarps * r;
      if (i < d) {
        s[r] += k_sh[i] * u;
        o += s[r] * q_sh[i];
      }
    }
    out_partial[warp][lane] = o;
    // (3) out_partial ready; also every thread has finished reading k_sh/q_sh/kS_partial, so the
    // next token may overwrite them.
    __syncthreads();
    if (warp == 0 && col_ok) {
      float total = 0.0f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) total += out_partial[w][lane];
      a.out[t * a.out_token_stride + static_cast<int64_t>(j) * a.out_head_stride + c] = total;
    }
  }

#pragma unroll
  for (int r = 0; r < kRowsPerThread; ++r) {
    const int i = warp + kWarps * r;
    if (col_ok && i < d) S[static_cast<int64_t>(i) * d + c] = s[r];
  }
}

}  // namespace

DeltaArgs delta_args(const DeltaNetDims& dims, const HeadView& q, const HeadView& k, const HeadView& v,
                     const float* g, const float* beta, float* state, const HeadView& out, int64_t first,
                     int64_t n_tokens) {
  DeltaArgs a{};
  a.q = q.data + first * q.token_stride;
  a.k = k.data + first * k.token_stride;
  a.v = v.data + first * v.token_stride;
  a.q_token_stride = q.token_stride;
  a.q_head_stride = q.head_stride;
  a.k_token_stride = k.token_stride;
  a.k_head_stride = k.head_stride;
  a.v_token_stride = v.token_stride;
  a.v_head_stride = v.head_stride;
  a.g = g + first * dims.n_v_heads;
  a.beta = beta + first * dims.n_v_heads;
  a.state = state;
  a.out = out.data + first * out.token_stride;
  a.out_token_stride = out.token_stride;
  a.out_head_stride = out.head_stride;
  a.n_tokens = n_tokens;
  a.n_k_heads = static_cast<int>(dims.n_k_heads);
  a.n_v_heads = static_cast<int>(dims.n_v_heads);
  a.d = static_cast<int>(dims.head_dim);
  return a;
}

namespace {

void launch_delta_rule(cudaStream_t stream, const DeltaNetDims& dims, const HeadView& q, const HeadView& k,
                       const HeadView& v, const float* g, const float* beta, float* state, const HeadView& out) {
  check_delta_args(dims, q, k, v, out);
  if (q.n_tokens == 0) return;
  const DeltaArgs a = delta_args(dims, q, k, v, g, beta, state, out, 0, q.n_tokens);
  const dim3 grid(static_cast<unsigned>(dims.n_v_heads), blocks_for(dims.head_dim, kColsPerBlock));
  launch_kernel(delta_rule_kernel, grid, kThreads, 0, stream, a);
  PEREGRINE_CUDA_LAUNCHED();
}

}  // namespace

void check_delta_args(const DeltaNetDims& dims, const HeadView& q, const HeadView& k, const HeadView& v,
                      const HeadView& out) {
  if (dims.head_dim < 1 || dims.head_dim > kMaxHeadDim)
    throw Error("cuda delta rule: head dim " + std::to_string(dims.head_dim) + " is outside 1.." +
                std::to_string(kMaxHeadDim));
  if (dims.n_k_heads < 1 || dims.n_v_heads < 1)
    throw Error("cuda delta rule: " + std::to_string(dims.n_k_heads) + " key heads and " +
                std::to_string(dims.n_v_heads) + " value heads");
  if (k.n_tokens != q.n_tokens || v.n_tokens != q.n_tokens || out.n_tokens != q.n_tokens)
    throw Error("cuda delta rule: q, k, v and out disagree on the token count");
}

void CudaBackend::delta_rule_recurrent(const DeltaNetDims& dims, const HeadView& q, const HeadView& k,
                                       const HeadView& v, const float* g, const float* beta, float* state,
                                       const HeadView& out) {
  launch_delta_rule(stream_, dims, q, k, v, g, beta, state, out);
}

// Long batches take the WY/UT chunked kernels (cuda_delta_net_chunked.cu, 64-token chunks);
// short ones the multi-token recurrent kernel: the same result up to rounding either way, as the
// contract allows, so `chunk` is not needed.
void CudaBackend::delta_rule_chunked(const DeltaNetDims& dims, const HeadView& q, const HeadView& k,
                                     const HeadView& v, const float* g, const float* beta, float* state,
                                     const HeadView& out, int64_t /*chunk*/) {
  if (q.n_tokens >= kChunkedDeltaMinTokens)
    delta_rule_chunked_wy(*this, dims, q, k, v, g, beta, state, out);
  else
    launch_delta_rule(stream_, dims, q, k, v, g, beta, state, out);
}

}  // namespace peregrine::cuda
