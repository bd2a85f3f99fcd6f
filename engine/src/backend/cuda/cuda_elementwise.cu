// Norms, rope, copies, SwiGLU, gates, conv1d, KV-cache stores, MoE helpers and get_rows.
//
// Every kernel mirrors the CPU backend's float operations in the same order (cpu_elementwise.cpp,
// cpu_attention.cpp, cpu_delta_net.cpp) so results agree to rounding: reductions are the one
// place where the order differs (tree sums in float on the device, sequential double sums on
// the CPU). Transcendentals use the accurate expf/cosf/sinf/log1pf, not the __expf intrinsics:
// these kernels are bound by memory traffic, so the extra instructions cost nothing.
// Layouts: one block per row (or per head) for row operations, a grid-stride loop otherwise.
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_common.cuh"
#include "peregrine/error.h"
#include "peregrine/q8_0_block.h"
#include "peregrine/quant.h"

namespace peregrine::cuda {
namespace {

constexpr int kThreads = 256;            // elementwise kernels and row kernels
constexpr int kHeadThreads = 128;        // per-head kernels: one block per (token, head)
constexpr unsigned kMaxGrid = 1u << 20;  // grid-stride kernels cap their grid here
constexpr int kMaxExperts = 4096;        // moe_route keeps a token's probabilities in shared memory
constexpr int kQ8Block = kQ8_0BlockValues, kQ8BlockBytes = kQ8_0BlockBytes;
static_assert(kQ8Block == 32, "store_q8_0_kernel: one warp lane per value of a Q8_0 block");

unsigned grid_for(int64_t n) { return std::min<unsigned>(blocks_for(n, kThreads), kMaxGrid); }

// The device side of a HeadView.
struct Heads {
  float* data;
  int64_t n_heads, head_dim, token_stride, head_stride;
  __device__ float* head(int64_t t, int64_t h) const { return data + t * token_stride + h * head_stride; }
};
Heads heads_of(const HeadView& v) { return {v.data, v.n_heads, v.head_dim, v.token_stride, v.head_stride}; }

__device__ __forceinline__ float sigmoid_precise(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ float silu_precise(float x) { return x / (1.0f + expf(-x)); }
// The linear cut-off above 20 as the CPU backend (and llama.cpp) has it.
__device__ __forceinline__ float softplus_precise(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

// fp32 → fp16 bits as quant::fp32_to_fp16: round to nearest even, NaN → 0x7E00 with the sign.
__device__ __forceinline__ uint16_t fp16_bits(float x) {
  if (isnan(x)) return static_cast<uint16_t>(((__float_as_uint(x) >> 16) & 0x8000u) | 0x7E00u);
  return __half_as_ushort(__float2half_rn(x));
}

__device__ __forceinline__ float block_max(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const int n_warps = (blockDim.x + 31) >> 5;
  v = lane < n_warps ? shared[lane] : -INFINITY;
  return warp_max(v);
}

// ---- get_rows ----

template <TensorType kType>
__device__ float table_value(const uint8_t* row, int64_t i) {
  if constexpr (kType == TensorType::F32) {
    return reinterpret_cast<const float*>(row)[i];
  } else if constexpr (kType == TensorType::F16) {
    return __half2float(__ushort_as_half(reinterpret_cast<const unsigned short*>(row)[i]));
  } else if constexpr (kType == TensorType::BF16) {
    return __uint_as_float(static_cast<uint32_t>(reinterpret_cast<const unsigned short*>(row)[i]) << 16);
  } else {  // Q8_0: an fp16 scale, then kQ8Block int8 values; blocks are only 2-byte aligned
    const uint8_t* block = row + (i / kQ8Block) * kQ8BlockBytes;
    const float d = __half2float(__ushort_as_half(static_cast<unsigned short>(block[0] | (block[1] << 8))));
    return static_cast<float>(static_cast<int8_t>(block[2 + i % kQ8Block])) * d;
  }
}

template <TensorType kType>
__global__ void get_rows_kernel(const uint8_t* table, uint64_t row_bytes, const int32_t* tokens, int64_t n,
                                float* out) {
  const uint8_t* row = table + static_cast<uint64_t>(tokens[blockIdx.x]) * row_bytes;
  float* dst = out + blockIdx.x * n;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) dst[i] = table_value<kType>(row, i);
}

// ---- norms ----

__global__ void rmsnorm_kernel(const float* x, const float* w, float* y, int64_t n, float eps) {
  __shared__ float shared[32];
  const float* xr = x + blockIdx.x * n;
  float* yr = y + blockIdx.x * n;
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += xr[i] * xr[i];
  sum = block_sum(sum, shared);
  const float s = 1.0f / sqrtf(sum / static_cast<float>(n) + eps);
  // In place (x == y) is safe: each thread rewrites only the values it alone read.
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = w ? xr[i] * s * w[i] : xr[i] * s;
}

// Per head: rmsnorm with a shared weight (z == nullptr), or the gated form v·s·w·silu(z).
__global__ void rmsnorm_heads_kernel(Heads x, Heads z, const float* w, float eps) {
  __shared__ float shared[32];
  const int64_t t = blockIdx.x / x.n_heads, h = blockIdx.x % x.n_heads, d = x.head_dim;
  float* v = x.head(t, h);
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) sum += v[i] * v[i];
  sum = block_sum(sum, shared);
  const float s = 1.0f / sqrtf(sum / static_cast<float>(d) + eps);
  if (z.data) {
    const float* zv = z.head(t, h);
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) v[i] = v[i] * s * w[i] * silu_precise(zv[i]);
  } else {
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) v[i] = v[i] * s * w[i];
  }
}

__global__ void l2norm_heads_kernel(Heads x, float eps, float scale) {
  __shared__ float shared[32];
  const int64_t t = blockIdx.x / x.n_heads, h = blockIdx.x % x.n_heads, d = x.head_dim;
  float* v = x.head(t, h);
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) sum += v[i] * v[i];
  sum = block_sum(sum, shared);
  const float s = scale / sqrtf(sum + eps);
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) v[i] *= s;
}

// ---- rope ----

// Which rotary pairs carry the position (see pair_uses_position in cpu_attention.cpp).
struct RopeSections {
  int use = 0;  // 0: every pair uses the position
  int64_t total = 0, time = 0, height = 0, width = 0;
};

RopeSections rope_sections(const std::vector<int32_t>& sec) {
  RopeSections r;
  if (sec.size() < 3) return r;
  r.total = std::accumulate(sec.begin(), sec.end(), int64_t{0});
  if (r.total <= 0) return r;
  r.use = 1;
  r.time = sec[0];
  r.height = sec[1];
  r.width = sec[2];
  return r;
}

__device__ bool pair_uses_position(int64_t i, const RopeSections& sec) {
  if (!sec.use) return true;
  const int64_t s = i % sec.total;
  return (s % 3 == 0 && s < 3 * sec.time) || (s % 3 == 1 && s < 3 * sec.height) || (s % 3 == 2 && s < 3 * sec.width);
}

// One block per token. Shared memory: cos and sin of the `half` pair angles.
__global__ void rope_kernel(Heads x, const int32_t* positions, int64_t half, float theta_scale, RopeSections sec) {
  PEREGRINE_DYNAMIC_SHARED(float, table);
  float* cos_v = table;
  float* sin_v = table + half;
  const int64_t t = blockIdx.x;
  if (threadIdx.x == 0) {
    // The angle of pair i is pos·theta_scale^i built by repeated multiplication, exactly as
    // the CPU backend (and ggml) does it, so the angles are bit-identical.
    float theta = static_cast<float>(positions[t]);
    for (int64_t i = 0; i < half; ++i) {
      cos_v[i] = pair_uses_position(i, sec) ? theta : 0.0f;
      theta *= theta_scale;
    }
  }
  __syncthreads();
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    const float angle = cos_v[i];
    cos_v[i] = cosf(angle);
    sin_v[i] = sinf(angle);
  }
  __syncthreads();
  for (int64_t p = threadIdx.x; p < x.n_heads * half; p += blockDim.x) {
    const int64_t h = p / half, i = p % half;
    float* v = x.head(t, h);
    const float x0 = v[i], x1 = v[i + half];
    v[i] = x0 * cos_v[i] - x1 * sin_v[i];
    v[i + half] = x0 * sin_v[i] + x1 * cos_v[i];
  }
}

// ---- elementwise ----

__global__ void add_kernel(float* y, const float* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    y[i] += x[i];
}

__global__ void swiglu_kernel(const float* gate, const float* up, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    y[i] = silu_precise(gate[i]) * up[i];
}

__global__ void mul_sigmoid_heads_kernel(Heads x, Heads gate) {
  const int64_t t = blockIdx.x / x.n_heads, h = blockIdx.x % x.n_heads;
  float* v = x.head(t, h);
  const float* g = gate.head(t, h);
  for (int64_t i = threadIdx.x; i < x.head_dim; i += blockDim.x) v[i] *= sigmoid_precise(g[i]);
}

// ---- delta-net helpers ----

// out[t][c] = silu(Σ_j w[c][j] · input(t − (kernel−1) + j)[c]); input rows before 0 come from state.
__global__ void conv1d_silu_kernel(const float* x, int64_t x_stride, int64_t n_tokens, int64_t channels, const float* w,
                                   int64_t kernel, const float* state, float* out) {
  const int64_t n_hist = kernel - 1, total = n_tokens * channels;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < total;
       idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t t = idx / channels, c = idx % channels;
    float acc = 0.0f;
    for (int64_t j = 0; j < kernel; ++j) {
      const int64_t s = t - n_hist + j;
      const float in = s < 0 ? state[(n_hist + s) * channels + c] : x[s * x_stride + c];
      acc += w[c * kernel + j] * in;
    }
    out[idx] = silu_precise(acc);
  }
}

// New state row r = input row n_tokens − n_hist + r. One thread per channel walks the rows in
// increasing order, so an old state row it still needs (row r + n_tokens > r) is intact.
__global__ void conv1d_state_kernel(const float* x, int64_t x_stride, int64_t n_tokens, int64_t channels,
                                    int64_t n_hist, float* state) {
  const int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (c >= channels) return;
  for (int64_t r = 0; r < n_hist; ++r) {
    const int64_t s = n_tokens - n_hist + r;
    state[r * channels + c] = s < 0 ? state[(n_hist + s) * channels + c] : x[s * x_stride + c];
  }
}

__global__ void delta_gates_kernel(const float* a, int64_t a_stride, const float* b, int64_t b_stride,
                                   const float* dt_bias, const float* a_neg, int64_t n_tokens, int64_t n_v_heads,
                                   float* g, float* beta) {
  const int64_t total = n_tokens * n_v_heads;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < total;
       idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t t = idx / n_v_heads, j = idx % n_v_heads;
    beta[idx] = sigmoid_precise(b[t * b_stride + j]);
    g[idx] = a_neg[j] * softplus_precise(a[t * a_stride + j] + dt_bias[j]);
  }
}

// ---- KV-cache stores ----

__global__ void store_f16_kernel(const float* src, int64_t n, uint16_t* dst) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    dst[i] = fp16_bits(src[i]);
}

// One warp per Q8_0 block, llama.cpp's reference quantizer step by step: d = amax/127,
// q = round(x/d) (half away from zero) computed as x·(1/d), clamped and truncated as ggml casts.
__global__ void store_q8_0_kernel(const float* src, int64_t n_blocks, uint8_t* dst) {
  const int lane = threadIdx.x & 31;
  const int64_t b = blockIdx.x * int64_t{blockDim.x / 32} + (threadIdx.x >> 5);
  if (b >= n_blocks) return;  // warp-uniform: the whole warp leaves together
  const float x = src[b * kQ8Block + lane];
  const float amax = warp_max(fabsf(x));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  float level = roundf(x * id);
  level = isnan(level) ? 0.0f : fminf(fmaxf(level, -128.0f), 127.0f);
  uint8_t* block = dst + b * kQ8BlockBytes;
  if (lane == 0) {
    const uint16_t bits = fp16_bits(d);
    block[0] = static_cast<uint8_t>(bits & 0xFF);
    block[1] = static_cast<uint8_t>(bits >> 8);
  }
  block[2 + lane] = static_cast<uint8_t>(static_cast<int8_t>(level));
}

// ---- MoE ----

// The better of two candidate experts (−1: none): higher probability, ties to the lower id.
__device__ __forceinline__ int better_expert(int a, int b, const float* probs) {
  if (a < 0) return b;
  if (b < 0) return a;
  if (probs[b] > probs[a]) return b;
  if (probs[a] > probs[b]) return a;
  return min(a, b);
}

// One block per token. Shared memory: the n_expert probabilities, then n_expert "taken" flags.
__global__ void moe_route_kernel(const float* logits, int64_t n_expert, int64_t k, int32_t* expert_ids,
                                 float* weights) {
  PEREGRINE_DYNAMIC_SHARED(float, probs);
  auto* taken = reinterpret_cast<unsigned char*>(probs + n_expert);
  __shared__ float reduce[32];
  __shared__ int warp_best[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = (blockDim.x + 31) >> 5;
  const float* r = logits + blockIdx.x * n_expert;

  float mx = -INFINITY;
  for (int64_t e = threadIdx.x; e < n_expert; e += blockDim.x) mx = fmaxf(mx, r[e]);
  mx = block_max(mx, reduce);
  float sum = 0.0f;
  for (int64_t e = threadIdx.x; e < n_expert; e += blockDim.x) {
    probs[e] = expf(r[e] - mx);
    sum += probs[e];
    taken[e] = 0;
  }
  sum = block_sum(sum, reduce);
  for (int64_t e = threadIdx.x; e < n_expert; e += blockDim.x) probs[e] /= sum;
  __syncthreads();

  int32_t* ids = expert_ids + blockIdx.x * k;
  float* wt = weights + blockIdx.x * k;
  float selected = 0.0f;  // meaningful in thread 0 only
  for (int64_t j = 0; j < k; ++j) {
    int best = -1;
    for (int64_t e = threadIdx.x; e < n_expert; e += blockDim.x)
      if (!taken[e]) best = better_expert(best, static_cast<int>(e), probs);
    for (int offset = 16; offset > 0; offset >>= 1)
      best = better_expert(best, __shfl_xor_sync(0xffffffffu, best, offset), probs);
    if (lane == 0) warp_best[warp] = best;
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int w = 1; w < n_warps; ++w) best = better_expert(best, warp_best[w], probs);
      ids[j] = best;
      wt[j] = probs[best];
      selected += probs[best];
      taken[best] = 1;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0)
    for (int64_t j = 0; j < k; ++j) wt[j] /= selected;
}

__global__ void gather_rows_kernel(const float* x, const int32_t* rows, int64_t n, float* out) {
  const float* src = x + static_cast<int64_t>(rows[blockIdx.x]) * n;
  float* dst = out + blockIdx.x * n;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) dst[j] = src[j];
}

// atomicAdd keeps the result right even if one call names a y row twice (the model never
// does: within one expert the rows are distinct tokens, and then each element sees one add).
__global__ void scatter_add_rows_kernel(const float* x, const int32_t* rows, const float* scale, int64_t n, float* y) {
  const float* src = x + blockIdx.x * n;
  float* dst = y + static_cast<int64_t>(rows[blockIdx.x]) * n;
  const float s = scale[blockIdx.x];
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) atomicAdd(dst + j, s * src[j]);
}

__global__ void scale_rows_sigmoid_kernel(float* x, const float* gate_logit, int64_t n) {
  const float s = sigmoid_precise(gate_logit[blockIdx.x]);
  float* row = x + blockIdx.x * n;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) row[j] *= s;
}

std::string type_name(TensorType type) { return std::string(tensor_type_info(type).name); }

// Grids of one block per row / head take the row count as gridDim.x.
unsigned row_grid(int64_t rows) {
  if (rows > 0x7FFFFFFF) throw Error(cat("cuda backend: ", rows, " rows exceed one launch"));
  return static_cast<unsigned>(rows);
}

}  // namespace

void CudaBackend::get_rows(const WeightView& table, std::span<const int32_t> tokens, float* out) {
  if (tokens.empty()) return;
  for (const int32_t id : tokens)
    if (id < 0 || id >= table.n_out)
      throw Error(cat("cuda backend: token id ", id, " outside '", table.name, "' with ", table.n_out, " rows"));
  const auto n_tokens = static_cast<int64_t>(tokens.size());
  const int64_t n = table.n_in;
  switch (table.type) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16:
    case TensorType::Q8_0: {
      const auto* ids = static_cast<const int32_t*>(stage(Staging::Tokens, tokens.data(), tokens.size_bytes()));
      const unsigned grid = row_grid(n_tokens);
      if (table.type == TensorType::F32)
        launch_kernel(get_rows_kernel<TensorType::F32>, grid, kThreads, 0, stream_, table.data, table.row_bytes, ids, n,
                      out);
      else if (table.type == TensorType::F16)
        launch_kernel(get_rows_kernel<TensorType::F16>, grid, kThreads, 0, stream_, table.data, table.row_bytes, ids, n,
                      out);
      else if (table.type == TensorType::BF16)
        launch_kernel(get_rows_kernel<TensorType::BF16>, grid, kThreads, 0, stream_, table.data, table.row_bytes, ids,
                      n, out);
      else
        launch_kernel(get_rows_kernel<TensorType::Q8_0>, grid, kThreads, 0, stream_, table.data, table.row_bytes, ids,
                      n, out);
      PEREGRINE_CUDA_LAUNCHED();
      return;
    }
    default: break;
  }
  // Other encodings (the K-quants an embedding table often has): copy the few rows back and
  // decode them with the host quantization module. One lookup per step, a few KiB per token.
  if (!quant::is_supported(table.type))
    throw Error(cat("cuda backend: get_rows cannot decode '", table.name, "' of type ", type_name(table.type)));
  std::vector<uint8_t> encoded(static_cast<size_t>(table.row_bytes) * tokens.size());
  for (size_t t = 0; t < tokens.size(); ++t)
    PEREGRINE_CUDA_CHECK(cudaMemcpyAsync(encoded.data() + t * table.row_bytes, table.row(tokens[t]), table.row_bytes,
                                         cudaMemcpyDeviceToHost, stream_));
  PEREGRINE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  std::vector<float> decoded(static_cast<size_t>(n_tokens * n));
  for (size_t t = 0; t < tokens.size(); ++t)
    quant::dequantize(table.type, encoded.data() + t * table.row_bytes, decoded.data() + t * n, n);
  upload(out, decoded.data(), decoded.size() * sizeof(float));
}

void CudaBackend::rmsnorm(const float* x, const float* w, float* y, int64_t n_rows, int64_t n, float eps) {
  if (n_rows <= 0 || n <= 0) return;
  launch_kernel(rmsnorm_kernel, row_grid(n_rows), kThreads, 0, stream_, x, w, y, n, eps);
  PEREGRINE_CUDA_LAUNCHED();
}

void CudaBackend::rmsnorm_heads(const HeadView& x, const float* w, float eps) {
  if (x.n_tokens <= 0 || x.n_heads <= 0 || x.head_dim <= 0) return;
  launch_kernel(rmsnorm_heads_kernel, row_grid(x.n_tokens * x.n_heads), kHeadThreads, 0, stream_, heads_of(x), Heads{},
                w, eps);
  PEREGRINE_CUDA_LAUNCHED();
}

void CudaBackend::gated_rmsnorm_heads(const HeadView& x, const HeadView& z, const float* w, float eps) {
  if (x.n_tokens <= 0 || x.n_heads <= 0 || x.head_dim <= 0) return;
  launch_kernel(rmsnorm_heads_kernel, row_grid(x.n_tokens * x.n_heads), kHeadThreads, 0, stream_, heads_of(x),
                heads_of(z), w, eps);
  PEREGRINE_CUDA_LAUNCHED();
}

void CudaBackend::l2norm_heads(const HeadView& x, float eps, float scale) {
  if (x.n_tokens <= 0 || x.n_heads <= 0 || x.head_dim <= 0) return;
  launch_kernel(l2norm_heads_kernel, row_grid(x.n_tokens * x.n_heads), kHeadThreads, 0, stream_, heads_of(x), eps,
                scale);
  PEREGRINE_CUDA_LAUNCHED();
}

void CudaBackend::rope(const HeadView& x, std::span<const int32_t> positions, const RopeParams& p) {
  const int64_t half = p.n_rot / 2;
  if (x.n_tokens <= 0 || x.n_heads <= 0 || half <= 0) return;
  if (static_cast<int64_t>(positions.size()) < x.n_tokens)
    throw Error(cat("cuda backend: rope got ", positions.size(), " positions for ", x.n_tokens, " tokens"));
  if (p.n_rot > x.head_dim)
    throw Error(cat("cuda backend: rope rotates ", p.n_rot, " dims of a ", x.head_dim, "-dim head"));
  // The same float expression as the CPU backend, evaluated on the host, so both scale alike.
  const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_rot));
  const auto* pos = static_cast<const int32_t*>(
      stage(Staging::Positions, positions.data(), static_cast<uint64_t>(x.n_tokens) * sizeof(int32_t)));
  const size_t shared = static_cast<size_t>(2 * half) * sizeof(float);
  launch_kernel(rope_kernel, row_grid(x.n_tokens), kHeadThreads, shared, stream_, heads_of(x), pos, half, theta_scale,
                rope_sections(p.sections));
  PEREGRINE_CUDA_LAUNCHED();
}

void CudaBackend::copy_2d(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t n_rows,
                          int64_t n) {
  if (n_rows <= 0 || n <= 0) return;
  if (src_stride == n && dst_stride == n) {
    copy(dst, src, static_cast<uint64_t>(n_rows * n) * sizeof(float));
    return;
  }
  PEREGRINE_CUDA_CHECK(cudaMemcpy2DAsync(dst, dst_stride * sizeof(float), src, src_stride * sizeof(float),
                                         n * sizeof(float), n_rows, cudaMemcpyDeviceToDevice, stream_));
}

void CudaBackend::add(float* y, const float* x, int64_t n) {
  if (n <= 0) return;
  launch_kernel(add_kernel, grid_for(n), kThreads, 0, stream_, y, x, n);
  PEREGRINE_CUDA_LAUNCHED();
}

void CudaBackend::swiglu(const float* gate, const float* up, float* y, int64_t n) {
  if (n <= 0) return;
  launch_kernel(swiglu_kernel, grid_for(n), kThreads, 0, stream_, gate, up, y, n);
  PEREGRINE_CUDA_LAUNCHED();
}

void CudaBackend::mul_sigmoid_heads(const HeadView& x, const HeadView& gate) {
  if (x.n_tokens <= 0 || x.n_heads <= 0 || x.head_dim <= 0) return;
  launch_kernel(mul_sigmoid_heads_kernel, row_grid(x.n_tokens * x.n_heads), kHeadThreads, 0, stream_, heads_of(x),
                heads_of(gate));
  PEREGRINE_CUDA_LAUNCHED();
}

void CudaBackend::conv1d_silu(const float* x, int64_t x_stride, int64_t n_tokens, int64_t channels, const float* w,
                              int64_t kernel, float* state, float* out) {
  if (n_tokens <= 0 || channels <= 0) return;
  if (kernel < 1) throw Error(cat("cuda backend: conv1d kernel size ", kernel));
  // Two launches on one stream: every output reads the old state before the state moves on.
  launch_kernel(conv1d_silu_kernel, grid_for(n_tokens * channels), kThreads, 0, stream_, x, x_stride, n_tokens,
                channels, w, kernel, state, out);
  PEREGRINE_CUDA_LAUNCHED();
  if (kernel == 1) return;
  launch_kernel(conv1d_state_kernel, blocks_for(channels, kThreads), kThreads, 0, stream_, x, x_stride, n_tokens,
                channels, kernel - 1, state);
  PEREGRINE_CUDA_LAUNCHED();
}

void CudaBackend::delta_gates(const float* a, int64_t a_stride, const float* b, int64_t b_stride, const float* dt_bias,
                              const float* a_neg, int64_t n_tokens, int64_t n_v_heads, float* g, float* beta) {
  if (n_tokens <= 0 || n_v_heads <= 0) return;
  launch_kernel(delta_gates_kernel, grid_for(n_tokens * n_v_heads), kThreads, 0, stream_, a, a_stride, b, b_stride,
                dt_bias, a_neg, n_tokens, n_v_heads, g, beta);
  PEREGRINE_CUDA_LAUNCHED();
}

void CudaBackend::kv_store(TensorType type, const float* src, int64_t n_rows, int64_t n, uint8_t* dst) {
  if (type != TensorType::F32 && type != TensorType::F16 && type != TensorType::Q8_0)
    throw Error(cat("KV cache type ", type_name(type), " is not supported (f32, f16, q8_0)"));
  if (type == TensorType::Q8_0 && n % kQ8Block != 0)
    throw Error(cat("KV cache q8_0: row of ", n, " values is not a multiple of ", kQ8Block));
  const int64_t total = n_rows * n;
  if (total <= 0) return;
  switch (type) {
    case TensorType::F32: copy(dst, src, static_cast<uint64_t>(total) * sizeof(float)); return;
    case TensorType::F16:
      launch_kernel(store_f16_kernel, grid_for(total), kThreads, 0, stream_, src, total,
                    reinterpret_cast<uint16_t*>(dst));
      break;
    default: {
      // Rows of n values are contiguous and whole blocks, so the blocks of all rows are one run.
      const int64_t n_blocks = total / kQ8Block;
      constexpr int kWarpsPerBlock = kThreads / 32;
      launch_kernel(store_q8_0_kernel, blocks_for(n_blocks, kWarpsPerBlock), kThreads, 0, stream_, src, n_blocks, dst);
      break;
    }
  }
  PEREGRINE_CUDA_LAUNCHED();
}

void CudaBackend::moe_route(const float* logits, int64_t n_tokens, int64_t n_expert, int64_t k, int32_t* expert_ids,
                            float* weights) {
  if (n_tokens <= 0) return;
  if (n_expert < 1 || n_expert > kMaxExperts || k < 1 || k > n_expert)
    throw Error(cat("cuda backend: moe_route with ", n_expert, " experts and top ", k,
                    " (supported: 1 <= k <= experts <= ", kMaxExperts, ")"));
  const uint64_t n_out = static_cast<uint64_t>(n_tokens * k);
  auto* ids_dev = static_cast<int32_t*>(scratch(Scratch::A, n_out * (sizeof(int32_t) + sizeof(float))));
  auto* weights_dev = reinterpret_cast<float*>(ids_dev + n_out);
  const size_t shared = static_cast<size_t>(n_expert) * (sizeof(float) + 1);
  launch_kernel(moe_route_kernel, row_grid(n_tokens), kThreads, shared, stream_, logits, n_expert, k, ids_dev,
                weights_dev);
  PEREGRINE_CUDA_LAUNCHED();
  // The caller groups tokens by expert on the host: hand the choices back now.
  PEREGRINE_CUDA_CHECK(cudaMemcpyAsync(expert_ids, ids_dev, n_out * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
  PEREGRINE_CUDA_CHECK(cudaMemcpyAsync(weights, weights_dev, n_out * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  PEREGRINE_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

// The same routing with its outputs left in device memory: no copy back, no wait.
void CudaBackend::moe_route_device(const float* logits, int64_t n_tokens, int64_t n_expert, int64_t k,
                                   int32_t* expert_ids, float* weights) {
  if (n_tokens <= 0) return;
  if (n_expert < 1 || n_expert > kMaxExperts || k < 1 || k > n_expert)
    throw Error(cat("cuda backend: moe_route_device with ", n_expert, " experts and top ", k,
                    " (supported: 1 <= k <= experts <= ", kMaxExperts, ")"));
  const size_t shared = static_cast<size_t>(n_expert) * (sizeof(float) + 1);
  launch_kernel(moe_route_kernel, row_grid(n_tokens), kThreads, shared, stream_, logits, n_expert, k, expert_ids,
                weights);
  PEREGRINE_CUDA_LAUNCHED();
}

void CudaBackend::gather_rows(const float* x, std::span<const int32_t> rows, int64_t n, float* out) {
  if (rows.empty() || n <= 0) return;
  const auto* rows_dev = static_cast<const int32_t*>(stage(Staging::Rows, rows.data(), rows.size_bytes()));
  launch_kernel(gather_rows_kernel, row_grid(static_cast<int64_t>(rows.size())), kThreads, 0, stream_, x, rows_dev, n,
                out);
  PEREGRINE_CUDA_LAUNCHED();
}

void CudaBackend::scatter_add_rows(const float* x, std::span<const int32_t> rows, std::span<const float> scale,
                                   int64_t n, float* y) {
  if (rows.size() != scale.size())
    throw Error(cat("cuda backend: scatter_add_rows got ", rows.size(), " rows and ", scale.size(), " scales"));
  if (rows.empty() || n <= 0) return;
  const auto* rows_dev = static_cast<const int32_t*>(stage(Staging::Rows, rows.data(), rows.size_bytes()));
  const auto* scale_dev = static_cast<const float*>(stage(Staging::Scales, scale.data(), scale.size_bytes()));
  launch_kernel(scatter_add_rows_kernel, row_grid(static_cast<int64_t>(rows.size())), kThreads, 0, stream_, x, rows_dev,
                scale_dev, n, y);
  PEREGRINE_CUDA_LAUNCHED();
}

void CudaBackend::scale_rows_sigmoid(float* x, const float* gate_logit, int64_t n_tokens, int64_t n) {
  if (n_tokens <= 0 || n <= 0) return;
  launch_kernel(scale_rows_sigmoid_kernel, row_grid(n_tokens), kThreads, 0, stream_, x, gate_logit, n);
  PEREGRINE_CUDA_LAUNCHED();
}

}  // namespace peregrine::cuda
