// Loading the qwen35-tiny fixtures (model, reference outputs, JSON) for the forward-pass tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "peregrine/gguf.h"
#include "peregrine/model.h"

namespace peregrine::test {

inline const std::filesystem::path kTinyDir = std::filesystem::path(PEREGRINE_TEST_DATA_DIR) / "qwen35-tiny";

inline std::vector<float> read_floats(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  EXPECT_TRUE(f.good()) << "cannot open " << p;
  std::vector<char> b{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}

// One fixture model: `name` is the file stem (tiny-f32, ..., tiny-quant).
struct TinyFixture {
  explicit TinyFixture(const std::string& name)
      : name(name), file(GgufFile::open(kTinyDir / (name + ".gguf"))) {
    std::ifstream j(kTinyDir / (name + ".json"));
    meta = nlohmann::json::parse(j);
    tokens = meta["tokens"].get<std::vector<int32_t>>();
  }
  // Reference outputs; for the quantized model the float-activation ones where they exist.
  std::vector<float> ref(const std::string& what) const {
    const bool quant = name == "tiny-quant";
    return read_floats(kTinyDir / (name + (quant ? ".float_" : ".") + what + ".f32"));
  }
  bool quantized() const { return name == "tiny-quant"; }
  std::unique_ptr<Model> load(ModelOptions o = {}) const {
    o.context_length = 256;
    return Model::load(file, o);
  }

  std::string name;
  GgufFile file;
  nlohmann::json meta;
  std::vector<int32_t> tokens;
};

inline double max_abs(std::span<const float> a, std::span<const float> b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
  return m;
}

inline int32_t argmax(std::span<const float> row) {
  return static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());  // ties: lowest id
}

// Every row's argmax equal (rows of n values).
inline int count_argmax_mismatches(std::span<const float> a, std::span<const float> b, size_t n) {
  int bad = 0;
  for (size_t r = 0; r * n < a.size(); ++r) bad += argmax(a.subspan(r * n, n)) != argmax(b.subspan(r * n, n));
  return bad;
}

// Tolerances from tests/data/qwen35-tiny/README.md (F32 models, float32 implementation).
constexpr double kLogitTol = 1e-3;
constexpr double kHiddenTol = 2e-4;

}  // namespace peregrine::test
