// The CUDA emulator (engine/src/backend/cuda/emulation) on kernels written for these tests:
// warp operations and barriers give CUDA's results, a kernel whose threads wait at different
// barriers is reported as a deadlock, streams run lazily and in order with CUDA's rules for
// pinned and pageable host memory, allocations start as NaN bytes, and a captured graph replays
// against the device buffers' current contents.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_common.cuh"

namespace peregrine::test {
namespace {

using cuda::launch_kernel;

// out[lane] for each warp operation, lane = threadIdx.x of a 64-thread block (two warps).
__global__ void warp_ops_kernel(const int* in, int* xor_out, int* down_out, int* up_out, int* idx_out,
                                unsigned* ballot_out) {
  const int t = threadIdx.x, v = in[t];
  xor_out[t] = __shfl_xor_sync(0xffffffffu, v, 5);
  down_out[t] = __shfl_down_sync(0xffffffffu, v, 3);
  up_out[t] = __shfl_up_sync(0xffffffffu, v, 2);
  idx_out[t] = __shfl_sync(0xffffffffu, v, 7);
  ballot_out[t] = __ballot_sync(0xffffffffu, v % 3 == 0);
}

// Thread t writes shared[t]; after the barrier it reads its neighbour's value.
__global__ void barrier_kernel(const float* in, float* out) {
  __shared__ float shared[256];
  const int t = threadIdx.x;
  shared[t] = in[blockIdx.x * blockDim.x + t];
  __syncthreads();
  out[blockIdx.x * blockDim.x + t] = shared[(t + 1) % blockDim.x];
}

// Half a warp waits at __syncthreads, the other half at a full-mask shuffle: neither barrier can
// complete (undefined behaviour on a GPU, a hang at best).
__global__ void deadlock_kernel(float* out) {
  float v = static_cast<float>(threadIdx.x);
  if (threadIdx.x % 32 < 16)
    __syncthreads();
  else
    v = __shfl_xor_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
}

__global__ void affine_kernel(const float* x, float* y, int n, float a, float b) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + b;
}

// Writes one element past the end of `y` from the last thread.
__global__ void overrun_kernel(float* y, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) y[i] = 1.0f;
}

// Each block reads its static and dynamic shared word before writing it (out[2·block], +1), then
// leaves its block index there: a later block that saw an earlier block's value would read it.
__global__ void shared_leftover_kernel(uint32_t* out) {
  __shared__ uint32_t static_word;
  PEREGRINE_DYNAMIC_SHARED(uint32_t, dynamic_word);
  out[2 * blockIdx.x] = static_word;
  out[2 * blockIdx.x + 1] = dynamic_word[0];
  static_word = blockIdx.x;
  dynamic_word[0] = blockIdx.x;
}

class CudaEmulator : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess); }
  void TearDown() override { cudaStreamDestroy(stream); }
  template <class T>
  T* device(size_t n) {
    void* p = nullptr;
    EXPECT_EQ(cudaMalloc(&p, n * sizeof(T)), cudaSuccess);
    allocations.push_back(p);
    return static_cast<T*>(p);
  }
  ~CudaEmulator() override {
    for (void* p : allocations) cudaFree(p);
  }
  cudaStream_t stream = nullptr;
  std::vector<void*> allocations;
};

TEST_F(CudaEmulator, WarpOperationsGiveCudasResults) {
  constexpr int n = 64;
  std::mt19937 rng(11);
  std::vector<int> in(n);
  for (int& v : in) v = static_cast<int>(rng() % 1000) + 1;
  int* d_in = device<int>(n);
  int *xo = device<int>(n), *dn = device<int>(n), *up = device<int>(n), *ix = device<int>(n);
  unsigned* ba = device<unsigned>(n);
  ASSERT_EQ(cudaMemcpy(d_in, in.data(), n * sizeof(int), cudaMemcpyHostToDevice), cudaSuccess);
  launch_kernel(warp_ops_kernel, 1, n, 0, stream, d_in, xo, dn, up, ix, ba);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  std::vector<int> h_xor(n), h_down(n), h_up(n), h_idx(n);
  std::vector<unsigned> h_ballot(n);
  ASSERT_EQ(cudaMemcpy(h_xor.data(), xo, n * sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(h_down.data(), dn, n * sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(h_up.data(), up, n * sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(h_idx.data(), ix, n * sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(h_ballot.data(), ba, n * sizeof(unsigned), cudaMemcpyDeviceToHost), cudaSuccess);
  for (int t = 0; t < n; ++t) {
    const int warp = t / 32 * 32, lane = t % 32;
    unsigned ballot = 0;
    for (int l = 0; l < 32; ++l) ballot |= (in[warp + l] % 3 == 0 ? 1u : 0u) << l;
    EXPECT_EQ(h_xor[t], in[warp + (lane ^ 5)]) << t;
    EXPECT_EQ(h_down[t], lane + 3 < 32 ? in[t + 3] : in[t]) << t;  // past the end: own value
    EXPECT_EQ(h_up[t], lane >= 2 ? in[t - 2] : in[t]) << t;
    EXPECT_EQ(h_idx[t], in[warp + 7]) << t;
    EXPECT_EQ(h_ballot[t], ballot) << t;
  }
}

TEST_F(CudaEmulator, SyncthreadsMakesSharedWritesVisibleInEveryBlock) {
  constexpr int blocks = 3, threads = 256, n = blocks * threads;
  std::vector<float> in(n);
  std::mt19937 rng(5);
  for (float& v : in) v = std::uniform_real_distribution<float>(-4.0f, 4.0f)(rng);
  float *d_in = device<float>(n), *d_out = device<float>(n);
  ASSERT_EQ(cudaMemcpyAsync(d_in, in.data(), n * sizeof(float), cudaMemcpyHostToDevice, stream), cudaSuccess);
  launch_kernel(barrier_kernel, blocks, threads, 0, stream, d_in, d_out);
  std::vector<float> out(n);
  ASSERT_EQ(cudaMemcpyAsync(out.data(), d_out, n * sizeof(float), cudaMemcpyDeviceToHost, stream), cudaSuccess);
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < threads; ++t) EXPECT_EQ(out[b * threads + t], in[b * threads + (t + 1) % threads]);
}

TEST_F(CudaEmulator, ThreadsAtDifferentBarriersAreReportedAsADeadlock) {
  float* out = device<float>(64);
  launch_kernel(deadlock_kernel, 1, 64, 0, stream, out);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);  // a launch error would show at once; this one runs later
  const cudaError_t err = cudaStreamSynchronize(stream);
  EXPECT_EQ(err, cudaErrorLaunchFailure);
  const std::string message = cudaGetErrorString(err);
  EXPECT_NE(message.find("deadlock_kernel"), std::string::npos) << message;
  EXPECT_NE(message.find("deadlocked"), std::string::npos) << message;
  EXPECT_NE(message.find("__syncthreads"), std::string::npos) << message;
  EXPECT_NE(message.find("__shfl_xor_sync"), std::string::npos) << message;
  cudaGetLastError();
  // The stream works again afterwards.
  float* y = device<float>(4);
  launch_kernel(affine_kernel, 1, 32, 0, stream, out, y, 4, 1.0f, 0.0f);
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
}

TEST_F(CudaEmulator, InvalidLaunchesFailAtOnce) {
  float* y = device<float>(4);
  launch_kernel(affine_kernel, 1, 2048, 0, stream, y, y, 4, 1.0f, 0.0f);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  launch_kernel(affine_kernel, 1, 32, 64 * 1024, stream, y, y, 4, 1.0f, 0.0f);  // > 48 KiB, no opt-in
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
}

TEST_F(CudaEmulator, SharedMemoryStartsAsNanBytesInEveryBlock) {
  constexpr unsigned kBlocks = 3;
  uint32_t* out = device<uint32_t>(2 * kBlocks);
  for (int launch = 0; launch < 2; ++launch) {  // the second launch must not see the first's values
    ASSERT_EQ(cudaMemsetAsync(out, 0, 2 * kBlocks * sizeof(uint32_t), stream), cudaSuccess);  // not NaN bytes
    launch_kernel(shared_leftover_kernel, kBlocks, 1, sizeof(uint32_t), stream, out);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    std::vector<uint32_t> words(2 * kBlocks, 0);
    ASSERT_EQ(cudaMemcpy(words.data(), out, words.size() * sizeof(uint32_t), cudaMemcpyDeviceToHost), cudaSuccess);
    for (size_t i = 0; i < words.size(); ++i)
      EXPECT_EQ(words[i], 0xFFFFFFFFu) << "launch " << launch << ", block " << i / 2
                                       << (i % 2 ? " dynamic" : " static");
  }
}

TEST_F(CudaEmulator, AllocationsStartAsNanBytesAndCopiesStayInsideThem) {
  constexpr size_t n = 1000;
  float* d = device<float>(n);
  std::vector<uint32_t> bits(n, 0);
  ASSERT_EQ(cudaMemcpy(bits.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  for (const uint32_t b : bits) EXPECT_EQ(b, 0xFFFFFFFFu);
  EXPECT_EQ(cudaMemcpy(bits.data(), d, (n + 1) * sizeof(float), cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  cudaGetLastError();
  int stray = 0;
  EXPECT_EQ(cudaFree(&stray), cudaErrorInvalidValue);
  cudaGetLastError();
}

// 1024 floats end exactly at the allocation's guard page: the write past the end faults, and the
// emulator names the kernel and the thread before the process dies.
TEST_F(CudaEmulator, AKernelWritingPastABufferDiesNamingTheKernelAndThread) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  float* y = device<float>(1024);
  EXPECT_DEATH(
      {
        launch_kernel(overrun_kernel, 5, 256, 0, stream, y, 1024);
        cudaStreamSynchronize(stream);
      },
      "overrun_kernel, block \\(4,0,0\\), thread \\(0,0,0\\): memory access outside every device allocation");
}

// A copy from pinned memory reads the buffer when the stream reaches it (later host writes show,
// the race a staging ring must avoid); from pageable memory the bytes are taken at the call.
TEST_F(CudaEmulator, PinnedCopiesReadWhenTheStreamRunsPageableOnesAtTheCall) {
  constexpr int n = 8;
  float* pinned = nullptr;
  ASSERT_EQ(cudaMallocHost(&pinned, n * sizeof(float)), cudaSuccess);
  std::vector<float> pageable(n);
  float *d_pinned = device<float>(n), *d_pageable = device<float>(n);
  for (int i = 0; i < n; ++i) pinned[i] = pageable[i] = 1.0f + static_cast<float>(i);
  ASSERT_EQ(cudaMemcpyAsync(d_pinned, pinned, n * sizeof(float), cudaMemcpyHostToDevice, stream), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(d_pageable, pageable.data(), n * sizeof(float), cudaMemcpyHostToDevice, stream), cudaSuccess);
  for (int i = 0; i < n; ++i) pinned[i] = pageable[i] = -7.0f;  // before the stream ran
  std::vector<float> got_pinned(n), got_pageable(n);
  ASSERT_EQ(cudaMemcpyAsync(got_pinned.data(), d_pinned, n * sizeof(float), cudaMemcpyDeviceToHost, stream), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(got_pageable.data(), d_pageable, n * sizeof(float), cudaMemcpyDeviceToHost, stream),
            cudaSuccess);
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(got_pinned[i], -7.0f);
    EXPECT_EQ(got_pageable[i], 1.0f + static_cast<float>(i));
  }
  EXPECT_EQ(cudaFreeHost(pinned), cudaSuccess);
}

TEST_F(CudaEmulator, EventsCompleteInStreamOrder) {
  cudaEvent_t start, stop;
  ASSERT_EQ(cudaEventCreate(&start), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&stop), cudaSuccess);
  float* y = device<float>(32);
  ASSERT_EQ(cudaEventRecord(start, stream), cudaSuccess);
  launch_kernel(affine_kernel, 1, 32, 0, stream, y, y, 32, 0.0f, 3.0f);
  ASSERT_EQ(cudaEventRecord(stop, stream), cudaSuccess);
  float ms = -1.0f;
  EXPECT_EQ(cudaEventElapsedTime(&ms, start, stop), cudaErrorNotReady);  // nothing ran yet
  EXPECT_EQ(cudaEventSynchronize(stop), cudaSuccess);
  EXPECT_EQ(cudaEventElapsedTime(&ms, start, stop), cudaSuccess);
  EXPECT_GE(ms, 0.0f);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}

// Capture y = a·x + b once, replay it after changing x: the replay reads x's new contents.
TEST_F(CudaEmulator, CapturedGraphReplaysAgainstCurrentBufferContents) {
  constexpr int n = 300;
  float *x = device<float>(n), *y = device<float>(n);
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  ASSERT_EQ(cudaStreamIsCapturing(stream, &status), cudaSuccess);
  EXPECT_EQ(status, cudaStreamCaptureStatusActive);
  launch_kernel(affine_kernel, (n + 127) / 128, 128, 0, stream, x, y, n, 2.0f, 0.5f);
  ASSERT_EQ(cudaMemsetAsync(x, 0, n * sizeof(float), stream), cudaSuccess);  // recorded, not run
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  size_t nodes = 0;
  ASSERT_EQ(cudaGraphGetNodes(graph, nullptr, &nodes), cudaSuccess);
  EXPECT_EQ(nodes, 2u);
  std::mt19937 rng(3);
  for (int replay = 0; replay < 3; ++replay) {
    std::vector<float> hx(n), hy(n), hx_after(n);
    for (float& v : hx) v = std::uniform_real_distribution<float>(-10.0f, 10.0f)(rng);
    ASSERT_EQ(cudaMemcpyAsync(x, hx.data(), n * sizeof(float), cudaMemcpyHostToDevice, stream), cudaSuccess);
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaMemcpyAsync(hy.data(), y, n * sizeof(float), cudaMemcpyDeviceToHost, stream), cudaSuccess);
    ASSERT_EQ(cudaMemcpyAsync(hx_after.data(), x, n * sizeof(float), cudaMemcpyDeviceToHost, stream), cudaSuccess);
    for (int i = 0; i < n; ++i) {
      EXPECT_EQ(hy[i], 2.0f * hx[i] + 0.5f) << "replay " << replay << " element " << i;
      EXPECT_EQ(hx_after[i], 0.0f);
    }
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}

TEST_F(CudaEmulator, SynchronisingDuringCaptureInvalidatesIt) {
  float* y = device<float>(32);
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
  launch_kernel(affine_kernel, 1, 32, 0, stream, y, y, 32, 1.0f, 1.0f);
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaErrorStreamCaptureUnsupported);
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, 64), cudaErrorStreamCaptureUnsupported);
  cudaGraph_t graph = nullptr;
  EXPECT_EQ(cudaStreamEndCapture(stream, &graph), cudaErrorStreamCaptureInvalidated);
  EXPECT_EQ(graph, nullptr);
  cudaGetLastError();
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);  // usable again after the capture ended
}

}  // namespace
}  // namespace peregrine::test
