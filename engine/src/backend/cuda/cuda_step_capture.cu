// CudaBackend's side of step graphs (cuda_backend.h, cuda_step_graph.h; docs/cuda.md, "Step
// graphs"): the switch, capture arenas for host→device copies recorded in a graph, scratch
// freed only after the graph that may read it has run, and the calls a captured step refuses.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_common.cuh"
#include "peregrine/error.h"

namespace peregrine::cuda {

namespace {

// Room for what a decode or verify step stages (token embedding rows, MTP hidden rows, positions
// per attention layer): a 27B step of 9 tokens needs about 0.4 MiB. A step that needs more gets
// another chunk (allocated inside the capture, which relaxed capture mode allows).
constexpr uint64_t kArenaChunkBytes = uint64_t{1} << 20;
constexpr uint64_t kCopyAlignment = 256;

void* device_malloc_for_capture(uint64_t bytes) {
  void* p = nullptr;
  PEREGRINE_CUDA_CHECK(cudaMalloc(&p, bytes));
  return p;
}

}  // namespace

bool step_graphs_from_environment() {
  const char* value = std::getenv("PEREGRINE_CUDA_GRAPHS");
  return !(value && std::strcmp(value, "0") == 0);
}

bool CudaBackend::begin_step_capture(uint64_t shape_key) {
  if (!graphs_enabled_) return false;
  if (capturing()) throw Error("cuda backend: begin_step_capture while a step is already being captured");
  CaptureArena& arena = arenas_[arena_];
  if (!arena.launched) PEREGRINE_CUDA_CHECK(cudaEventCreateWithFlags(&arena.launched, cudaEventDisableTiming));
  // The graph that last read this arena must have run before its pinned bytes are rewritten.
  if (arena.pending) PEREGRINE_CUDA_CHECK(cudaEventSynchronize(arena.launched));
  arena.pending = false;
  if (arena.chunks.empty()) {  // outside the capture: the usual case never allocates inside one
    CaptureArena::Chunk c;
    c.bytes = kArenaChunkBytes;
    PEREGRINE_CUDA_CHECK(cudaMallocHost(&c.pinned, c.bytes));
    c.device = device_malloc_for_capture(c.bytes);
    arena.chunks.push_back(c);
  }
  arena.chunk = 0;
  arena.used = 0;
  return step_graph_->begin(shape_key);
}

void CudaBackend::end_step_capture() {
  try {
    step_graph_->end_and_launch();
  } catch (...) {
    // Nothing of the step ran: its arena is free again, its replaced scratch can go.
    for (void* p : deferred_frees_) cudaFree(p);
    deferred_frees_.clear();
    cudaGetLastError();
    throw;
  }
  CaptureArena& arena = arenas_[arena_];
  PEREGRINE_CUDA_CHECK(cudaEventRecord(arena.launched, stream_));
  arena.pending = true;
  arena_ = (arena_ + 1) % kCaptureArenas;
  // cudaFree waits for the device, so for the graph that may still read these buffers.
  for (void* p : deferred_frees_) PEREGRINE_CUDA_CHECK(cudaFree(p));
  deferred_frees_.clear();
}

void CudaBackend::abort_step_capture() noexcept {
  if (!capturing()) return;
  step_graph_->abort();
  for (void* p : deferred_frees_) cudaFree(p);
  deferred_frees_.clear();
  cudaGetLastError();
}

const void* CudaBackend::capture_copy(const void* host, uint64_t bytes, void* device_dst) {
  CaptureArena& arena = arenas_[arena_];
  const uint64_t size = (bytes + kCopyAlignment - 1) / kCopyAlignment * kCopyAlignment;
  while (arena.chunk < arena.chunks.size() && arena.used + size > arena.chunks[arena.chunk].bytes) {
    ++arena.chunk;
    arena.used = 0;
  }
  if (arena.chunk == arena.chunks.size()) {
    CaptureArena::Chunk c;
    c.bytes = std::max(kArenaChunkBytes, size);
    PEREGRINE_CUDA_CHECK(cudaMallocHost(&c.pinned, c.bytes));
    c.device = device_malloc_for_capture(c.bytes);
    arena.chunks.push_back(c);
  }
  const CaptureArena::Chunk& c = arena.chunks[arena.chunk];
  void* pinned = static_cast<uint8_t*>(c.pinned) + arena.used;
  void* dst = device_dst ? device_dst : static_cast<uint8_t*>(c.device) + arena.used;
  arena.used += size;
  std::memcpy(pinned, host, bytes);
  PEREGRINE_CUDA_CHECK(cudaMemcpyAsync(dst, pinned, bytes, cudaMemcpyHostToDevice, stream_));
  return dst;
}

void CudaBackend::refuse_while_capturing(const char* call) const {
  if (!capturing()) return;
  throw Error(cat("cuda backend: ", call, " inside a step captured as a CUDA graph: the step's work has not run "
                  "yet, so nothing in it may wait for the device or read its memory (a bug in the step; the "
                  "capture is discarded)"));
}

void CudaBackend::release_capture_resources() noexcept {
  step_graph_.reset();  // ends a capture still in progress
  for (void* p : deferred_frees_) cudaFree(p);
  deferred_frees_.clear();
  for (CaptureArena& arena : arenas_) {
    for (CaptureArena::Chunk& c : arena.chunks) {
      cudaFreeHost(c.pinned);
      cudaFree(c.device);
    }
    arena.chunks.clear();
    if (arena.launched) cudaEventDestroy(arena.launched);
    arena.launched = nullptr;
    arena.pending = false;
  }
  cudaGetLastError();
}

}  // namespace peregrine::cuda
