// Shared by the CUDA backend's .cu files: error checks, launch helpers, warp reductions.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <utility>

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

// Every kernel launch goes through launch_kernel instead of the triple-chevron syntax, so the
// same sources also build for the host-run emulation of the CUDA runtime (docs/cuda.md,
// "Running the CUDA code without a GPU"), where a launch is a call into the emulator.
template <class... Params, class... Args>
inline void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
                          cudaStream_t stream, Args&&... args) {
#if defined(PEREGRINE_CUDA_EMULATION)
  ::peregrine::cuda_emulation::launch(kernel, grid, block, shared_bytes, stream, std::forward<Args>(args)...);
#else
  kernel<<<grid, block, shared_bytes, stream>>>(std::forward<Args>(args)...);
#endif
}

// Dynamic shared memory (the launch's shared_bytes) as a T* named `name`. The emulator hands each
// block a buffer filled with 0xFF bytes (NaN), so a read before a write shows up in results.
#if defined(PEREGRINE_CUDA_EMULATION)
#define PEREGRINE_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(::peregrine::cuda_emulation::dynamic_shared())
#else
#define PEREGRINE_DYNAMIC_SHARED(T, name) \
  extern __shared__ __align__(16) unsigned char peregrine_dynamic_shared_[]; \
  T* name = reinterpret_cast<T*>(peregrine_dynamic_shared_)
#endif

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

}  // namespace peregrine::cuda
