// Shared by the CUDA backend tests: a fixture that skips without a device, host <-> backend
// copies, poisoned outputs and element-by-element comparisons against the CPU backend.
//
// Every CUDA op test: random inputs (never zeros), the output buffer poisoned (NaN) before the
// call, every output element compared with the CPU backend's result under a stated bound.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "peregrine/backend.h"

namespace peregrine::test {

class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0)
      GTEST_SKIP() << (cuda_backend_compiled() ? "no CUDA device on this machine"
                                               : "this build has no CUDA backend");
    gpu = make_cuda_backend(0);
    cpu = make_cpu_backend(1);
  }
  std::unique_ptr<Backend> gpu;
  std::unique_ptr<Backend> cpu;
};

// Uniform in ±scale, never exactly zero.
inline std::vector<float> cuda_random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) {
    do x = dist(rng);
    while (x == 0.0f);
  }
  return v;
}

template <class T>
BackendArray<T> to_backend(Backend& be, const std::vector<T>& host) {
  BackendArray<T> a(be, static_cast<int64_t>(host.size()));
  be.upload(a.data(), host.data(), a.bytes());
  return a;
}

template <class T>
std::vector<T> to_host(Backend& be, const BackendArray<T>& a) {
  std::vector<T> host(static_cast<size_t>(a.size()));
  be.download(host.data(), a.data(), a.bytes());
  return host;
}

// n floats of backend memory, every value NaN (so an element the op forgot to write fails).
inline BackendArray<float> poisoned(Backend& be, int64_t n) {
  return to_backend(be, std::vector<float>(static_cast<size_t>(n), std::numeric_limits<float>::quiet_NaN()));
}

// Every element: |a − e| ≤ abs_tol + rel_tol·|e|. Reports the first failures and the max error.
inline void expect_close(const std::vector<float>& actual, const std::vector<float>& expected, double rel_tol,
                         double abs_tol, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  size_t failures = 0;
  double max_err = 0.0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double a = actual[i], e = expected[i], err = std::abs(a - e);
    if (!(err <= abs_tol + rel_tol * std::abs(e))) {  // NaN fails too
      if (++failures <= 5) ADD_FAILURE() << what << ": element " << i << " is " << a << ", expected " << e;
    }
    if (err > max_err || std::isnan(err)) max_err = std::isnan(err) ? INFINITY : err;
  }
  EXPECT_EQ(failures, 0u) << what << ": " << failures << " of " << actual.size() << " elements off, max error "
                          << max_err;
  ::testing::Test::RecordProperty(what + "_max_error", std::to_string(max_err));
}

}  // namespace peregrine::test
