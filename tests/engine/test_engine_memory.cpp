// The memory a model and its sequence need is computed and compared with what the backend has
// available before anything is allocated: host RAM (MemAvailable) for the CPU backend, free device
// memory for a device backend. PEREGRINE_AVAILABLE_MEMORY_BYTES stands in for the probe here, so a
// modest context is refused at once without the machine being short of memory.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "emulated_device_backend.h"
#include "peregrine/backend.h"
#include "peregrine/error.h"
#include "peregrine/gguf.h"
#include "peregrine/model.h"
#include "test_engine_util.h"

namespace peregrine {
namespace {

// Sets PEREGRINE_AVAILABLE_MEMORY_BYTES for one test.
class AvailableMemory {
 public:
  explicit AvailableMemory(const std::string& bytes) { setenv(kName, bytes.c_str(), 1); }
  ~AvailableMemory() { unsetenv(kName); }

 private:
  static constexpr const char* kName = "PEREGRINE_AVAILABLE_MEMORY_BYTES";
};

ModelOptions with_context(int64_t context_length) {
  ModelOptions o;
  o.context_length = context_length;
  return o;
}

std::string load_error(const GgufFile& file, const ModelOptions& o, std::unique_ptr<Backend> backend) {
  try {
    auto model = Model::load(file, o, nullptr, std::move(backend));
    model->new_sequence();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// tiny-f32: one full-attention trunk layer and the MTP block, 2 KV heads of 32 values: a context of
// 65536 tokens needs 2 × 65536 × 64 × 4 bytes = 32 MiB of f32 KV cache per layer, 64 MiB in all.
TEST(HostMemoryBudget, ContextBeyondAvailableRamIsRefusedWithBothNumbers) {
  const GgufFile file = GgufFile::open(test::tiny_model_path());
  const AvailableMemory available("16777216");  // 16 MiB
  const std::string error = load_error(file, with_context(65536), make_cpu_backend(1));
  EXPECT_NE(error.find("a context of 65536 tokens needs 64.2 MiB for the sequence (KV cache 64.0 MiB as f32"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("16.0 MiB available"), std::string::npos) << error;
  EXPECT_NE(error.find("cpu"), std::string::npos) << error;
}

TEST(HostMemoryBudget, ContextThatFitsLoads) {
  const GgufFile file = GgufFile::open(test::tiny_model_path());
  const AvailableMemory available("1073741824");  // 1 GiB
  EXPECT_EQ(load_error(file, with_context(4096), make_cpu_backend(1)), "no error");
}

TEST(HostMemoryBudget, TheProbeReadsTheMachinesAvailableMemory) {
  const std::optional<uint64_t> free = make_cpu_backend(1)->free_memory();
  ASSERT_TRUE(free.has_value()) << "MemAvailable of /proc/meminfo";
  EXPECT_GT(*free, 0u);
}

// Resident memory of this process, from /proc/self/statm (pages → bytes).
uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size_pages = 0, resident_pages = 0;
  statm >> size_pages >> resident_pages;
  return resident_pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

// A context that fits still must not cost its whole KV cache up front: CPU backend memory is zero
// pages until written (a memset of every byte made a 16M-token context on the tiny model take over
// a minute before the first token, and made all of it resident).
TEST(HostMemoryBudget, CpuMemoryCostsPagesOnlyWhenWritten) {
  auto backend = make_cpu_backend(1);
  constexpr uint64_t kBytes = uint64_t{1} << 30;
  const uint64_t before = resident_bytes();
  void* memory = backend->allocate(kBytes);
  const uint64_t after = resident_bytes();
  auto* bytes = static_cast<const uint8_t*>(memory);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(memory) % 256, 0u);
  EXPECT_EQ(bytes[0], 0);
  EXPECT_EQ(bytes[kBytes / 2], 0);
  EXPECT_EQ(bytes[kBytes - 1], 0);
  backend->release(memory);
  EXPECT_LT(after - std::min(after, before), uint64_t{64} << 20) << "allocate() touched every page";
}

TEST(HostMemoryBudget, AMalformedOverrideIsAnError) {
  const GgufFile file = GgufFile::open(test::tiny_model_path());
  const AvailableMemory available("lots");
  const std::string error = load_error(file, with_context(256), make_cpu_backend(1));
  EXPECT_NE(error.find("PEREGRINE_AVAILABLE_MEMORY_BYTES"), std::string::npos) << error;
}

// The same override stands in for a device's free memory (cudaMemGetInfo on CUDA).
TEST(DeviceMemoryBudget, OverrideStandsInForTheDevicesFreeMemory) {
  const GgufFile file = GgufFile::open(test::tiny_model_path());
  const AvailableMemory available("16777216");
  const std::string error = load_error(file, with_context(256), std::make_unique<test::EmulatedDeviceBackend>());
  EXPECT_NE(error.find("16.0 MiB available"), std::string::npos) << error;
}

}  // namespace
}  // namespace peregrine
