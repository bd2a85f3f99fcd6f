// Shared by the sampling-candidate tests: logits rows full of ties and a plain reference of the
// top-k selection (logit_select.h) to check backends and the host function against.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace peregrine::test {

// n values drawn from a few dozen levels (so most values tie with many others, ±0 included),
// with some NaN, -inf and +inf sprinkled in (`specials`: about one value in that many).
inline std::vector<float> tied_logits(int64_t n, uint32_t seed, int64_t specials = 5000) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> level(-24, 24);
  std::uniform_int_distribution<int64_t> special(0, specials);
  std::vector<float> row(static_cast<size_t>(n));
  for (float& x : row) {
    x = static_cast<float>(level(rng)) * 0.375f;
    if (x == 0.0f && (rng() & 1)) x = -0.0f;
    switch (special(rng)) {
      case 0: x = std::numeric_limits<float>::quiet_NaN(); break;
      case 1: x = -std::numeric_limits<float>::infinity(); break;
      case 2: x = 9.0f + static_cast<float>(level(rng)) * 0.125f; break;  // a few clear leaders
      default: break;
    }
  }
  return row;
}

// The k best of row[0, n_valid): values compared as doubles (equal values: lower id), NaN and
// -inf left out; missing slots id -1, value -inf.
struct TopK {
  std::vector<int32_t> ids;
  std::vector<float> values;
};
inline TopK reference_top_k(const float* row, int64_t n_valid, int64_t k) {
  std::vector<int32_t> order;
  for (int64_t i = 0; i < n_valid; ++i)
    if (!std::isnan(row[i]) && row[i] != -std::numeric_limits<float>::infinity()) order.push_back(static_cast<int32_t>(i));
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return static_cast<double>(row[a]) > static_cast<double>(row[b]); });
  TopK t;
  for (int64_t i = 0; i < k; ++i) {
    const bool has = i < static_cast<int64_t>(order.size());
    t.ids.push_back(has ? order[i] : -1);
    t.values.push_back(has ? row[order[i]] : -std::numeric_limits<float>::infinity());
  }
  return t;
}

}  // namespace peregrine::test
