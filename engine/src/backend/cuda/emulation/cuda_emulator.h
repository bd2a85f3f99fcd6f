// Internals shared by the CUDA emulator's files (not included by the backend's sources).
//
// Model: one device, whose "execution" happens on the host thread that reaches a synchronising
// call. Each stream holds a queue of operations (kernel launches, copies, fills, cuBLAS calls,
// event records) that run in order only when something waits for them; a stream that captures
// records them into its graph instead. One mutex serialises every API call and all execution.
#pragma once

#include <cuda_runtime.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace peregrine::cuda_emulation {

// One queued (or captured) operation. `run` throws std::exception with a message on failure.
struct Operation {
  enum class Kind { Kernel, Copy, Fill, Gemm, EventRecord, Wait } kind = Kind::Copy;
  std::string what;  // for messages: "kernel add_kernel", "cudaMemcpyAsync device → device" ...
  // Kernels only: what cudaGraphExecUpdate compares.
  const void* kernel = nullptr;
  dim3 grid, block;
  size_t shared_bytes = 0;
  std::function<void()> run;
};

struct KernelLaunch {
  const void* kernel;
  dim3 grid, block;
  size_t shared_bytes;
  const std::function<void()>* body;
};

std::recursive_mutex& api_mutex();

template <class... Args>
std::string cat_text(const Args&... args) {
  std::ostringstream s;
  (s << ... << args);
  return s.str();
}

}  // namespace peregrine::cuda_emulation

struct CUstream_st {
  unsigned flags = 0;
  std::deque<peregrine::cuda_emulation::Operation> queue;
  uint64_t issued = 0, completed = 0;  // operations ever queued / run (sequence numbers)
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  cudaStreamCaptureMode capture_mode = cudaStreamCaptureModeGlobal;
  std::thread::id capture_thread;
  CUgraph_st* graph = nullptr;
};

struct CUevent_st {
  unsigned flags = 0;
  CUstream_st* stream = nullptr;
  uint64_t sequence = 0;  // the record operation's sequence number in `stream`
  bool recorded = false, captured = false, timed = false;
  std::chrono::steady_clock::time_point when;
};

struct CUgraph_st {
  std::vector<peregrine::cuda_emulation::Operation> ops;
};
struct CUgraphExec_st {
  std::vector<peregrine::cuda_emulation::Operation> ops;
};

namespace peregrine::cuda_emulation {

struct Allocation {
  uint64_t bytes;
  void* mapping;
  size_t mapping_bytes;
};

struct State {
  CUstream_st legacy;                      // the default stream (also cudaStreamLegacy / PerThread)
  std::set<CUstream_st*> streams;          // created streams
  std::set<CUevent_st*> events;
  std::map<uintptr_t, Allocation> device;  // by pointer
  std::map<uintptr_t, uint64_t> pinned;    // by pointer: bytes
  std::map<const void*, int> max_dynamic_shared;
  uint64_t device_bytes = 0;
  cudaError_t last_error = cudaSuccess;
  std::map<cudaError_t, std::string> details;
  int current_device = 0;
};
State& state();

// cuda_emulator_runtime.cpp: the queue machinery the API files share.
CUstream_st* stream_of(cudaStream_t s);
bool known_stream(cudaStream_t s);
cudaError_t record(cudaError_t e);
cudaError_t flush(CUstream_st* s, uint64_t until);
cudaError_t flush_all();
cudaError_t flush_legacy();
bool any_capture_forbids_sync();
cudaError_t refuse_during_capture(const char* call);
bool is_pinned(const void* p, uint64_t bytes);

// cuda_emulator_threads.cpp: runs every block of the launch, one after another, each thread a
// fiber. Throws std::runtime_error naming the kernel on a deadlock, an unsupported operation or
// an exception out of the kernel body.
void run_kernel(const KernelLaunch& launch);
// The kernel's function name (from the executable's symbol table), or its address.
std::string kernel_name(const void* kernel);

// cuda_emulator_runtime.cpp, for the cuBLAS file.
cudaError_t submit(cudaStream_t stream, Operation op);
// Whether [p, p + bytes) lies inside one live device allocation.
bool device_range_valid(const void* p, uint64_t bytes);
// Records an error for cudaGetLastError, with a detail that cudaGetErrorString appends.
cudaError_t fail(cudaError_t error, const std::string& detail);

}  // namespace peregrine::cuda_emulation
