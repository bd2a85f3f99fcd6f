// Causal grouped-query attention over an F32, F16 or Q8_0 KV cache (Backend::attention).
//
// One thread block per (token, query head, split of the cache rows). The block walks its rows
// in tiles of kTile: every warp computes the scores of some rows of the tile (lanes split the
// head dimension, a warp sum finishes each dot product), then every thread folds the tile into
// its own output channels with an online softmax (running max m, running sum l, accumulators
// rescaled by e^(m_old − m_new) when the max grows). Cached keys/values are decoded from their
// storage type as they are read, so F16 / Q8_0 caches never exist as floats in memory.
//
// Split-K (decode): with few (token, head) pairs and a long context one block per pair would
// leave most of the GPU idle, so the rows are cut into n_splits ranges handled by separate
// blocks. Each writes its unnormalised partial (m, l, acc[hd]) to scratch and a second kernel
// combines them: M = max m_s, L = Σ l_s·e^(m_s − M), out = Σ acc_s·e^(m_s − M) / L.
// With a single split the first kernel writes the normalised output directly.
//
// Calls with kFlashAttentionMinTokens tokens or more (prefill) take the query-tiled flash
// attention kernel instead (cuda_flash_attention.cu); this one serves decode and MTP verify.
#include <algorithm>
#include <string>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_kv_cache.cuh"
#include "backend/cuda/cuda_prefill.h"

namespace peregrine::cuda {
namespace {

constexpr int kThreads = 128;                      // 4 warps
constexpr int kWarps = kThreads / 32;
constexpr int kTile = 32;                          // cache rows scored per pass
constexpr int kMaxHeadDim = 256;
constexpr int kAccPerThread = kMaxHeadDim / kThreads;  // output channels c = tid + i·kThreads
constexpr int64_t kMinRowsPerSplit = 256;          // a split shorter than this is not worth a block

struct AttentionArgs {
  const float* q;          // q.head(t, h) = q + t·q_token_stride + h·q_head_stride
  int64_t q_token_stride, q_head_stride;
  const uint8_t* k;
  const uint8_t* v;
  uint64_t row_bytes;
  const int32_t* positions;  // device copy; token t sees rows 0..positions[t]
  int n_heads, group, hd;    // group = H / Hkv
  float scale;
  int n_splits;
  int64_t split_len;         // rows per split (a multiple of kTile)
  float* out;                // n_splits == 1: dense [T][H][hd]
  float* partial_acc;        // n_splits > 1: [T·H][n_splits][hd]
  float* partial_ml;         // n_splits > 1: [T·H][n_splits][2] = (m, l)
};

// grid: (T·H, n_splits), block: kThreads. Block x = t·H + h (x has the 2³¹ range, y only 65535).
template <TensorType kType>
__global__ void __launch_bounds__(kThreads) attention_kernel(AttentionArgs a) {
  const int64_t pair = blockIdx.x;  // (token, head) index
  const int64_t t = pair / a.n_heads;
  const int h = static_cast<int>(pair % a.n_heads);
  const int split = blockIdx.y;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int kvh = h / a.group;
  const int hd = a.hd;

  __shared__ float q_sh[kMaxHeadDim];
  __shared__ float score_sh[kTile];

  const float* q = a.q + t * a.q_token_stride + h * a.q_head_stride;
  for (int c = tid; c < hd; c += kThreads) q_sh[c] = q[c];

  // This block's rows: [row_begin, row_end) ∩ [0, positions[t]].
  const int64_t n_kv = static_cast<int64_t>(a.positions[t]) + 1;
  const int64_t row_begin = split * a.split_len;
  const int64_t row_end = min(row_begin + a.split_len, n_kv);

  float m = -INFINITY, l = 0.0f;  // identical in every thread of the block
  float acc[kAccPerThread];
#pragma unroll
  for (int i = 0; i < kAccPerThread; ++i) acc[i] = 0.0f;
  __syncthreads();  // q_sh ready

  for (int64_t tile = row_begin; tile < row_end; tile += kTile) {
    // Scores of the tile's rows; rows past row_end are masked (never read: they may hold garbage).
    for (int r = warp; r < kTile; r += kWarps) {
      const int64_t s = tile + r;
      float dot = 0.0f;
      if (s < row_end)
        for (int c = lane; c < hd; c += 32) dot += q_sh[c] * cache_value<kType>(a.k, a.row_bytes, s, kvh, hd, c);
      dot = warp_sum(dot);
      if (lane == 0) score_sh[r] = s < row_end ? a.scale * dot : -INFINITY;
    }
    __syncthreads();  // score_sh ready

    // Online softmax update; every thread reads the whole tile (broadcast reads) so m and l stay
    // identical across the block without another reduction. The tile holds at least one valid row
    // (tile < row_end), so m_new is finite.
    float tile_max = -INFINITY;
    for (int r = 0; r < kTile; ++r) tile_max = fmaxf(tile_max, score_sh[r]);
    const float m_new = fmaxf(m, tile_max);
    const float correction = expf(m - m_new);  // m = −∞ on the first tile: e^−∞ = 0
    l *= correction;
#pragma unroll
    for (int i = 0; i < kAccPerThread; ++i) acc[i] *= correction;
    const int n_valid = static_cast<int>(min(static_cast<int64_t>(kTile), row_end - tile));
    for (int r = 0; r < n_valid; ++r) {
      const float p = expf(score_sh[r] - m_new);
      l += p;
#pragma unroll
      for (int i = 0; i < kAccPerThread; ++i) {
        const int c = tid + i * kThreads;
        if (c < hd) acc[i] += p * cache_value<kType>(a.v, a.row_bytes, tile + r, kvh, hd, c);
      }
    }
    m = m_new;
    __syncthreads();  // everyone is done with score_sh before the next tile overwrites it
  }

  if (a.n_splits == 1) {
    // Split 0 always holds row 0, so l ≥ 1 here.
    const float inv_l = 1.0f / l;
    float* o = a.out + pair * hd;
#pragma unroll
    for (int i = 0; i < kAccPerThread; ++i) {
      const int c = tid + i * kThreads;
      if (c < hd) o[c] = acc[i] * inv_l;
    }
  } else {
    // Unnormalised partial; an empty split (row_begin ≥ n_kv) writes m = −∞, l = 0, acc = 0.
    const int64_t part = pair * a.n_splits + split;
    float* pa = a.partial_acc + part * hd;
#pragma unroll
    for (int i = 0; i < kAccPerThread; ++i) {
      const int c = tid + i * kThreads;
      if (c < hd) pa[c] = acc[i];
    }
    if (tid == 0) {
      a.partial_ml[2 * part] = m;
      a.partial_ml[2 * part + 1] = l;
    }
  }
}

// grid: T·H blocks, block: kThreads. Combines the n_splits partials of one (token, head).
__global__ void __launch_bounds__(kThreads) attention_combine_kernel(const float* partial_acc,
                                                                     const float* partial_ml, int n_splits, int hd,
                                                                     float* out) {
  const int64_t pair = blockIdx.x;
  const float* ml = partial_ml + pair * n_splits * 2;
  float m_max = -INFINITY;
  for (int s = 0; s < n_splits; ++s) m_max = fmaxf(m_max, ml[2 * s]);  // finite: split 0 has row 0
  float l_total = 0.0f;
  for (int s = 0; s < n_splits; ++s)
    if (ml[2 * s + 1] > 0.0f) l_total += ml[2 * s + 1] * expf(ml[2 * s] - m_max);
  const float inv_l = 1.0f / l_total;
  for (int c = threadIdx.x; c < hd; c += blockDim.x) {
    float sum = 0.0f;
    for (int s = 0; s < n_splits; ++s)
      if (ml[2 * s + 1] > 0.0f) sum += partial_acc[(pair * n_splits + s) * hd + c] * expf(ml[2 * s] - m_max);
    out[pair * hd + c] = sum * inv_l;
  }
}

void check_attention_args(const HeadView& q, const KvView& kv) {
  if (q.head_dim < 1 || q.head_dim > kMaxHeadDim)
    throw Error("cuda attention: head dim " + std::to_string(q.head_dim) + " is outside 1.." +
                std::to_string(kMaxHeadDim));
  if (kv.n_kv_heads < 1 || q.n_heads % kv.n_kv_heads != 0)
    throw Error("cuda attention: " + std::to_string(q.n_heads) + " query heads do not group over " +
                std::to_string(kv.n_kv_heads) + " KV heads");
  if (kv.type == TensorType::Q8_0) {
    if (q.head_dim % kKvQ8Block != 0)
      throw Error("cuda attention: KV cache q8_0 needs a head dim that is a multiple of " + std::to_string(kKvQ8Block) +
                  ", not " + std::to_string(q.head_dim));
  } else if (kv.type != TensorType::F32 && kv.type != TensorType::F16) {
    throw Error("cuda attention: KV cache type " + std::string(tensor_type_info(kv.type).name) +
                " is not supported (f32, f16, q8_0)");
  }
}

// How many row ranges to cut the context into: enough blocks to fill the GPU about twice over
// when the (token, head) pairs alone do not, never ranges shorter than kMinRowsPerSplit.
int choose_splits(int64_t n_pairs, int64_t n_ctx_seen, int sm_count) {
  const int64_t target_blocks = 2 * static_cast<int64_t>(std::max(sm_count, 1));
  if (n_pairs >= target_blocks) return 1;
  const int64_t by_occupancy = (target_blocks + n_pairs - 1) / n_pairs;
  const int64_t by_length = n_ctx_seen / kMinRowsPerSplit;
  return static_cast<int>(std::max<int64_t>(1, std::min(by_occupancy, by_length)));
}

}  // namespace

void CudaBackend::attention(const HeadView& q, const KvView& kv, std::span<const int32_t> positions, float scale,
                            float* out) {
  const int64_t n_tokens = q.n_tokens;
  if (n_tokens == 0) return;
  check_attention_args(q, kv);
  if (static_cast<int64_t>(positions.size()) < n_tokens)
    throw Error("cuda attention: " + std::to_string(positions.size()) + " positions for " +
                std::to_string(n_tokens) + " tokens");
  int64_t max_pos = 0;
  for (int64_t t = 0; t < n_tokens; ++t) {
    if (positions[t] < 0) throw Error("cuda attention: negative position " + std::to_string(positions[t]));
    max_pos = std::max<int64_t>(max_pos, positions[t]);
  }
  if (n_tokens >= kFlashAttentionMinTokens) {  // prefill: query tiles (cuda_flash_attention.cu)
    flash_attention(*this, q, kv, positions, scale, out);
    return;
  }
  const int64_t n_ctx_seen = max_pos + 1;
  const int64_t n_pairs = n_tokens * q.n_heads;

  AttentionArgs a{};
  a.q = q.data;
  a.q_token_stride = q.token_stride;
  a.q_head_stride = q.head_stride;
  a.k = kv.k;
  a.v = kv.v;
  a.row_bytes = kv.row_bytes;
  a.positions = static_cast<const int32_t*>(
      stage(Staging::Positions, positions.data(), static_cast<uint64_t>(n_tokens) * sizeof(int32_t)));
  a.n_heads = static_cast<int>(q.n_heads);
  a.group = static_cast<int>(q.n_heads / kv.n_kv_heads);
  a.hd = static_cast<int>(q.head_dim);
  a.scale = scale;
  a.out = out;

  // Rows per split rounded up to whole tiles, then the split count recomputed so that the
  // token with the longest context has no empty split (shorter ones may; the combine skips them).
  int n_splits = choose_splits(n_pairs, n_ctx_seen, info_.sm_count);
  int64_t split_len = (n_ctx_seen + n_splits - 1) / n_splits;
  split_len = (split_len + kTile - 1) / kTile * kTile;
  n_splits = static_cast<int>((n_ctx_seen + split_len - 1) / split_len);
  a.n_splits = n_splits;
  a.split_len = split_len;
  if (n_splits > 1) {
    const uint64_t acc_floats = static_cast<uint64_t>(n_pairs) * n_splits * a.hd;
    a.partial_acc = static_cast<float*>(scratch(Scratch::A, acc_floats * sizeof(float)));
    a.partial_ml = static_cast<float*>(scratch(Scratch::B, static_cast<uint64_t>(n_pairs) * n_splits * 2 * sizeof(float)));
  }

  const dim3 grid(static_cast<unsigned>(n_pairs), static_cast<unsigned>(n_splits));
  switch (kv.type) {
    case TensorType::F32:
      launch_kernel(attention_kernel<TensorType::F32>, grid, kThreads, 0, stream_, a);
      break;
    case TensorType::F16:
      launch_kernel(attention_kernel<TensorType::F16>, grid, kThreads, 0, stream_, a);
      break;
    default:
      launch_kernel(attention_kernel<TensorType::Q8_0>, grid, kThreads, 0, stream_, a);
      break;
  }
  PEREGRINE_CUDA_LAUNCHED();
  if (n_splits > 1) {
    launch_kernel(attention_combine_kernel, static_cast<unsigned>(n_pairs), kThreads, 0, stream_, a.partial_acc,
                  a.partial_ml, n_splits, a.hd, out);
    PEREGRINE_CUDA_LAUNCHED();
  }
}

}  // namespace peregrine::cuda
