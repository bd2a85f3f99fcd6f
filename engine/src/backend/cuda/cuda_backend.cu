// The CUDA backend's device setup, memory, weight placement, scratch and staging, and the
// process-wide entry points (cuda_device_count, make_cuda_backend).
//
// Every copy and kernel goes to the backend's one non-blocking stream, so work runs in issue
// order without the host waiting. The host waits (cudaStreamSynchronize) only where host memory
// is involved and must be valid or reusable on return: upload, download and place_weights;
// stage() waits only for the one earlier copy out of the pinned buffer it is about to reuse.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <sstream>
#include <string>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_common.cuh"
#include "peregrine/error.h"

namespace peregrine::cuda {

void log_device_info(const DeviceInfo& info);  // cuda_device_log.cpp: spdlog does not compile under nvcc
bool tf32_prefill_from_environment();            // cuda_device_log.cpp
bool step_graphs_from_environment();             // cuda_step_capture.cu

namespace {

// cudaMalloc(0) gives no pointer, but allocate(0) must return a unique one; 256 bytes is also
// the alignment the contract promises (cudaMalloc aligns to at least that).
constexpr uint64_t kMinAllocation = 256;
// Scratch and staging grow in steps of at least a quarter, rounded to this granularity, so a
// slowly growing batch size does not reallocate (and synchronise the device) on every call.
constexpr uint64_t kGrowGranularity = 64 * 1024;

uint64_t grown_size(uint64_t old_bytes, uint64_t wanted) {
  const uint64_t target = std::max(wanted, old_bytes + old_bytes / 4);
  return (target + kGrowGranularity - 1) / kGrowGranularity * kGrowGranularity;
}

uint64_t device_free_bytes() {
  size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return free_bytes;
}

// cudaMalloc that throws a peregrine::Error with the numbers (and `what`) when memory runs out.
void* device_malloc(uint64_t bytes, const std::string& what) {
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, std::max(bytes, kMinAllocation));
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear it, so the next call does not report it again
    throw Error(cat("cuda backend: out of device memory allocating ", bytes, " bytes for ", what, " (",
                    device_free_bytes(), " bytes free)"));
  }
  if (err != cudaSuccess) throw_cuda_error(err, "cudaMalloc", __FILE__, __LINE__);
  return p;
}

}  // namespace

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  cudaGetLastError();  // clear a non-sticky error so later calls are not blamed for it
  throw Error(cat("cuda backend: ", call, " failed at ", file, ":", line, ": ", cudaGetErrorString(err), " (",
                  cudaGetErrorName(err), ")"));
}

CudaBackend::CudaBackend(int device) {
  PEREGRINE_CUDA_CHECK(cudaSetDevice(device));
  cudaDeviceProp props{};
  PEREGRINE_CUDA_CHECK(cudaGetDeviceProperties(&props, device));
  info_.device = device;
  info_.name = props.name;
  info_.cc_major = props.major;
  info_.cc_minor = props.minor;
  info_.sm_count = props.multiProcessorCount;
  size_t free_bytes = 0, total_bytes = 0;
  PEREGRINE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  info_.free_memory = free_bytes;
  info_.total_memory = total_bytes;
  PEREGRINE_CUDA_CHECK(cudaDriverGetVersion(&info_.driver_version));
  PEREGRINE_CUDA_CHECK(cudaRuntimeGetVersion(&info_.runtime_version));
  // Non-blocking: the stream does not serialise with the legacy default stream, which other
  // libraries in the process may use.
  PEREGRINE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));

  log_device_info(info_);
  tf32_prefill_ = tf32_prefill_from_environment();
  graphs_enabled_ = step_graphs_from_environment();
  step_graph_ = std::make_unique<StepGraph>(stream_);
}

CudaBackend::~CudaBackend() {
  // Errors are ignored here: a destructor cannot report them, and freeing is all that is left.
  abort_step_capture();  // a capture left open cannot be waited for
  cudaStreamSynchronize(stream_);
  release_capture_resources();
  if (cublas_) cublasDestroy(cublas_);
  for (void* block : weight_blocks_) cudaFree(block);
  for (Buffer& b : scratch_) cudaFree(b.ptr);
  for (StagingSlot& s : staging_) free_staging(s);
  cudaStreamDestroy(stream_);
  cudaGetLastError();
}

// ---- memory ----

void* CudaBackend::allocate(uint64_t bytes) {
  void* p = device_malloc(bytes, "a backend buffer");
  // Zero-filled, as the contract promises; ordered before any later use on the stream.
  const cudaError_t err = cudaMemsetAsync(p, 0, std::max(bytes, kMinAllocation), stream_);
  if (err != cudaSuccess) {
    cudaFree(p);
    throw_cuda_error(err, "cudaMemsetAsync", __FILE__, __LINE__);
  }
  return p;
}

void CudaBackend::release(void* p) noexcept {
  // cudaFree waits for work still using the memory, so releasing right after an op is safe.
  if (p && cudaFree(p) != cudaSuccess) cudaGetLastError();
}

void CudaBackend::upload(void* dst, const void* host_src, uint64_t bytes) {
  if (bytes == 0) return;
  if (capturing()) {  // recorded in the step's graph: the bytes go through a capture arena
    capture_copy(host_src, bytes, dst);
    return;
  }
  // Waiting makes the call safe for any host buffer, pinned or pageable, that the caller frees
  // or overwrites right after return. Uploads are rare on the hot path (stage() serves that).
  PEREGRINE_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, stream_));
  PEREGRINE_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::download(void* host_dst, const void* src, uint64_t bytes) {
  refuse_while_capturing("download");
  if (bytes == 0) return;
  PEREGRINE_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
  PEREGRINE_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::copy(void* dst, const void* src, uint64_t bytes) {
  if (bytes == 0 || dst == src) return;
  PEREGRINE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
}

void CudaBackend::fill_zero(void* dst, uint64_t bytes) {
  if (bytes == 0) return;
  PEREGRINE_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, stream_));
}

const uint8_t* CudaBackend::place_weights(const uint8_t* host, uint64_t bytes, std::string_view name) {
  void* p =
      device_malloc(bytes, cat("weights '", name, "' (", weight_bytes_, " bytes of weights already on the device)"));
  weight_blocks_.push_back(p);  // owned from here on, freed by the destructor even if the copy fails
  weight_bytes_ += bytes;
  upload(p, host, bytes);
  return static_cast<const uint8_t*>(p);
}

void CudaBackend::synchronize() {
  refuse_while_capturing("synchronize");
  PEREGRINE_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

std::optional<uint64_t> CudaBackend::free_memory() const {
  size_t free_bytes = 0, total_bytes = 0;
  PEREGRINE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return free_bytes;
}

// ---- scratch, staging, cuBLAS ----

void* CudaBackend::scratch(Scratch slot, uint64_t bytes) {
  Buffer& b = scratch_[static_cast<int>(slot)];
  if (b.bytes < bytes) {
    const uint64_t size = grown_size(b.bytes, bytes);
    if (capturing()) {
      // Operations recorded earlier in the step may read the old buffer when the graph runs.
      if (b.ptr) deferred_frees_.push_back(b.ptr);
    } else {
      // cudaFree waits for kernels still reading the old buffer.
      PEREGRINE_CUDA_CHECK(cudaFree(b.ptr));
    }
    b = {};
    b.ptr = device_malloc(size, "operation scratch");
    b.bytes = size;
  }
  return b.ptr;
}

const void* CudaBackend::stage(Staging which, const void* host, uint64_t bytes) {
  StagingSlot& slot = staging_[static_cast<int>(which)];
  if (bytes == 0) return slot.device;
  // A captured step's copies run when its graph does: they use a capture arena, and the ring,
  // its events and its mirror stay as they were.
  if (capturing()) return capture_copy(host, bytes, nullptr);
  // The mirror holds what the device buffer holds once the copies issued so far have run; any
  // kernel issued later runs after them. So when it already starts with these bytes there is
  // nothing to copy: decoding stages the same positions for every attention layer and the same
  // row list for every expert of a one-token step.
  if (slot.capacity >= bytes && std::memcmp(slot.mirror.data(), host, bytes) == 0) return slot.device;
  if (slot.capacity < bytes) grow_staging(slot, bytes);
  const int i = slot.next;
  slot.next = (slot.next + 1) % kStagingRing;
  // This pinned buffer fed a copy kStagingRing stagings ago: wait for that copy only (usually long
  // done), never for the whole stream, so the host keeps running ahead of the device.
  if (slot.pending[i]) PEREGRINE_CUDA_CHECK(cudaEventSynchronize(slot.copied[i]));
  std::memcpy(slot.pinned[i], host, bytes);
  PEREGRINE_CUDA_CHECK(cudaMemcpyAsync(slot.device, slot.pinned[i], bytes, cudaMemcpyHostToDevice, stream_));
  PEREGRINE_CUDA_CHECK(cudaEventRecord(slot.copied[i], stream_));
  slot.pending[i] = true;
  std::memcpy(slot.mirror.data(), host, bytes);
  return slot.device;
}

void CudaBackend::grow_staging(StagingSlot& slot, uint64_t bytes) {
  // Kernels and copies still using the old buffers must finish before they are freed.
  PEREGRINE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  const uint64_t size = grown_size(slot.capacity, bytes);
  free_staging(slot);
  slot.device = device_malloc(size, "staging");
  for (int i = 0; i < kStagingRing; ++i) {
    PEREGRINE_CUDA_CHECK(cudaMallocHost(&slot.pinned[i], size));
    PEREGRINE_CUDA_CHECK(cudaEventCreateWithFlags(&slot.copied[i], cudaEventDisableTiming));
  }
  PEREGRINE_CUDA_CHECK(cudaMemsetAsync(slot.device, 0, size, stream_));
  slot.mirror.assign(size, 0);  // the device buffer is zeroed, in stream order, before any copy into it
  slot.capacity = size;         // last: after a failure above the slot stays empty and is regrown
}

void CudaBackend::free_staging(StagingSlot& slot) noexcept {
  // Callers have synchronised the stream (or are tearing the backend down after doing so).
  cudaFree(slot.device);
  for (int i = 0; i < kStagingRing; ++i) {
    if (slot.pinned[i]) cudaFreeHost(slot.pinned[i]);
    if (slot.copied[i]) cudaEventDestroy(slot.copied[i]);
    slot.pinned[i] = nullptr;
    slot.copied[i] = nullptr;
    slot.pending[i] = false;
  }
  slot.device = nullptr;
  slot.capacity = 0;
  slot.next = 0;
  slot.mirror.clear();
  cudaGetLastError();
}

cublasHandle_t CudaBackend::cublas() {
  if (!cublas_) {
    cublasHandle_t handle = nullptr;
    const cublasStatus_t status = cublasCreate(&handle);
    if (status != CUBLAS_STATUS_SUCCESS)
      throw Error(cat("cuda backend: cublasCreate failed: ", cublasGetStatusString(status)));
    const cublasStatus_t set = cublasSetStream(handle, stream_);
    if (set != CUBLAS_STATUS_SUCCESS) {
      cublasDestroy(handle);
      throw Error(cat("cuda backend: cublasSetStream failed: ", cublasGetStatusString(set)));
    }
    cublas_ = handle;
  }
  return cublas_;
}

}  // namespace peregrine::cuda

namespace peregrine {

int cuda_device_count() {
  // Asked once: the answer does not change while the process runs, and the first query (driver
  // initialisation) is slow.
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // no driver, no device, or a driver older than the runtime
      return 0;
    }
    return n;
  }();
  return count;
}

bool cuda_backend_compiled() { return true; }

std::unique_ptr<Backend> make_cuda_backend(int device) {
  const int count = cuda_device_count();
  if (count == 0)
    throw Error(
        "cuda backend: no usable CUDA device (no NVIDIA driver, no device, or a driver too old for "
        "this build's CUDA runtime)");
  if (device < 0 || device >= count)
    throw Error(cuda::cat("cuda backend: there is no CUDA device ", device, " (this machine has ", count, ": 0..",
                          count - 1, ")"));
  return std::make_unique<cuda::CudaBackend>(device);
}

}  // namespace peregrine
