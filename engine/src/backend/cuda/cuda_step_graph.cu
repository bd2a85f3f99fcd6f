// Capture, update and launch of step graphs (cuda_step_graph.h).
#include "backend/cuda/cuda_step_graph.h"

#include "backend/cuda/cuda_common.cuh"

namespace peregrine::cuda {

StepGraph::~StepGraph() {
  abort();
  for (auto& [shape, exec] : execs_) cudaGraphExecDestroy(exec);
}

bool StepGraph::begin(uint64_t shape_key) {
  if (capturing_) throw Error("StepGraph::begin: a step is already being captured");
  // Relaxed: the staging ring may wait on events recorded before the capture began.
  PEREGRINE_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed));
  capturing_ = true;
  shape_ = shape_key;
  return true;
}

void StepGraph::end_and_launch() {
  if (!capturing_) throw Error("StepGraph::end_and_launch: no capture in progress");
  capturing_ = false;
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream_, &graph);
  if (ended != cudaSuccess || graph == nullptr) {
    cudaGetLastError();  // clear the sticky capture error
    if (graph) cudaGraphDestroy(graph);
    ++stats_.aborted;
    throw Error(cat("cuda backend: the CUDA graph capture of a step failed (", cudaGetErrorString(ended),
                    "): an operation inside the step waited for the device or read its memory, which a "
                    "captured step must not do (a bug); the step did not run"));
  }
  ++stats_.captures;
  cudaGraphExec_t& exec = execs_[shape_];
  bool updated = false;
  if (exec) {
    cudaGraphExecUpdateResultInfo info{};
    updated = cudaGraphExecUpdate(exec, graph, &info) == cudaSuccess;
    if (!updated) {
      cudaGetLastError();
      cudaGraphExecDestroy(exec);
      exec = nullptr;
    }
  }
  if (updated) {
    ++stats_.updates;
  } else {
    const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
    if (made != cudaSuccess) {
      cudaGraphDestroy(graph);
      execs_.erase(shape_);
      throw_cuda_error(made, "cudaGraphInstantiate", __FILE__, __LINE__);
    }
    ++stats_.instantiations;
  }
  cudaGraphDestroy(graph);
  PEREGRINE_CUDA_CHECK(cudaGraphLaunch(exec, stream_));
  ++stats_.launches;
}

void StepGraph::abort() noexcept {
  if (!capturing_) return;
  capturing_ = false;
  cudaGraph_t graph = nullptr;
  cudaStreamEndCapture(stream_, &graph);
  if (graph) cudaGraphDestroy(graph);
  cudaGetLastError();
  ++stats_.aborted;
}

}  // namespace peregrine::cuda
