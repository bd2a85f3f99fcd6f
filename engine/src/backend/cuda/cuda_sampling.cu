// CudaBackend's sampling operations: penalties on a few ids of a logits row, and the k best
// logits of each row selected on the device, so a decode step moves k candidates to the host
// instead of a whole row (docs/cuda.md).
//
// Selection works on 64-bit keys that order candidates exactly as the host reference
// (select_top_k in logit_select.h) does: the value's bits mapped to an order-preserving unsigned
// integer in the high half (-0 folded onto +0, which the host compares as equal), 0xFFFFFFFF − id
// in the low half (equal values: lower id first), and key 0 for NaN and -inf (never candidates).
// Every key is distinct, so "the k largest keys" is one well-defined answer.
//
// Each row is cut into chunks; one block per (chunk, row) writes its chunk's k largest keys, best
// first. The chunk lists of a row are then chunked again the same way until one list remains:
// every logit is read once, by the first pass. k = 1 takes a max-reduction per chunk; larger k a
// bitonic sort of the chunk in shared memory (2048 keys, so each pass shrinks a row at least 8×).
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_common.cuh"

namespace peregrine::cuda {
namespace {

using Key = unsigned long long;

constexpr int kThreads = 256;
constexpr int64_t kSortChunk = 2048;     // keys sorted per block (k > 1): 16 KiB of shared memory
constexpr int64_t kArgmaxChunk = 8192;   // values reduced per block (k = 1)

__device__ __forceinline__ Key logit_key(float v, int64_t id) {
  if (!(v > -INFINITY)) return 0;
  unsigned bits = __float_as_uint(v == 0.0f ? 0.0f : v);
  bits = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
  return (static_cast<Key>(bits) << 32) | static_cast<Key>(0xFFFFFFFFu - static_cast<unsigned>(id));
}

// The input key `j` of a row: from the logits (first pass) or from the previous pass's lists.
template <bool kFromLogits>
__device__ __forceinline__ Key input_key(const float* logits, int64_t row_stride, const Key* keys, int64_t row,
                                         int64_t j, int64_t n) {
  if (j >= n) return 0;
  if constexpr (kFromLogits) return logit_key(logits[row * row_stride + j], j);
  else return keys[row * n + j];
}

__device__ __forceinline__ Key shuffle_key_xor(Key key, int offset) {
  const unsigned hi = __shfl_xor_sync(0xffffffffu, static_cast<unsigned>(key >> 32), offset);
  const unsigned lo = __shfl_xor_sync(0xffffffffu, static_cast<unsigned>(key & 0xFFFFFFFFu), offset);
  return (static_cast<Key>(hi) << 32) | lo;
}

// k = 1: out[row][chunk] = the largest key of the chunk's `chunk_len` inputs (n per row).
template <bool kFromLogits>
__global__ void max_key_kernel(const float* logits, int64_t row_stride, const Key* keys, int64_t n,
                               int64_t chunk_len, Key* out) {
  __shared__ Key warp_best[32];
  const int64_t row = blockIdx.y, begin = static_cast<int64_t>(blockIdx.x) * chunk_len;
  const int64_t end = begin + chunk_len < n ? begin + chunk_len : n;
  Key best = 0;
  for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x) {
    const Key key = input_key<kFromLogits>(logits, row_stride, keys, row, j, n);
    if (key > best) best = key;
  }
  for (int offset = 16; offset > 0; offset >>= 1) {
    const Key other = shuffle_key_xor(best, offset);
    if (other > best) best = other;
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_best[warp] = best;
  __syncthreads();
  if (threadIdx.x == 0) {
    const int n_warps = (blockDim.x + 31) >> 5;
    for (int w = 1; w < n_warps; ++w)
      if (warp_best[w] > best) best = warp_best[w];
    out[row * gridDim.x + blockIdx.x] = best;
  }
}

// k > 1: out[row][chunk][0..k) = the chunk's k largest keys, largest first.
template <bool kFromLogits>
__global__ void top_keys_kernel(const float* logits, int64_t row_stride, const Key* keys, int64_t n, int64_t k,
                                Key* out) {
  PEREGRINE_DYNAMIC_SHARED(Key, sorted);
  const int64_t row = blockIdx.y, begin = static_cast<int64_t>(blockIdx.x) * kSortChunk;
  for (int64_t i = threadIdx.x; i < kSortChunk; i += blockDim.x)
    sorted[i] = input_key<kFromLogits>(logits, row_stride, keys, row, begin + i, n);
  __syncthreads();
  // Bitonic sort, descending: pair (i, i + stride) runs descending where bit `size` of i is 0.
  for (int64_t size = 2; size <= kSortChunk; size <<= 1) {
    for (int64_t stride = size >> 1; stride > 0; stride >>= 1) {
      for (int64_t t = threadIdx.x; t < kSortChunk / 2; t += blockDim.x) {
        const int64_t i = 2 * t - (t & (stride - 1)), j = i + stride;
        const Key a = sorted[i], b = sorted[j];
        const bool descending = (i & size) == 0;
        if (descending ? a < b : a > b) {
          sorted[i] = b;
          sorted[j] = a;
        }
      }
      __syncthreads();
    }
  }
  Key* dst = out + (row * gridDim.x + blockIdx.x) * k;
  for (int64_t i = threadIdx.x; i < k; i += blockDim.x) dst[i] = sorted[i];
}

// Keys back to (id, value); key 0 → (-1, -inf).
__global__ void decode_keys_kernel(const Key* keys, int64_t n, int32_t* ids, float* values) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const Key key = keys[i];
    if (key == 0) {
      ids[i] = -1;
      values[i] = -INFINITY;
      continue;
    }
    unsigned bits = static_cast<unsigned>(key >> 32);
    bits = (bits & 0x80000000u) ? (bits & 0x7FFFFFFFu) : ~bits;
    ids[i] = static_cast<int32_t>(0xFFFFFFFFu - static_cast<unsigned>(key & 0xFFFFFFFFu));
    values[i] = __uint_as_float(bits);
  }
}

// The host reference's arithmetic (apply_logit_penalties) in explicitly rounded steps, so nvcc
// cannot fuse the product and the subtraction into one FMA.
__global__ void penalize_kernel(float* row, const int32_t* ids, const float* subtract, int64_t n_ids, float rep) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n_ids;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float x = row[ids[i]];
    if (rep != 1.0f) x = x > 0.0f ? __fdiv_rn(x, rep) : __fmul_rn(x, rep);
    row[ids[i]] = __fsub_rn(x, subtract[i]);
  }
}

}  // namespace

void CudaBackend::penalize_logits(float* row, int64_t n, const LogitPenalties& penalties) {
  const auto n_ids = static_cast<int64_t>(penalties.ids.size());
  if (n_ids == 0) return;
  if (penalties.subtract.size() != penalties.ids.size())
    throw Error(cat("cuda backend: penalize_logits with ", n_ids, " ids and ", penalties.subtract.size(),
                    " subtract values"));
  for (const int32_t id : penalties.ids)
    if (id < 0 || id >= n) throw Error(cat("cuda backend: penalize_logits: id ", id, " outside a row of ", n));
  // Staged like gather / scatter rows and scales: this kernel is issued before the next staging.
  const auto* ids = static_cast<const int32_t*>(stage(Staging::Rows, penalties.ids.data(), n_ids * sizeof(int32_t)));
  const auto* sub = static_cast<const float*>(stage(Staging::Scales, penalties.subtract.data(), n_ids * sizeof(float)));
  launch_kernel(penalize_kernel, dim3(blocks_for(n_ids, kThreads)), dim3(kThreads), 0, stream_, row, ids, sub, n_ids,
                penalties.repetition);
  PEREGRINE_CUDA_LAUNCHED();
}

void CudaBackend::top_k_rows(const float* x, int64_t n_rows, int64_t row_stride, int64_t n_valid, int64_t k,
                             int32_t* ids, float* values) {
  if (n_rows <= 0) return;
  if (k < 1 || k > kMaxLogitCandidates || n_valid < 1 || n_valid > row_stride)
    throw Error(cat("cuda backend: top_k_rows of ", k, " over ", n_valid, " values of rows ", row_stride,
                    " apart (supported: 1 <= k <= ", kMaxLogitCandidates, ", 1 <= n_valid <= row stride)"));
  const int64_t chunk = k == 1 ? kArgmaxChunk : kSortChunk;
  const int64_t first_chunks = (n_valid + chunk - 1) / chunk;
  const uint64_t list_bytes = static_cast<uint64_t>(n_rows * first_chunks * k) * sizeof(Key);
  Key* lists[2] = {static_cast<Key*>(scratch(Scratch::A, list_bytes)), static_cast<Key*>(scratch(Scratch::B, list_bytes))};
  const Key* in = nullptr;
  int64_t per_row = n_valid;
  for (int pass = 0;; ++pass) {
    const int64_t chunks = (per_row + chunk - 1) / chunk;
    Key* out = lists[pass & 1];
    const dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(n_rows));
    if (k == 1) {
      if (pass == 0) launch_kernel(max_key_kernel<true>, grid, dim3(kThreads), 0, stream_, x, row_stride, in, per_row, chunk, out);
      else launch_kernel(max_key_kernel<false>, grid, dim3(kThreads), 0, stream_, x, row_stride, in, per_row, chunk, out);
    } else {
      const size_t shared = kSortChunk * sizeof(Key);
      if (pass == 0) launch_kernel(top_keys_kernel<true>, grid, dim3(kThreads), shared, stream_, x, row_stride, in, per_row, k, out);
      else launch_kernel(top_keys_kernel<false>, grid, dim3(kThreads), shared, stream_, x, row_stride, in, per_row, k, out);
    }
    PEREGRINE_CUDA_LAUNCHED();
    in = out;
    per_row = chunks * k;
    if (chunks == 1) break;
  }
  const int64_t total = n_rows * k;
  auto* out_ids = static_cast<int32_t*>(scratch(Scratch::C, static_cast<uint64_t>(total) * (sizeof(int32_t) + sizeof(float))));
  auto* out_values = reinterpret_cast<float*>(out_ids + total);
  launch_kernel(decode_keys_kernel, dim3(blocks_for(total, kThreads)), dim3(kThreads), 0, stream_, in, total, out_ids,
                out_values);
  PEREGRINE_CUDA_LAUNCHED();
  PEREGRINE_CUDA_CHECK(cudaMemcpyAsync(ids, out_ids, total * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
  PEREGRINE_CUDA_CHECK(cudaMemcpyAsync(values, out_values, total * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  PEREGRINE_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

}  // namespace peregrine::cuda
