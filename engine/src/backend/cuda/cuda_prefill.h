// The CUDA backend's prefill kernels: the chunked (WY/UT) gated delta rule
// (cuda_delta_net_chunked.cu) and tiled flash attention (cuda_flash_attention.cu). The Backend
// methods in cuda_delta_net.cu and cuda_attention.cu route long batches here and keep their own
// kernels for decode and MTP verify, where these tiles would be mostly empty.
#pragma once

#include <cstdint>
#include <span>

#include "peregrine/backend.h"

namespace peregrine::cuda {

class CudaBackend;

// Batches shorter than this take the token-by-token recurrent kernel: a 64-token chunk holding
// a handful of tokens is mostly padding.
constexpr int64_t kChunkedDeltaMinTokens = 16;
// Token counts from which attention uses query tiles instead of one block per (token, head).
constexpr int64_t kFlashAttentionMinTokens = 16;

// Throws Error unless the delta rule's arguments fit the CUDA kernels (both the recurrent and the
// chunked one): head dim 1..128, at least one key and one value head, one token count for q, k,
// v and out (cuda_delta_net.cu).
void check_delta_args(const DeltaNetDims& dims, const HeadView& q, const HeadView& k, const HeadView& v,
                      const HeadView& out);

// The delta rule's operands as kernel arguments, shared by the recurrent kernel
// (cuda_delta_net.cu) and the chunked one (cuda_delta_net_chunked.cu, which adds its scratch).
struct DeltaArgs {
  const float* q;  // q/k: head (t, kh) at t·token_stride + kh·head_stride (key heads)
  const float* k;
  const float* v;  // head (t, j), value heads
  int64_t q_token_stride, q_head_stride;
  int64_t k_token_stride, k_head_stride;
  int64_t v_token_stride, v_head_stride;
  const float* g;     // dense [T][Hv], log-decay (applied as e^g)
  const float* beta;  // dense [T][Hv]
  float* state;       // [Hv][d][d]
  float* out;         // head (t, j)
  int64_t out_token_stride, out_head_stride;
  int64_t n_tokens;   // every pointer above starts at the first of these tokens
  int n_k_heads, n_v_heads, d;
};

// DeltaArgs for tokens [first, first + n_tokens) of the views (cuda_delta_net.cu).
DeltaArgs delta_args(const DeltaNetDims& dims, const HeadView& q, const HeadView& k, const HeadView& v,
                     const float* g, const float* beta, float* state, const HeadView& out, int64_t first,
                     int64_t n_tokens);

// Backend::delta_rule_chunked in chunks of 64 tokens (the contract's `chunk` only bounds the
// rounding, which any chunk size keeps within it). Head dims 1..128. Long batches run in segments
// of chunks sized to a fixed scratch budget; max_segment_chunks > 0 caps a segment lower (tests).
void delta_rule_chunked_wy(CudaBackend& be, const DeltaNetDims& dims, const HeadView& q, const HeadView& k,
                           const HeadView& v, const float* g, const float* beta, float* state, const HeadView& out,
                           int64_t max_segment_chunks = 0);

// Backend::attention over query tiles. The arguments are already validated by
// CudaBackend::attention (head dim ≤ 256, grouping, cache type, positions ≥ 0).
void flash_attention(CudaBackend& be, const HeadView& q, const KvView& kv, std::span<const int32_t> positions,
                     float scale, float* out);

}  // namespace peregrine::cuda
