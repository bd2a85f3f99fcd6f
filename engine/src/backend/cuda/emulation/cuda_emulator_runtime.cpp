// The CUDA emulator's runtime API: one emulated device, lazy in-order streams, events, memory
// and graph capture (docs/cuda.md, "Running the CUDA code without a GPU").
//
// Nothing runs when it is issued: operations wait in their stream's queue until a synchronising
// call needs them (stream / event / device synchronisation, synchronous copies, cudaFree). So a
// host write into a pinned buffer that a queued copy has not read yet changes what the copy
// reads, exactly the race a GPU would have. Copies from pageable host memory snapshot the source
// at the call, and copies into pageable memory wait for the stream: CUDA's own rules for them.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cuda_emulator.h"
#include "peregrine/log.h"

namespace peregrine::cuda_emulation {
State& state() {
  static State* s = new State();  // never destroyed: API calls may come from static destructors
  return *s;
}

namespace {
constexpr size_t kDefaultSharedLimit = 48 * 1024;
constexpr size_t kSharedOptinLimit = 227 * 1024;
}  // namespace

CUstream_st* stream_of(cudaStream_t s) {
  if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return &state().legacy;
  return s;
}

bool known_stream(cudaStream_t s) {
  return s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread || state().streams.count(s) > 0;
}

cudaError_t record(cudaError_t e) {
  if (e != cudaSuccess) state().last_error = e;
  return e;
}

// Runs `s`'s queue up to and including sequence number `until`. A failing operation drops the
// rest of the queue (as a faulted GPU context would not run it) and the failure is reported.
cudaError_t flush(CUstream_st* s, uint64_t until) {
  while (!s->queue.empty() && s->completed < until) {
    Operation op = std::move(s->queue.front());
    s->queue.pop_front();
    ++s->completed;
    try {
      op.run();
    } catch (const std::exception& e) {
      const std::string why = op.what + " failed: " + e.what();
      log::get("cuda")->error("CUDA emulator: {}", why);
      s->queue.clear();
      s->completed = s->issued;
      return fail(cudaErrorLaunchFailure, why);
    }
  }
  return cudaSuccess;
}

bool any_capture_forbids_sync() {
  auto& st = state();
  for (CUstream_st* s : st.streams) {
    // An invalidated capture still forbids them until cudaStreamEndCapture, as in CUDA.
    if (s->capture == cudaStreamCaptureStatusNone) continue;
    if (s->capture_mode == cudaStreamCaptureModeGlobal) return true;
    if (s->capture_mode == cudaStreamCaptureModeThreadLocal && s->capture_thread == std::this_thread::get_id())
      return true;
  }
  return false;
}

// A call CUDA forbids while a stream captures (synchronisation, allocation): the capture is
// invalidated and the call fails, as on a GPU.
cudaError_t refuse_during_capture(const char* call) {
  for (CUstream_st* s : state().streams)
    if (s->capture == cudaStreamCaptureStatusActive) s->capture = cudaStreamCaptureStatusInvalidated;
  return fail(cudaErrorStreamCaptureUnsupported, std::string(call) + " while a stream captures a graph");
}

cudaError_t flush_all() {
  auto& st = state();
  cudaError_t result = flush(&st.legacy, st.legacy.issued);
  for (CUstream_st* s : st.streams) {
    const cudaError_t e = flush(s, s->issued);
    if (result == cudaSuccess) result = e;
  }
  return result;
}

// The legacy default stream waits for (and is waited for by) blocking streams only.
cudaError_t flush_legacy() {
  auto& st = state();
  cudaError_t result = flush(&st.legacy, st.legacy.issued);
  for (CUstream_st* s : st.streams) {
    if (s->flags & cudaStreamNonBlocking) continue;
    const cudaError_t e = flush(s, s->issued);
    if (result == cudaSuccess) result = e;
  }
  return result;
}

bool is_pinned(const void* p, uint64_t bytes) {
  const auto& pinned = state().pinned;
  const auto a = reinterpret_cast<uintptr_t>(p);
  auto it = pinned.upper_bound(a);
  if (it == pinned.begin()) return false;
  --it;
  return a + bytes <= it->first + it->second;
}


std::recursive_mutex& api_mutex() {
  static std::recursive_mutex m;
  return m;
}

bool device_range_valid(const void* p, uint64_t bytes) {
  const auto& device = state().device;
  const auto a = reinterpret_cast<uintptr_t>(p);
  auto it = device.upper_bound(a);
  if (it == device.begin()) return false;
  --it;
  return a < it->first + std::max<uint64_t>(it->second.bytes, 1) && a + bytes <= it->first + it->second.bytes;
}

cudaError_t fail(cudaError_t error, const std::string& detail) {
  state().details[error] = detail;
  return record(error);
}

cudaError_t submit(cudaStream_t stream, Operation op) {
  CUstream_st* s = stream_of(stream);
  if (s->capture == cudaStreamCaptureStatusActive) {
    s->graph->ops.push_back(std::move(op));
    return cudaSuccess;
  }
  if (s->capture == cudaStreamCaptureStatusInvalidated) return record(cudaErrorStreamCaptureInvalidated);
  s->queue.push_back(std::move(op));
  ++s->issued;
  return cudaSuccess;
}

cudaError_t enqueue_launch(const void* kernel, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                           std::function<void()> body) {
  std::lock_guard lock(api_mutex());
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  const std::string name = kernel_name(kernel);
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7FFFFFFFu || grid.y > 65535 || grid.z > 65535 ||
      threads == 0 || threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64)
    return fail(cudaErrorInvalidConfiguration,
                cat_text("kernel ", name, " launched with grid (", grid.x, ",", grid.y, ",", grid.z, ") block (",
                         block.x, ",", block.y, ",", block.z, ")"));
  auto limit = state().max_dynamic_shared.find(kernel);
  const size_t shared_limit = limit != state().max_dynamic_shared.end() ? static_cast<size_t>(limit->second)
                                                                        : kDefaultSharedLimit;
  if (shared_bytes > shared_limit)
    return fail(cudaErrorInvalidValue, cat_text("kernel ", name, " launched with ", shared_bytes,
                                                " bytes of dynamic shared memory (limit ", shared_limit,
                                                "; more needs cudaFuncSetAttribute)"));
  if (!known_stream(stream)) return fail(cudaErrorInvalidResourceHandle, "kernel launched on an unknown stream");
  Operation op;
  op.kind = Operation::Kind::Kernel;
  op.what = "kernel " + name;
  op.kernel = kernel;
  op.grid = grid;
  op.block = block;
  op.shared_bytes = shared_bytes;
  auto shared_body = std::make_shared<std::function<void()>>(std::move(body));
  op.run = [kernel, grid, block, shared_bytes, shared_body] {
    run_kernel({kernel, grid, block, shared_bytes, shared_body.get()});
  };
  return submit(stream, std::move(op));
}

cudaError_t set_max_dynamic_shared(const void* kernel, int bytes) {
  std::lock_guard lock(api_mutex());
  if (bytes < 0 || static_cast<size_t>(bytes) > kSharedOptinLimit)
    return fail(cudaErrorInvalidValue, cat_text("cudaFuncSetAttribute: ", bytes, " bytes of dynamic shared memory"));
  state().max_dynamic_shared[kernel] = bytes;
  return cudaSuccess;
}

}  // namespace peregrine::cuda_emulation

using namespace peregrine::cuda_emulation;  // NOLINT: the API below is CUDA's, at global scope

// ---- errors ----

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
#define PEREGRINE_ERROR_NAME(e) \
  case e: return #e;
    PEREGRINE_ERROR_NAME(cudaSuccess)
    PEREGRINE_ERROR_NAME(cudaErrorInvalidValue)
    PEREGRINE_ERROR_NAME(cudaErrorMemoryAllocation)
    PEREGRINE_ERROR_NAME(cudaErrorInitializationError)
    PEREGRINE_ERROR_NAME(cudaErrorInvalidConfiguration)
    PEREGRINE_ERROR_NAME(cudaErrorInvalidDevicePointer)
    PEREGRINE_ERROR_NAME(cudaErrorInvalidMemcpyDirection)
    PEREGRINE_ERROR_NAME(cudaErrorNoDevice)
    PEREGRINE_ERROR_NAME(cudaErrorInvalidDevice)
    PEREGRINE_ERROR_NAME(cudaErrorInvalidResourceHandle)
    PEREGRINE_ERROR_NAME(cudaErrorIllegalState)
    PEREGRINE_ERROR_NAME(cudaErrorNotReady)
    PEREGRINE_ERROR_NAME(cudaErrorLaunchFailure)
    PEREGRINE_ERROR_NAME(cudaErrorNotSupported)
    PEREGRINE_ERROR_NAME(cudaErrorStreamCaptureUnsupported)
    PEREGRINE_ERROR_NAME(cudaErrorStreamCaptureInvalidated)
    PEREGRINE_ERROR_NAME(cudaErrorStreamCaptureUnmatched)
    PEREGRINE_ERROR_NAME(cudaErrorStreamCaptureImplicit)
    PEREGRINE_ERROR_NAME(cudaErrorCapturedEvent)
    PEREGRINE_ERROR_NAME(cudaErrorGraphExecUpdateFailure)
    PEREGRINE_ERROR_NAME(cudaErrorUnknown)
#undef PEREGRINE_ERROR_NAME
  }
  return "cudaErrorUnknown";
}

namespace {
const char* base_error_string(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnmatched: return "capture was not initiated in this stream";
    case cudaErrorStreamCaptureImplicit: return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorCapturedEvent: return "operation not permitted on an event last recorded in a capturing stream";
    case cudaErrorGraphExecUpdateFailure: return "the graph update was not performed because it included changes which violated constraints specific to instantiated graph update";
    case cudaErrorUnknown: return "unknown error";
  }
  return "unknown error";
}
}  // namespace

const char* cudaGetErrorString(cudaError_t error) {
  std::lock_guard lock(api_mutex());
  auto& details = state().details;
  auto it = details.find(error);
  if (it == details.end() || it->second.empty()) return base_error_string(error);
  // Kept per error code, so the pointer stays valid until the next failure with this code.
  static std::map<cudaError_t, std::string> texts;
  texts[error] = std::string(base_error_string(error)) + " (CUDA emulator: " + it->second + ")";
  return texts[error].c_str();
}

cudaError_t cudaGetLastError() {
  std::lock_guard lock(api_mutex());
  const cudaError_t e = state().last_error;
  state().last_error = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() {
  std::lock_guard lock(api_mutex());
  return state().last_error;
}
