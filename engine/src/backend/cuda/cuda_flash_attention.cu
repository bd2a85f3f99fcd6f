// Causal grouped-query attention for prefill (Backend::attention with many tokens): flash
// attention over query tiles.
//
// One block per (tile of kQueries consecutive tokens, query head h). The block keeps its queries
// in shared memory and walks the cache rows 0..max(positions of its tokens) in tiles of kKeys:
//   scores   lane = key row of the tile, warp w = query rows w, w + 4, …; the keys are decoded
//            from the cache type (F32, F16, Q8_0 exactly as the CPU backend decodes them) into a
//            shared tile of kKeyChannels channels at a time;
//   softmax  per query row within its warp: running max m and sum l, and the factor
//            e^(m_old − m_new) by which the row's accumulators shrink when the max grows; a key
//            row past the token's position (token t sees rows 0..positions[t]) scores −∞;
//   values   thread = output channels c = tid, tid + 128; every thread keeps all kQueries rows
//            of its channels in registers and reads each value row of the tile once, decoded.
// So each cached key / value is read once per (query tile, head) instead of once per
// (token, head) as in the decode kernel (cuda_attention.cu).
//
// Plain FMA loops for now. Next step for speed: the Q Kᵀ (kQueries × kKeys × hd) and P V
// (kQueries × hd × kKeys) tile products on tensor cores (mma.sync m16n8k16 on f16/bf16 tiles, or
// TF32 m16n8k8 to keep float32 queries), the query heads of one KV head in the same block (GQA:
// one K/V tile serves H / Hkv heads), and split-K over the rows for short prompts at the end of a
// long context, where query tiles × heads leave the GPU idle.
#include <algorithm>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_kv_cache.cuh"
#include "backend/cuda/cuda_prefill.h"

namespace peregrine::cuda {
namespace {

constexpr int kThreads = 128;                          // 4 warps
constexpr int kWarps = kThreads / 32;
constexpr int kQueries = 32;                           // tokens of one head per block
constexpr int kKeys = 32;                              // cache rows per tile (one per lane)
constexpr int kKeyChannels = 64;                       // key channels staged in shared memory at once
constexpr int kMaxHeadDim = 256;
constexpr int kRowsPerWarp = kQueries / kWarps;        // query rows w + kWarps·r
constexpr int kChannelsPerThread = kMaxHeadDim / kThreads;  // output channels tid + kThreads·x

struct FlashArgs {
  const float* q;            // q.head(t, h) = q + t·q_token_stride + h·q_head_stride
  int64_t q_token_stride, q_head_stride;
  const uint8_t* k;
  const uint8_t* v;
  uint64_t row_bytes;
  const int32_t* positions;  // device copy
  int64_t n_tokens;
  int n_heads, group, hd;    // group = H / Hkv
  float scale;
  float* out;                // dense [T][H][hd]
};

// grid: ceil(T / kQueries) · H blocks (block x = tile · H + h, so the heads of one tile, which
// share KV heads, run side by side and meet the same rows in L2), block: kThreads.
template <TensorType kType>
__global__ void __launch_bounds__(kThreads) flash_attention_kernel(FlashArgs a) {
  const int64_t tile = blockIdx.x / a.n_heads;
  const int h = static_cast<int>(blockIdx.x % a.n_heads);
  const int kvh = h / a.group, hd = a.hd;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t t0 = tile * kQueries;

  __shared__ float q_sh[kQueries][kMaxHeadDim];
  __shared__ float k_sh[kKeys][kKeyChannels + 1];
  __shared__ float p_sh[kQueries][kKeys + 1];  // e^(score − m_new) of the tile
  __shared__ float corr_sh[kQueries];          // e^(m_old − m_new) of the tile, then 1 / l
  __shared__ int pos_sh[kQueries];             // −1 for rows past the last token: sees nothing

  for (int e = tid; e < kQueries * hd; e += kThreads) {
    const int i = e / hd, c = e % hd;
    const int64_t t = t0 + i;
    q_sh[i][c] = t < a.n_tokens ? a.q[t * a.q_token_stride + h * a.q_head_stride + c] : 0.0f;
  }
  if (tid < kQueries) pos_sh[tid] = t0 + tid < a.n_tokens ? a.positions[t0 + tid] : -1;
  __syncthreads();

  int64_t n_rows = 0;  // rows 0..max position of the tile's tokens
  for (int i = 0; i < kQueries; ++i) n_rows = max(n_rows, static_cast<int64_t>(pos_sh[i]) + 1);

  float m[kRowsPerWarp], l[kRowsPerWarp];  // of rows warp + kWarps·r, the same in every lane
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
  }
  float acc[kChannelsPerThread][kQueries];
#pragma unroll
  for (int x = 0; x < kChannelsPerThread; ++x)
#pragma unroll
    for (int i = 0; i < kQueries; ++i) acc[x][i] = 0.0f;

  for (int64_t s0 = 0; s0 < n_rows; s0 += kKeys) {
    // Scores of key row s0 + lane against this warp's query rows.
    float score[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) score[r] = 0.0f;
    for (int c0 = 0; c0 < hd; c0 += kKeyChannels) {
      for (int e = tid; e < kKeys * kKeyChannels; e += kThreads) {
        const int r = e / kKeyChannels, x = e % kKeyChannels;
        const bool ok = s0 + r < n_rows && c0 + x < hd;  // rows past n_rows may hold garbage
        k_sh[r][x] = ok ? cache_value<kType>(a.k, a.row_bytes, s0 + r, kvh, hd, c0 + x) : 0.0f;
      }
      __syncthreads();
      const int width = min(kKeyChannels, hd - c0);
      for (int x = 0; x < width; ++x) {
        const float kx = k_sh[lane][x];
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) score[r] += q_sh[warp + kWarps * r][c0 + x] * kx;
      }
      __syncthreads();  // before the next channel tile overwrites k_sh
    }

    // Online softmax, one query row at a time within the warp. A row whose token sees none of
    // this tile (or nothing at all: pos −1) gets p = 0 and keeps its m and l.
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int i = warp + kWarps * r;
      const float s = s0 + lane <= pos_sh[i] ? a.scale * score[r] : -INFINITY;
      const float m_new = fmaxf(m[r], warp_max(s));
      const float p = s == -INFINITY ? 0.0f : expf(s - m_new);
      const float corr = m[r] == -INFINITY ? 0.0f : expf(m[r] - m_new);
      l[r] = l[r] * corr + warp_sum(p);
      m[r] = m_new;
      p_sh[i][lane] = p;
      if (lane == 0) corr_sh[i] = corr;
    }
    __syncthreads();  // p_sh, corr_sh ready

    // acc ← corr · acc + Σ_rows p · v, each value row of the tile decoded once per thread.
    const int n_valid = static_cast<int>(min(static_cast<int64_t>(kKeys), n_rows - s0));
#pragma unroll
    for (int x = 0; x < kChannelsPerThread; ++x) {
      const int c = tid + kThreads * x;
      if (c >= hd) continue;
#pragma unroll
      for (int i = 0; i < kQueries; ++i) acc[x][i] *= corr_sh[i];
      for (int r = 0; r < n_valid; ++r) {
        const float vr = cache_value<kType>(a.v, a.row_bytes, s0 + r, kvh, hd, c);
#pragma unroll
        for (int i = 0; i < kQueries; ++i) acc[x][i] += p_sh[i][r] * vr;
      }
    }
    __syncthreads();  // before the next tile overwrites p_sh, corr_sh
  }

  // Row 0 is seen by every real token, so l ≥ 1 for them; rows past the last token are skipped.
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r)
    if (lane == 0) corr_sh[warp + kWarps * r] = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
  __syncthreads();
#pragma unroll
  for (int x = 0; x < kChannelsPerThread; ++x) {
    const int c = tid + kThreads * x;
    if (c >= hd) continue;
#pragma unroll
    for (int i = 0; i < kQueries; ++i) {
      const int64_t t = t0 + i;
      if (t < a.n_tokens) a.out[(t * a.n_heads + h) * hd + c] = acc[x][i] * corr_sh[i];
    }
  }
}

}  // namespace

void flash_attention(CudaBackend& be, const HeadView& q, const KvView& kv, std::span<const int32_t> positions,
                     float scale, float* out) {
  const int64_t n_tokens = q.n_tokens;
  if (n_tokens == 0) return;
  FlashArgs a{};
  a.q = q.data;
  a.q_token_stride = q.token_stride;
  a.q_head_stride = q.head_stride;
  a.k = kv.k;
  a.v = kv.v;
  a.row_bytes = kv.row_bytes;
  a.positions = static_cast<const int32_t*>(be.stage(CudaBackend::Staging::Positions, positions.data(),
                                                     static_cast<uint64_t>(n_tokens) * sizeof(int32_t)));
  a.n_tokens = n_tokens;
  a.n_heads = static_cast<int>(q.n_heads);
  a.group = static_cast<int>(q.n_heads / kv.n_kv_heads);
  a.hd = static_cast<int>(q.head_dim);
  a.scale = scale;
  a.out = out;

  const int64_t n_tiles = (n_tokens + kQueries - 1) / kQueries;
  const dim3 grid(static_cast<unsigned>(n_tiles * q.n_heads));
  switch (kv.type) {
    case TensorType::F32:
      launch_kernel(flash_attention_kernel<TensorType::F32>, grid, dim3(kThreads), 0, be.stream(), a);
      break;
    case TensorType::F16:
      launch_kernel(flash_attention_kernel<TensorType::F16>, grid, dim3(kThreads), 0, be.stream(), a);
      break;
    default:
      launch_kernel(flash_attention_kernel<TensorType::Q8_0>, grid, dim3(kThreads), 0, be.stream(), a);
      break;
  }
  PEREGRINE_CUDA_LAUNCHED();
}

}  // namespace peregrine::cuda
