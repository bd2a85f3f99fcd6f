// The CUDA backend's entry points and memory API.
//
// CudaEntryPoints runs everywhere (no device, or a build without the CUDA backend): device
// discovery never throws, bad device indices are refused with peregrine::Error, and the backend
// kind names and the Auto choice behave. CudaMemory needs a device (it skips otherwise):
// zero-filled allocations, copies in every direction, weights, out-of-memory errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "peregrine/error.h"

// The CudaBackend class exists only in builds with the CUDA backend (its tests skip elsewhere).
#ifdef PEREGRINE_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace peregrine::test {
namespace {

TEST(CudaEntryPoints, DeviceCountNeverThrowsAndIsStable) {
  int first = -1;
  EXPECT_NO_THROW(first = cuda_device_count());
  EXPECT_GE(first, 0);
  EXPECT_EQ(cuda_device_count(), first);
}

TEST(CudaEntryPoints, CompiledMatchesTheBuild) {
#ifdef PEREGRINE_HAVE_CUDA
  EXPECT_TRUE(cuda_backend_compiled());
#else
  EXPECT_FALSE(cuda_backend_compiled());
  EXPECT_EQ(cuda_device_count(), 0);
#endif
}

TEST(CudaEntryPoints, DeviceIndexOutOfRangeThrows) {
  const int count = cuda_device_count();
  EXPECT_THROW(make_cuda_backend(count), Error);
  EXPECT_THROW(make_cuda_backend(-1), Error);
  EXPECT_THROW(make_cuda_backend(count + 7), Error);
  if (count == 0) {
    EXPECT_THROW(make_cuda_backend(0), Error);
  }
}

TEST(CudaEntryPoints, ErrorSaysWhy) {
  try {
    make_cuda_backend(cuda_device_count());
    FAIL() << "make_cuda_backend accepted a device index past the last device";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("CUDA"), std::string::npos) << what;
  }
}

TEST(CudaEntryPoints, BackendKindNamesRoundTrip) {
  for (BackendKind kind : {BackendKind::Auto, BackendKind::Cpu, BackendKind::Cuda}) {
    const std::optional<BackendKind> parsed = parse_backend_kind(backend_kind_name(kind));
    ASSERT_TRUE(parsed.has_value()) << backend_kind_name(kind);
    EXPECT_EQ(*parsed, kind);
  }
  EXPECT_EQ(backend_kind_name(BackendKind::Cpu), "cpu");
  EXPECT_EQ(backend_kind_name(BackendKind::Cuda), "cuda");
  EXPECT_EQ(backend_kind_name(BackendKind::Auto), "auto");
  EXPECT_FALSE(parse_backend_kind("gpu").has_value());
  EXPECT_FALSE(parse_backend_kind("").has_value());
  EXPECT_FALSE(parse_backend_kind("CUDA").has_value());
}

TEST(CudaEntryPoints, AutoResolvesToCudaOnlyWithADevice) {
  EXPECT_EQ(resolve_backend_kind(BackendKind::Cpu), BackendKind::Cpu);
  EXPECT_EQ(resolve_backend_kind(BackendKind::Cuda), BackendKind::Cuda);
  EXPECT_EQ(resolve_backend_kind(BackendKind::Auto), cuda_device_count() > 0 ? BackendKind::Cuda : BackendKind::Cpu);
}

// ---- with a device ----

using CudaMemory = CudaTest;

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

#ifdef PEREGRINE_HAVE_CUDA
TEST_F(CudaMemory, DescribesItsDevice) {
  EXPECT_EQ(gpu->name(), "cuda");
  EXPECT_FALSE(gpu->host_memory());
  auto* cuda = dynamic_cast<cuda::CudaBackend*>(gpu.get());
  ASSERT_NE(cuda, nullptr);
  const cuda::DeviceInfo& info = cuda->device_info();
  EXPECT_EQ(info.device, 0);
  EXPECT_FALSE(info.name.empty());
  EXPECT_GE(info.cc_major, 5);
  EXPECT_GT(info.sm_count, 0);
  EXPECT_GT(info.total_memory, 0u);
  EXPECT_LE(info.free_memory, info.total_memory);
  EXPECT_GT(info.driver_version, 0);
  EXPECT_GT(info.runtime_version, 0);
}

#endif  // PEREGRINE_HAVE_CUDA

TEST_F(CudaMemory, AllocationsAreZeroFilledEvenWhenMemoryIsReused) {
  for (int round = 0; round < 3; ++round) {
    const uint64_t bytes = 1000 + 4096 * round;
    void* p = gpu->allocate(bytes);
    ASSERT_NE(p, nullptr);
    std::vector<uint8_t> host(bytes, 0xAB);
    gpu->download(host.data(), p, bytes);
    EXPECT_EQ(std::count(host.begin(), host.end(), 0), static_cast<long>(bytes)) << "round " << round;
    // Dirty it before giving it back, so the next round's allocation may get non-zero memory.
    const std::vector<uint8_t> junk = random_bytes(bytes, round);
    gpu->upload(p, junk.data(), bytes);
    gpu->release(p);
  }
}

TEST_F(CudaMemory, AllocateZeroGivesDistinctUsablePointers) {
  void* a = gpu->allocate(0);
  void* b = gpu->allocate(0);
  EXPECT_NE(a, nullptr);
  EXPECT_NE(b, nullptr);
  EXPECT_NE(a, b);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 256, 0u);
  gpu->release(a);
  gpu->release(b);
  gpu->release(nullptr);  // a no-op, as free(nullptr)
}

TEST_F(CudaMemory, UploadDownloadCopyAndFillZero) {
  const size_t n = (1 << 20) + 13;
  const std::vector<uint8_t> data = random_bytes(n, 1);
  void* a = gpu->allocate(n);
  void* b = gpu->allocate(n);
  gpu->upload(a, data.data(), n);
  // Copy all but the first 100 bytes to the start of b, then zero a window in the middle.
  gpu->copy(b, static_cast<const uint8_t*>(a) + 100, n - 100);
  gpu->fill_zero(static_cast<uint8_t*>(b) + 5000, 3000);
  std::vector<uint8_t> back_a(n), back_b(n);
  gpu->download(back_a.data(), a, n);
  gpu->download(back_b.data(), b, n);
  EXPECT_EQ(back_a, data);
  std::vector<uint8_t> expected(n, 0);
  std::memcpy(expected.data(), data.data() + 100, n - 100);
  std::memset(expected.data() + 5000, 0, 3000);
  EXPECT_EQ(back_b, expected);
  gpu->release(a);
  gpu->release(b);
}

TEST_F(CudaMemory, UploadSourceMayBeFreedRightAfterReturn) {
  const size_t n = 8 << 20;
  const std::vector<uint8_t> reference = random_bytes(n, 2);
  void* p = gpu->allocate(n);
  {
    auto transient = std::make_unique<std::vector<uint8_t>>(reference);
    gpu->upload(p, transient->data(), n);
    std::memset(transient->data(), 0x55, n);  // overwritten, then freed, before anything waits
    transient.reset();
  }
  std::vector<uint8_t> back(n);
  gpu->download(back.data(), p, n);
  EXPECT_EQ(back, reference);
  gpu->release(p);
}

#ifdef PEREGRINE_HAVE_CUDA
TEST_F(CudaMemory, PlacedWeightsAreReadableAndCounted) {
  auto* cuda = dynamic_cast<cuda::CudaBackend*>(gpu.get());
  ASSERT_NE(cuda, nullptr);
  const uint64_t before = cuda->weight_bytes();
  const std::vector<uint8_t> w1 = random_bytes(4096, 3), w2 = random_bytes(77777, 4);
  const uint8_t* d1 = gpu->place_weights(w1.data(), w1.size(), "w1");
  const uint8_t* d2 = gpu->place_weights(w2.data(), w2.size(), "w2");
  EXPECT_NE(d1, w1.data());  // copied to the device, not the host pointer handed back
  EXPECT_NE(d1, d2);
  EXPECT_EQ(cuda->weight_bytes(), before + w1.size() + w2.size());
  std::vector<uint8_t> back1(w1.size()), back2(w2.size());
  gpu->download(back1.data(), d1, w1.size());
  gpu->download(back2.data(), d2, w2.size());
  EXPECT_EQ(back1, w1);
  EXPECT_EQ(back2, w2);
}
#endif  // PEREGRINE_HAVE_CUDA

TEST_F(CudaMemory, OutOfMemoryThrowsWithTheNumbersAndLeavesTheBackendUsable) {
  const uint64_t huge = uint64_t{1} << 50;  // 1 PiB
  try {
    gpu->allocate(huge);
    FAIL() << "a 1 PiB allocation succeeded";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(std::to_string(huge)), std::string::npos) << what;
    EXPECT_NE(what.find("free"), std::string::npos) << what;
  }
  const std::vector<uint8_t> w(1024, 7);
  EXPECT_THROW(gpu->place_weights(w.data(), huge, "too_big"), Error);
  // Still working afterwards.
  const std::vector<float> x = cuda_random(1000, 5);
  BackendArray<float> a = to_backend(*gpu, x);
  gpu->add(a.data(), a.data(), 1000);
  const std::vector<float> doubled = to_host(*gpu, a);
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(doubled[i], 2 * x[i]);
}

TEST_F(CudaMemory, FreeMemoryIsKnownAndShrinksWithAllocations) {
  const std::optional<uint64_t> before = gpu->free_memory();
  ASSERT_TRUE(before.has_value());
  EXPECT_GT(*before, 0u);
  const uint64_t bytes = 512ull << 20;
  ASSERT_GT(*before, 2 * bytes);
  void* p = gpu->allocate(bytes);
  const std::optional<uint64_t> after = gpu->free_memory();
  ASSERT_TRUE(after.has_value());
  EXPECT_LT(*after, *before);
  gpu->release(p);
}

TEST_F(CudaMemory, BackendArrayOwnsAndMoves) {
  BackendArray<float> a(*gpu, 300);
  EXPECT_EQ(a.backend(), gpu.get());
  EXPECT_EQ(a.bytes(), 1200u);
  const std::vector<float> zeros = to_host(*gpu, a);
  EXPECT_EQ(std::count(zeros.begin(), zeros.end(), 0.0f), 300);
  BackendArray<float> b = std::move(a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(b.size(), 300);
  b.reset(*gpu, 5);
  EXPECT_EQ(b.size(), 5);
  EXPECT_NO_THROW(gpu->synchronize());
}

}  // namespace
}  // namespace peregrine::test
