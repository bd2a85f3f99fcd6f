// The GEMV kernel versions behind CudaBackend::matmul for 1..kMaxGemvTokens activation rows
// (docs/cuda.md, "Matrix products"). Plain C++ header: the tests and the benchmark call a chosen
// version directly.
//
//   v1  float activations; each warp stages ~1 KB of each of its 4 rows in shared memory
//       (cuda_matmul.cu). Every type.
//   v2  float activations; no shared memory: each lane loads whole blocks of 2 rows straight into
//       registers with 16-byte loads, many in flight (cuda_gemv_direct.cu). Types whose block
//       group is a multiple of 16 bytes: F32, F16, BF16, Q8_0, Q4_K, Q5_K, IQ4_XS, with 16-byte
//       aligned rows.
//   v3  8-bit activations (the CPU backend's Quantized8 formats, quantized on the GPU once per
//       call) and integer dot products with __dp4a (cuda_gemv_q8.cu, cuda_vec_dot_q8.cuh): Q8_0,
//       Q4_K, Q5_K, Q6_K, IQ4_XS.
//
// choose_gemv_version picks one per call: PEREGRINE_CUDA_GEMV=v1|v2|v3 when set (read once), else
// the default table in cuda_gemv_select.cpp; a version without a kernel for the weight falls back
// v3 → v2 → v1. The choice is logged once per (type, version) by the "cuda" logger.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "peregrine/backend.h"
#include "peregrine/mtp_limits.h"

typedef struct CUstream_st* cudaStream_t;

namespace peregrine::cuda {

class CudaBackend;

// Every MTP verify step (and every decode step) takes the GEMV path; matmul_experts too.
inline constexpr int kMaxGemvTokens = kMaxVerifyTokens;

enum class GemvVersion { V1 = 1, V2 = 2, V3 = 3 };

const char* gemv_version_name(GemvVersion v);              // "v1", "v2", "v3"
std::optional<GemvVersion> parse_gemv_version(std::string_view text);

// Whether version v has a kernel for this weight (type, row alignment, row length).
bool gemv_supports(GemvVersion v, const WeightView& w);

// The version CudaBackend::matmul runs for this weight and token count (see above).
GemvVersion choose_gemv_version(const WeightView& w, int64_t n_tokens);

// y[t] = W·x[t] for t < n_tokens (1..kMaxGemvTokens) with version v. Throws peregrine::Error when
// v has no kernel for the weight (gemv_supports).
void run_gemv(CudaBackend& be, GemvVersion v, const WeightView& w, const float* x, float* y, int64_t n_tokens);

// The versions' entry points (one file each) and their support tests.
void gemv_v1(const WeightView& w, const float* x, float* y, int64_t n_tokens, cudaStream_t stream);
void gemv_v2(const WeightView& w, const float* x, float* y, int64_t n_tokens, cudaStream_t stream);
void gemv_v3(CudaBackend& be, const WeightView& w, const float* x, float* y, int64_t n_tokens);
bool gemv_v1_supports(const WeightView& w);
bool gemv_v2_supports(const WeightView& w);
bool gemv_v3_supports(const WeightView& w);

}  // namespace peregrine::cuda
