// CudaBackend::make_op_timer: a pair of CUDA events recorded on the backend's stream, so that a
// profiler measures each operation's device time without synchronising after every one (the host
// waits only when it reads elapsed_ms(), normally once all operations of a step are issued).
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_common.cuh"

namespace peregrine::cuda {
namespace {

class CudaEventTimer final : public OpTimer {
 public:
  explicit CudaEventTimer(cudaStream_t stream) : stream_(stream) {
    PEREGRINE_CUDA_CHECK(cudaEventCreate(&start_));
    const cudaError_t err = cudaEventCreate(&stop_);
    if (err != cudaSuccess) {
      cudaEventDestroy(start_);
      throw_cuda_error(err, "cudaEventCreate(&stop_)", __FILE__, __LINE__);
    }
  }
  ~CudaEventTimer() override {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  CudaEventTimer(const CudaEventTimer&) = delete;
  CudaEventTimer& operator=(const CudaEventTimer&) = delete;

  void start() override { PEREGRINE_CUDA_CHECK(cudaEventRecord(start_, stream_)); }
  void stop() override { PEREGRINE_CUDA_CHECK(cudaEventRecord(stop_, stream_)); }
  double elapsed_ms() override {
    PEREGRINE_CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0.0f;
    PEREGRINE_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    return static_cast<double>(ms);
  }

 private:
  cudaStream_t stream_;
  cudaEvent_t start_ = nullptr;
  cudaEvent_t stop_ = nullptr;
};

}  // namespace

std::unique_ptr<OpTimer> CudaBackend::make_op_timer() { return std::make_unique<CudaEventTimer>(stream_); }

}  // namespace peregrine::cuda
