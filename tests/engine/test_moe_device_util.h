// Shared by the MoE-with-routing-on-the-backend tests (test_moe_device.cpp, test_cuda_moe.cpp):
// random stacked expert tensors in a GGUF encoding, random routings, and float64 references of
// matmul_experts and moe_combine.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "peregrine/backend.h"
#include "peregrine/quant.h"

namespace peregrine::test {

// Uniform in ±scale, never exactly zero.
inline std::vector<float> moe_random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) {
    do x = dist(rng);
    while (x == 0.0f);
  }
  return v;
}

// n_expert experts of `rows` rows each, `stride` rows apart (stride > rows: the gate half of a
// fused gate_up tensor, whose other rows are filler), encoded as `type`; `values` is what the
// encoding decodes to, so a float64 reference sees exactly the operation's weights.
struct StackedExperts {
  StackedExperts(TensorType type, int64_t n_expert, int64_t rows, int64_t stride, int64_t n_in, uint32_t seed)
      : type(type), n_expert(n_expert), rows(rows), stride(stride), n_in(n_in) {
    const int64_t total_rows = (n_expert - 1) * stride + rows;
    const std::vector<float> f = moe_random(static_cast<size_t>(total_rows * n_in), seed);
    row_bytes = quant::row_bytes(type, n_in);
    bytes.resize(row_bytes * static_cast<uint64_t>(total_rows));
    quant::quantize(type, f.data(), bytes.data(), total_rows, n_in);
    values.resize(f.size());
    quant::dequantize(type, bytes.data(), values.data(), static_cast<int64_t>(values.size()));
  }
  // The view for data at `data` (host bytes, or where a backend placed them).
  ExpertsView view(const uint8_t* data) const {
    const int64_t total_rows = (n_expert - 1) * stride + rows;
    return ExpertsView{WeightView{type, data, n_in, total_rows, row_bytes, "blk.0.ffn_gate_exps.weight"}, rows, stride};
  }
  const float* expert_row(int64_t e, int64_t r) const { return values.data() + (e * stride + r) * n_in; }

  TensorType type;
  int64_t n_expert, rows, stride, n_in;
  uint64_t row_bytes = 0;
  std::vector<uint8_t> bytes;
  std::vector<float> values;
};

// [T][k] distinct experts per token, in random order (not sorted), tokens sharing some experts.
inline std::vector<int32_t> random_routing(int64_t n_tokens, int64_t k, int64_t n_expert, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids;
  std::vector<int32_t> all(static_cast<size_t>(n_expert));
  std::iota(all.begin(), all.end(), 0);
  for (int64_t t = 0; t < n_tokens; ++t) {
    std::shuffle(all.begin(), all.end(), rng);
    ids.insert(ids.end(), all.begin(), all.begin() + k);
  }
  return ids;
}

// The float64 products and Σ|w·x| of every (token, slot, row): y [T][k][rows].
struct ExpertsReference {
  std::vector<double> y, magnitude;
};
inline ExpertsReference experts_reference(const StackedExperts& w, const std::vector<int32_t>& ids, int64_t n_tokens,
                                          int64_t k, const std::vector<float>& x, bool x_per_slot) {
  ExpertsReference ref;
  for (int64_t s = 0; s < n_tokens * k; ++s) {
    const float* xr = x.data() + (x_per_slot ? s : s / k) * w.n_in;
    for (int64_t r = 0; r < w.rows; ++r) {
      const float* wr = w.expert_row(ids[s], r);
      double sum = 0, mag = 0;
      for (int64_t i = 0; i < w.n_in; ++i) {
        sum += static_cast<double>(wr[i]) * xr[i];
        mag += std::abs(static_cast<double>(wr[i]) * xr[i]);
      }
      ref.y.push_back(sum);
      ref.magnitude.push_back(mag);
    }
  }
  return ref;
}

// Every element: |actual − reference| ≤ rel_tol · Σ|w·x| (NaN fails). Returns the worst ratio.
inline double expect_experts_close(const std::vector<float>& actual, const ExpertsReference& ref, double rel_tol,
                                   const std::string& what) {
  EXPECT_EQ(actual.size(), ref.y.size()) << what;
  int64_t failures = 0;
  double worst = 0;
  for (size_t i = 0; i < std::min(actual.size(), ref.y.size()); ++i) {
    const double err = std::abs(actual[i] - ref.y[i]), bound = rel_tol * ref.magnitude[i];
    if (!(err <= bound) && ++failures <= 5) ADD_FAILURE() << what << ": y[" << i << "] = " << actual[i] << ", reference " << ref.y[i] << ", bound " << bound;
    worst = std::max(worst, std::isnan(err) ? INFINITY : err / ref.magnitude[i]);
  }
  EXPECT_EQ(failures, 0) << what << ": " << failures << " of " << actual.size() << " outputs off, worst |err|/Σ|wx| "
                         << worst;
  return worst;
}

// out0[t] + Σ_j weights[t][j]·expert_out[t][j] in float64, with Σ of the magnitudes.
inline void combine_reference(const std::vector<float>& out0, const std::vector<float>& expert_out,
                              const std::vector<float>& weights, int64_t n_tokens, int64_t k, int64_t n,
                              std::vector<double>& sum, std::vector<double>& magnitude) {
  sum.assign(out0.begin(), out0.end());
  magnitude.resize(out0.size());
  for (size_t i = 0; i < out0.size(); ++i) magnitude[i] = std::abs(static_cast<double>(out0[i]));
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t j = 0; j < k; ++j)
      for (int64_t i = 0; i < n; ++i) {
        const double p = static_cast<double>(weights[t * k + j]) * expert_out[(t * k + j) * n + i];
        sum[t * n + i] += p;
        magnitude[t * n + i] += std::abs(p);
      }
}

}  // namespace peregrine::test
