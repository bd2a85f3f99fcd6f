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
