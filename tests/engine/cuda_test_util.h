// Shared by the CUDA backend tests: a fixture that skips without a device, host <-> backend
// copies, poisoned outputs and element-by-element comparisons against the CPU backend.
//
// Every CUDA op test: random inputs (never zeros), the output buffer poisoned (NaN) before the
// call, every output element compared with the CPU backend's result under a stated bound.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "peregrine/backend.h"
#include "peregrine/quant.h"

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

// expect_close, plus the largest error in scientific notation (max_error_sci: expect_close's
// property rounds to 6 decimals, which shows errors of a few roundings as 0).
inline void expect_close_sci(const std::vector<float>& actual, const std::vector<float>& expected, double rel_tol,
                             double abs_tol, const std::string& what) {
  expect_close(actual, expected, rel_tol, abs_tol, what);
  double max_err = 0.0;
  for (size_t i = 0; i < actual.size() && i < expected.size(); ++i)
    max_err = std::max(max_err, std::abs(static_cast<double>(actual[i]) - expected[i]));
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", max_err);
  ::testing::Test::RecordProperty(what + "_max_error_sci", text);
}

// ---- attention (test_cuda_attention.cpp, test_cuda_flash_attention.cpp) ----

struct AttentionCase {
  TensorType type;
  int64_t n_heads, n_kv_heads, head_dim;
  std::vector<int32_t> positions;
};

inline std::string describe(const AttentionCase& c) {
  std::string s = std::string(tensor_type_info(c.type).name) + " H" + std::to_string(c.n_heads) + " Hkv" +
                  std::to_string(c.n_kv_heads) + " hd" + std::to_string(c.head_dim) + " T" +
                  std::to_string(c.positions.size()) + " pos";
  for (size_t i = 0; i < c.positions.size() && i < 4; ++i) s += " " + std::to_string(c.positions[i]);
  return s;
}

// Runs one case on both backends and compares every output value. The caches are encoded once by
// the CPU backend's kv_store (its memory is host memory), so both backends read identical bytes.
inline void compare_attention(Backend& gpu, Backend& cpu, const AttentionCase& c, uint32_t seed, double rel_tol,
                              double abs_tol) {
  const int64_t T = static_cast<int64_t>(c.positions.size());
  const int64_t hd = c.head_dim, H = c.n_heads;
  const int64_t n_ctx = *std::max_element(c.positions.begin(), c.positions.end()) + 1;
  const int64_t kv_row = c.n_kv_heads * hd;
  const uint64_t row_bytes = quant::row_bytes(c.type, kv_row);

  const std::vector<float> k_values = cuda_random(static_cast<size_t>(n_ctx * kv_row), seed);
  const std::vector<float> v_values = cuda_random(static_cast<size_t>(n_ctx * kv_row), seed + 1);
  std::vector<uint8_t> k_bytes(n_ctx * row_bytes), v_bytes(n_ctx * row_bytes);
  cpu.kv_store(c.type, k_values.data(), n_ctx, kv_row, k_bytes.data());
  cpu.kv_store(c.type, v_values.data(), n_ctx, kv_row, v_bytes.data());

  // q as the model has it: each head's queries followed by its output-gate values (attn_q rows),
  // so the view has a head stride of 2·hd. ±2 makes the softmax peaky enough that a wrong max or
  // rescale shows.
  std::vector<float> q_host = cuda_random(static_cast<size_t>(T * H * 2 * hd), seed + 2, 2.0f);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  std::vector<float> expected(static_cast<size_t>(T * H * hd));
  cpu.attention(HeadView{q_host.data(), T, H, hd, H * 2 * hd, 2 * hd},
                KvView{c.type, k_bytes.data(), v_bytes.data(), row_bytes, c.n_kv_heads}, c.positions, scale,
                expected.data());

  BackendArray<uint8_t> k_dev = to_backend(gpu, k_bytes), v_dev = to_backend(gpu, v_bytes);
  BackendArray<float> q_dev = to_backend(gpu, q_host);
  BackendArray<float> out = poisoned(gpu, T * H * hd);
  gpu.attention(HeadView{q_dev.data(), T, H, hd, H * 2 * hd, 2 * hd},
                KvView{c.type, k_dev.data(), v_dev.data(), row_bytes, c.n_kv_heads}, c.positions, scale,
                out.data());
  expect_close_sci(to_host(gpu, out), expected, rel_tol, abs_tol, describe(c));
}

inline std::vector<int32_t> consecutive(int32_t start, int64_t n) {
  std::vector<int32_t> p(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) p[t] = start + static_cast<int32_t>(t);
  return p;
}

// ---- gated delta rule (test_cuda_delta_net.cpp, test_cuda_delta_net_chunked.cpp) ----

// One case's inputs on the host, in the layouts the backends take: q | k | v side by side in one
// padded row per token (strided views, as the model has them after the convolution), q and k
// L2-normalised per head (q also scaled by 1/√d, the contract's inputs), log-decays g in
// [-1.51, -0.01] and β in [0.05, 0.95] dense [T][Hv], a random state [Hv][d][d].
struct DeltaNetHostInputs {
  int64_t row_stride = 0;  // floats per token row: q | k | v | padding
  std::vector<float> rows, g, beta, state;
};

inline DeltaNetHostInputs delta_net_inputs(int64_t n_k_heads, int64_t n_v_heads, int64_t head_dim, int64_t n_tokens,
                                           uint32_t seed) {
  const int64_t d = head_dim, hk = n_k_heads, hv = n_v_heads, T = n_tokens;
  DeltaNetHostInputs in;
  in.row_stride = 2 * hk * d + hv * d + 3;  // odd padding: a stride mistaken for a width shows
  in.rows = cuda_random(static_cast<size_t>(T * in.row_stride), seed);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < 2 * hk; ++h) {
      float* x = in.rows.data() + t * in.row_stride + h * d;
      double sum_sq = 0.0;
      for (int64_t i = 0; i < d; ++i) sum_sq += static_cast<double>(x[i]) * x[i];
      const double scale = (h < hk ? 1.0 / std::sqrt(static_cast<double>(d)) : 1.0) / std::sqrt(sum_sq);
      for (int64_t i = 0; i < d; ++i) x[i] = static_cast<float>(x[i] * scale);
    }
  const std::vector<float> ug = cuda_random(static_cast<size_t>(T * hv), seed + 1);
  const std::vector<float> ub = cuda_random(static_cast<size_t>(T * hv), seed + 2);
  in.g.resize(ug.size());
  in.beta.resize(ub.size());
  for (size_t i = 0; i < ug.size(); ++i) {
    in.g[i] = -(0.76f + 0.75f * ug[i]);
    in.beta[i] = 0.5f + 0.45f * ub[i];
  }
  in.state = cuda_random(static_cast<size_t>(hv * d * d), seed + 3, 0.5f);
  return in;
}

}  // namespace peregrine::test
