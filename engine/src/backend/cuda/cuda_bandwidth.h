// A reference for how fast the device can read memory: the roofline the GEMV kernels are measured
// against (tests/engine/bench_cuda_matmul.cpp). Plain C++ header.
#pragma once

#include <cstdint>

namespace peregrine::cuda {

// Read bandwidth of the current CUDA device in GB/s (1e9 bytes per second): the best of `repeats`
// passes of a kernel that reads `bytes` of device memory once with 16-byte loads (a buffer much
// larger than the L2 cache, so the reads come from DRAM). Allocates and frees its own buffer;
// throws peregrine::Error when a CUDA call fails.
double measure_read_bandwidth_gbs(uint64_t bytes = 1ull << 30, int repeats = 10);

}  // namespace peregrine::cuda
