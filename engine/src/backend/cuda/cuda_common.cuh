// Shared by the CUDA backend's .cu files: error checks, launch helpers, warp reductions.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <sstream>
#include <string>

#include "peregrine/error.h"

namespace peregrine::cuda {

// Messages are built with streams, not fmt: fmt's compile-time format strings (consteval) do not
// compile under nvcc, and spdlog's formatting templates carry them too.
template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream s;
  (s << ... << args);
  return s.str();
}

// Throws peregrine::Error naming the call, the file:line and CUDA's message.
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);

#define PEREGRINE_CUDA_CHECK(call)                                                     \
  do {                                                                                 \
    const cudaError_t peregrine_cuda_err_ = (call);                                    \
    if (peregrine_cuda_err_ != cudaSuccess)                                            \
      ::peregrine::cuda::throw_cuda_error(peregrine_cuda_err_, #call, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: reports launch-configuration errors at once (not execution errors,
// which surface at the next synchronising call).
#define PEREGRINE_CUDA_LAUNCHED() PEREGRINE_CUDA_CHECK(cudaGetLastError())

inline unsigned blocks_for(int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum over a block of blockDim.x threads (a multiple of 32, at most 1024); every thread gets the
// result. `shared` holds at least 32 floats.
__device__ __forceinline__ float block_sum(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const int n_warps = (blockDim.x + 31) >> 5;
  v = lane < n_warps ? shared[lane] : 0.0f;
  return warp_sum(v);
}

__device__ __forceinline__ float sigmoidf_(float x) { return 1.0f / (1.0f + __expf(-x)); }
__device__ __forceinline__ float siluf_(float x) { return x / (1.0f + __expf(-x)); }

}  // namespace peregrine::cuda
