// The EmulatedDeviceBackend itself: its memory really cannot be dereferenced by the host, its
// transfers round-trip, its ops refuse host pointers (naming op and argument) and compute what
// the CPU backend computes, and its budget is reported and enforced. Without these the
// device-discipline tests could pass vacuously.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "emulated_device_backend.h"
#include "peregrine/error.h"

namespace peregrine {
namespace {

using test::EmulatedDeviceBackend;

std::vector<float> ramp(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * (static_cast<float>(i % 17) - 8.0f) + 0.25f;
  return v;
}

TEST(EmulatedDevice, MemoryIsTaggedZeroedAndRoundTrips) {
  EmulatedDeviceBackend be;
  EXPECT_FALSE(be.host_memory());
  EXPECT_FALSE(be.free_memory().has_value());
  BackendArray<float> a(be, 100), b(be, 100);
  EXPECT_TRUE(EmulatedDeviceBackend::is_tagged(a.data()));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % 256, 0u);
  std::vector<float> zeros(100, 1.0f);
  be.download(zeros.data(), a.data(), a.bytes());
  EXPECT_EQ(zeros, std::vector<float>(100, 0.0f));

  const auto x = ramp(100, 0.5f);
  be.upload(a.data(), x.data(), a.bytes());
  be.copy(b.data(), a.data(), a.bytes());
  be.fill_zero(a.data(), 10 * sizeof(float));
  std::vector<float> got_a(100), got_b(100);
  be.download(got_a.data(), a.data(), a.bytes());
  be.download(got_b.data(), b.data(), b.bytes());
  EXPECT_EQ(got_b, x);
  EXPECT_EQ(std::vector<float>(got_a.begin(), got_a.begin() + 10), std::vector<float>(10, 0.0f));
  EXPECT_EQ(std::vector<float>(got_a.begin() + 10, got_a.end()), std::vector<float>(x.begin() + 10, x.end()));

  const auto c = be.counters();
  EXPECT_EQ(c.uploads, 1u);
  EXPECT_EQ(c.upload_bytes, 400u);
  EXPECT_EQ(c.downloads, 3u);
  EXPECT_EQ(c.download_bytes, 1200u);
  EXPECT_EQ(c.copies, 1u);
  EXPECT_EQ(c.allocations, 2u);
  be.reset_counters();
  EXPECT_EQ(be.counters().downloads, 0u);
  EXPECT_EQ(be.counters().bytes_in_use, 2 * 512u);  // two 400-byte blocks, 256-byte granules
}

TEST(EmulatedDeviceDeathTest, HostDereferenceOfBackendMemoryFaults) {
  EmulatedDeviceBackend be;
  BackendArray<float> a(be, 16);
  const uint8_t weights[64] = {1};
  const uint8_t* placed = be.place_weights(weights, sizeof weights, "w");
  EXPECT_TRUE(EmulatedDeviceBackend::is_tagged(placed));
  EXPECT_DEATH(
      {
        volatile float v = *static_cast<volatile float*>(a.data());
        (void)v;
      },
      "");
  EXPECT_DEATH(
      {
        volatile uint8_t v = *static_cast<const volatile uint8_t*>(placed);
        (void)v;
      },
      "");
}

TEST(EmulatedDevice, OpsRefuseHostPointersNamingOpAndArgument) {
  EmulatedDeviceBackend be;
  BackendArray<float> x(be, 64), y(be, 64);
  std::vector<float> host(64, 1.0f);
  const auto expect_refusal = [](const auto& call, const std::string& op, const std::string& arg) {
    try {
      call();
      ADD_FAILURE() << op << " accepted a host pointer for '" << arg << "'";
    } catch (const std::logic_error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(op), std::string::npos) << m;
      EXPECT_NE(m.find("'" + arg + "'"), std::string::npos) << m;
    }
  };
  expect_refusal([&] { be.add(host.data(), x.data(), 64); }, "add", "y");
  expect_refusal([&] { be.add(y.data(), host.data(), 64); }, "add", "x");
  expect_refusal([&] { be.rmsnorm(x.data(), host.data(), y.data(), 1, 64, 1e-6f); }, "rmsnorm", "w");
  expect_refusal([&] { be.l2norm_heads(HeadView::dense(host.data(), 1, 2, 32), 1e-6f, 1.0f); }, "l2norm_heads", "x");
  const KvView kv{TensorType::F32, reinterpret_cast<const uint8_t*>(x.data()),
                  reinterpret_cast<const uint8_t*>(host.data()), 32 * sizeof(float), 1};
  const int32_t pos = 0;
  expect_refusal([&] { be.attention(HeadView::dense(y.data(), 1, 1, 32), kv, std::span(&pos, 1), 1.0f, y.data()); },
                 "attention", "kv.v");
  const WeightView w{TensorType::F32, reinterpret_cast<const uint8_t*>(host.data()), 8, 8, 32, "w"};
  expect_refusal([&] { be.matmul(w, x.data(), y.data(), 1); }, "matmul", "w");
  // Spans are host memory: a span over backend memory is refused before anything reads it.
  const std::span<const int32_t> device_ids(reinterpret_cast<const int32_t*>(x.data()), 4);
  expect_refusal([&] { be.gather_rows(x.data(), device_ids, 4, y.data()); }, "gather_rows", "rows");
  // moe_route writes host outputs.
  expect_refusal([&] { be.moe_route(x.data(), 1, 8, 2, reinterpret_cast<int32_t*>(y.data()), host.data()); },
                 "moe_route", "expert_ids");
  // Transfers check their direction.
  expect_refusal([&] { be.upload(host.data(), host.data() + 8, 4); }, "upload", "dst");
  expect_refusal([&] { be.download(x.data(), y.data(), 4); }, "download", "host_dst");
  // A released block is no longer backend memory.
  float* stale = nullptr;
  {
    BackendArray<float> gone(be, 8);
    stale = gone.data();
  }
  expect_refusal([&] { be.add(y.data(), stale, 8); }, "add", "x");
}

TEST(EmulatedDevice, OpsComputeWhatTheCpuBackendComputes) {
  EmulatedDeviceBackend be;
  auto cpu = make_cpu_backend(1);
  const int64_t rows = 3, n = 64;
  const auto x = ramp(rows * n, 0.3f), w = ramp(n, 0.05f);
  const auto weights = ramp(n * 16, 0.1f);  // a 16 x 64 F32 matrix

  BackendArray<float> dx(be, rows * n), dw(be, n), dy(be, rows * n), dm(be, rows * 16);
  be.upload(dx.data(), x.data(), dx.bytes());
  be.upload(dw.data(), w.data(), dw.bytes());
  be.rmsnorm(dx.data(), dw.data(), dy.data(), rows, n, 1e-6f);
  const auto* placed = be.place_weights(reinterpret_cast<const uint8_t*>(weights.data()), weights.size() * 4, "m");
  const WeightView dev_w{TensorType::F32, placed, n, 16, n * sizeof(float), "m"};
  be.matmul(dev_w, dy.data(), dm.data(), rows);
  std::vector<float> got_norm(rows * n), got_mat(rows * 16);
  be.download(got_norm.data(), dy.data(), dy.bytes());
  be.download(got_mat.data(), dm.data(), dm.bytes());

  std::vector<float> want_norm(rows * n), want_mat(rows * 16);
  cpu->rmsnorm(x.data(), w.data(), want_norm.data(), rows, n, 1e-6f);
  const WeightView host_w{TensorType::F32, reinterpret_cast<const uint8_t*>(weights.data()), n, 16,
                          n * sizeof(float), "m"};
  cpu->matmul(host_w, want_norm.data(), want_mat.data(), rows);
  EXPECT_EQ(got_norm, want_norm);
  EXPECT_EQ(got_mat, want_mat);
  EXPECT_EQ(be.counters().ops, 2u);
  EXPECT_EQ(be.counters().weight_bytes, weights.size() * 4);
}

TEST(EmulatedDevice, BudgetIsReportedAndEnforced) {
  EmulatedDeviceBackend be(4096);
  ASSERT_TRUE(be.free_memory().has_value());
  EXPECT_EQ(*be.free_memory(), 4096u);
  void* a = be.allocate(1000);  // 1024 with rounding
  EXPECT_EQ(*be.free_memory(), 3072u);
  try {
    be.allocate(3073);
    ADD_FAILURE() << "allocated past the budget";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("4096"), std::string::npos) << e.what();
  }
  void* b = be.allocate(3072);
  EXPECT_EQ(*be.free_memory(), 0u);
  be.release(a);
  be.release(b);
  EXPECT_EQ(*be.free_memory(), 4096u);
  EXPECT_EQ(be.counters().peak_bytes, 4096u);
}

}  // namespace
}  // namespace peregrine
