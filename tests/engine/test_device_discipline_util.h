// Shared by the device-discipline tests: the same fixture model loaded twice, once on the CPU
// backend and once on the EmulatedDeviceBackend (non-dereferenceable memory, the CPU's arithmetic
// underneath), and bitwise comparisons of what the two produce.
#pragma once

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "emulated_device_backend.h"
#include "test_forward_util.h"

namespace peregrine::test {

inline const std::vector<std::string> kAllFixtures = {"tiny-f32", "tiny-mtp-f32", "tiny256-f32", "tiny-moe-f32",
                                                      "tiny-quant"};

// The fixtures' reference runs used a context of 256.
inline ModelOptions fixture_options() {
  ModelOptions o;
  o.context_length = 256;
  return o;
}

// Loads `fx` with the same options on the CPU backend (`cpu`) and on an emulated device (`dev`).
struct TwinModels {
  explicit TwinModels(const TinyFixture& fx, ModelOptions options = fixture_options(),
                      std::optional<uint64_t> budget = {}) {
    options.n_threads = 1;
    options.activations = ActivationMode::Float;  // what the emulated device computes with
    options.backend = BackendKind::Cpu;
    cpu = Model::load(fx.file, options);
    auto backend = std::make_unique<EmulatedDeviceBackend>(budget);
    device = backend.get();
    dev = Model::load(fx.file, options, nullptr, std::move(backend));
  }
  std::unique_ptr<Model> cpu;
  std::unique_ptr<Model> dev;
  EmulatedDeviceBackend* device = nullptr;  // owned by `dev`
};

inline std::vector<float> copy_of(std::span<const float> s) { return {s.begin(), s.end()}; }

// Every element bit for bit (NaN patterns included). On failure: how many differ, the first
// index and the largest absolute difference.
inline void expect_bitwise_equal(std::span<const float> actual, std::span<const float> expected,
                                 const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  size_t differing = 0, first = 0;
  double max_diff = 0.0;
  for (size_t i = 0; i < actual.size(); ++i) {
    if (std::bit_cast<uint32_t>(actual[i]) == std::bit_cast<uint32_t>(expected[i])) continue;
    if (differing++ == 0) first = i;
    max_diff = std::max(max_diff, std::abs(double(actual[i]) - double(expected[i])));
  }
  EXPECT_EQ(differing, 0u) << what << ": " << differing << " of " << actual.size()
                           << " values differ from the CPU backend's (first at " << first << ", max |diff| "
                           << max_diff << ")";
}

template <class T>
void expect_same_values(std::span<const T> actual, std::span<const T> expected, const std::string& what) {
  EXPECT_TRUE(std::equal(actual.begin(), actual.end(), expected.begin(), expected.end())) << what;
}

inline void expect_same_bytes(const std::vector<uint8_t>& actual, const std::vector<uint8_t>& expected,
                              const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  size_t first = actual.size();
  for (size_t i = 0; i < actual.size() && first == actual.size(); ++i)
    if (actual[i] != expected[i]) first = i;
  EXPECT_EQ(first, actual.size()) << what << ": first differing byte at " << first << " of " << actual.size();
}

// Row p of the MTP head's input: trunk hidden row p − 1, zeros for p = 0.
inline std::vector<float> shifted_rows(std::span<const float> hidden, int64_t n_tokens, int64_t n_embd) {
  std::vector<float> h(static_cast<size_t>(n_tokens * n_embd), 0.0f);
  std::copy(hidden.begin(), hidden.begin() + (n_tokens - 1) * n_embd, h.begin() + n_embd);
  return h;
}

}  // namespace peregrine::test
