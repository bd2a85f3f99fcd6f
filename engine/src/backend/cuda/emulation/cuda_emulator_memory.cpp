// The CUDA emulator's device and memory API: one device, allocations and copies.
//
// Device memory is host memory: each cudaMalloc is its own mapping, filled with 0xFF bytes (a NaN
// in every float, so a read of memory nobody wrote shows up in results) and ending at a
// PROT_NONE page (rounded to CUDA's 256-byte alignment), so a kernel that runs past the end of a
// buffer faults instead of reading a neighbour. cudaFree unmaps: later use faults too.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cuda_emulator.h"

using namespace peregrine::cuda_emulation;  // NOLINT: the API below is CUDA's, at global scope

namespace {

constexpr uint64_t kDefaultCapacityMiB = 8 * 1024;
constexpr int kSmCount = 4;
constexpr int kVersion = 12080;  // reported as both driver and runtime: 12.8

uint64_t capacity() {
  static const uint64_t bytes = [] {
    const char* env = std::getenv("PEREGRINE_CUDA_EMULATION_MEMORY_MIB");
    const uint64_t mib = env && *env ? std::strtoull(env, nullptr, 10) : kDefaultCapacityMiB;
    return (mib ? mib : kDefaultCapacityMiB) << 20;
  }();
  return bytes;
}

size_t page_size() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }

uint64_t round_up(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

std::string range_text(const void* p, uint64_t bytes) { return cat_text("[", p, ", ", p, " + ", bytes, ")"); }

cudaMemcpyKind resolve_kind(void* dst, const void* src, cudaMemcpyKind kind) {
  if (kind != cudaMemcpyDefault) return kind;
  const bool d = device_range_valid(dst, 1), s = device_range_valid(src, 1);
  return d ? (s ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
           : (s ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
}

// A copy of `rows` rows of `width` bytes (pitches apart), on `stream`, with CUDA's host-memory
// rules: a pageable source is read now; a pageable destination is written once the stream has
// run up to the copy (the call waits); pinned memory is read / written when the copy runs.
cudaError_t copy_rows(const char* call, void* dst, size_t dpitch, const void* src, size_t spitch, size_t width,
                      size_t rows, cudaMemcpyKind kind, cudaStream_t stream) {
  std::lock_guard lock(api_mutex());
  if (width == 0 || rows == 0) return cudaSuccess;
  if (!known_stream(stream)) return fail(cudaErrorInvalidResourceHandle, cat_text(call, ": unknown stream"));
  kind = resolve_kind(dst, src, kind);
  const uint64_t dst_extent = (rows - 1) * dpitch + width, src_extent = (rows - 1) * spitch + width;
  const bool dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (dst_device && !device_range_valid(dst, dst_extent))
    return fail(cudaErrorInvalidValue, cat_text(call, ": destination ", range_text(dst, dst_extent),
                                                " is not inside one device allocation"));
  if (src_device && !device_range_valid(src, src_extent))
    return fail(cudaErrorInvalidValue,
                cat_text(call, ": source ", range_text(src, src_extent), " is not inside one device allocation"));
  CUstream_st* s = stream_of(stream);
  const bool capturing = s->capture == cudaStreamCaptureStatusActive;
  auto* d = static_cast<unsigned char*>(dst);
  const auto* from = static_cast<const unsigned char*>(src);
  Operation op;
  op.kind = Operation::Kind::Copy;
  op.what = call;
  if (!src_device && !is_pinned(src, src_extent)) {
    if (capturing) return refuse_during_capture(cat_text(call, " from pageable host memory").c_str());
    // Pageable source: CUDA stages it before returning, so the caller may reuse it at once.
    auto snapshot = std::make_shared<std::vector<unsigned char>>(rows * width);
    for (size_t r = 0; r < rows; ++r) std::memcpy(snapshot->data() + r * width, from + r * spitch, width);
    op.run = [d, dpitch, width, rows, snapshot] {
      for (size_t r = 0; r < rows; ++r) std::memcpy(d + r * dpitch, snapshot->data() + r * width, width);
    };
  } else {
    op.run = [d, dpitch, from, spitch, width, rows] {
      for (size_t r = 0; r < rows; ++r) std::memmove(d + r * dpitch, from + r * spitch, width);
    };
  }
  if (!dst_device && !is_pinned(dst, dst_extent)) {
    // Pageable destination: the call returns once the data is there.
    if (capturing) return refuse_during_capture(cat_text(call, " to pageable host memory").c_str());
    const cudaError_t queued = submit(stream, std::move(op));
    if (queued != cudaSuccess) return queued;
    return flush(s, s->issued);
  }
  return submit(stream, std::move(op));
}

cudaError_t fill(const char* call, void* dst, int value, size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return cudaSuccess;
  if (!device_range_valid(dst, bytes))
    return fail(cudaErrorInvalidValue,
                cat_text(call, ": ", range_text(dst, bytes), " is not inside one device allocation"));
  if (!known_stream(stream)) return fail(cudaErrorInvalidResourceHandle, cat_text(call, ": unknown stream"));
  Operation op;
  op.kind = Operation::Kind::Fill;
  op.what = call;
  op.run = [dst, value, bytes] { std::memset(dst, value, bytes); };
  return submit(stream, std::move(op));
}

}  // namespace

// ---- device ----

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  std::lock_guard lock(api_mutex());
  if (device != 0) return fail(cudaErrorInvalidDevice, cat_text("device ", device, " (the emulator has device 0)"));
  state().current_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return record(cudaErrorInvalidDevice);
  std::memset(prop, 0, sizeof *prop);
  std::strncpy(prop->name, "Peregrine CUDA emulator (host)", sizeof prop->name - 1);
  prop->totalGlobalMem = capacity();
  prop->sharedMemPerBlock = 48 * 1024;
  prop->sharedMemPerBlockOptin = 227 * 1024;
  prop->regsPerBlock = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 0x7FFFFFFF;
  prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
  prop->clockRate = 1000000;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = kSmCount;
  prop->l2CacheSize = 4 << 20;
  prop->maxThreadsPerMultiProcessor = 2048;
  prop->memoryBusWidth = 256;
  prop->memoryClockRate = 1000000;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return record(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = 48 * 1024; return cudaSuccess;
    case cudaDevAttrWarpSize: *value = 32; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *value = kSmCount; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
    case cudaDevAttrL2CacheSize: *value = 4 << 20; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = 227 * 1024; return cudaSuccess;
  }
  return record(cudaErrorInvalidValue);
}

cudaError_t cudaDriverGetVersion(int* version) {
  *version = kVersion;
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* version) {
  *version = kVersion;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  std::lock_guard lock(api_mutex());
  if (any_capture_forbids_sync()) return refuse_during_capture("cudaDeviceSynchronize");
  return flush_all();
}

cudaError_t cudaDeviceReset() { return cudaDeviceSynchronize(); }

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  std::lock_guard lock(api_mutex());
  *total_bytes = capacity();
  *free_bytes = capacity() - std::min(capacity(), state().device_bytes);
  return cudaSuccess;
}

// ---- allocation ----

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  std::lock_guard lock(api_mutex());
  *ptr = nullptr;
  if (any_capture_forbids_sync()) return refuse_during_capture("cudaMalloc");
  if (bytes == 0) return cudaSuccess;
  auto& st = state();
  if (bytes > capacity() - std::min(capacity(), st.device_bytes))
    return fail(cudaErrorMemoryAllocation, cat_text("cudaMalloc of ", bytes, " bytes with ",
                                                    capacity() - std::min(capacity(), st.device_bytes),
                                                    " bytes of the emulated device free"));
  const size_t page = page_size();
  const uint64_t body = round_up(bytes, 256);
  const size_t mapping_bytes = round_up(body, page) + page;
  void* m = mmap(nullptr, mapping_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return fail(cudaErrorMemoryAllocation, cat_text("cudaMalloc of ", bytes, " bytes: mmap failed"));
  auto* guard = static_cast<unsigned char*>(m) + mapping_bytes - page;
  mprotect(guard, page, PROT_NONE);
  auto* p = guard - body;
  std::memset(p, 0xFF, body);  // NaN poison: never-written memory reads as NaN
  st.device[reinterpret_cast<uintptr_t>(p)] = {bytes, m, mapping_bytes};
  st.device_bytes += bytes;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  std::lock_guard lock(api_mutex());
  if (!ptr) return cudaSuccess;
  if (any_capture_forbids_sync()) return refuse_during_capture("cudaFree");
  auto& st = state();
  auto it = st.device.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == st.device.end())
    return fail(cudaErrorInvalidValue, cat_text("cudaFree of ", ptr, ", which cudaMalloc did not return (or was freed)"));
  const cudaError_t synced = flush_all();  // cudaFree waits for the device, like a real one
  munmap(it->second.mapping, it->second.mapping_bytes);
  st.device_bytes -= it->second.bytes;
  st.device.erase(it);
  return synced;
}

cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned flags) {
  std::lock_guard lock(api_mutex());
  *ptr = nullptr;
  if (any_capture_forbids_sync()) return refuse_during_capture("cudaHostAlloc");
  void* p = std::aligned_alloc(4096, round_up(std::max<size_t>(bytes, 1), 4096));
  if (!p) return fail(cudaErrorMemoryAllocation, cat_text("cudaHostAlloc of ", bytes, " bytes"));
  state().pinned[reinterpret_cast<uintptr_t>(p)] = bytes;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) { return cudaHostAlloc(ptr, bytes, cudaHostAllocDefault); }

cudaError_t cudaFreeHost(void* ptr) {
  std::lock_guard lock(api_mutex());
  if (!ptr) return cudaSuccess;
  if (any_capture_forbids_sync()) return refuse_during_capture("cudaFreeHost");
  auto& st = state();
  auto it = st.pinned.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == st.pinned.end())
    return fail(cudaErrorInvalidValue, cat_text("cudaFreeHost of ", ptr, ", which cudaMallocHost did not return"));
  const cudaError_t synced = flush_all();  // queued copies may still read it
  std::free(ptr);
  st.pinned.erase(it);
  return synced;
}

// ---- copies and fills ----

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  return copy_rows("cudaMemcpyAsync", dst, bytes, src, bytes, bytes, 1, kind, stream);
}

cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t stream) {
  if (width > dpitch || width > spitch) return record(cudaErrorInvalidValue);
  return copy_rows("cudaMemcpy2DAsync", dst, dpitch, src, spitch, width, height, kind, stream);
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  std::lock_guard lock(api_mutex());
  if (any_capture_forbids_sync()) return refuse_during_capture("cudaMemcpy");
  const cudaError_t queued = copy_rows("cudaMemcpy", dst, bytes, src, bytes, bytes, 1, kind, nullptr);
  if (queued != cudaSuccess) return queued;
  return flush_legacy();
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
  std::lock_guard lock(api_mutex());
  return fill("cudaMemsetAsync", dst, value, bytes, stream);
}

cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  std::lock_guard lock(api_mutex());
  if (any_capture_forbids_sync()) return refuse_during_capture("cudaMemset");
  const cudaError_t queued = fill("cudaMemset", dst, value, bytes, nullptr);
  if (queued != cudaSuccess) return queued;
  return flush_legacy();
}
