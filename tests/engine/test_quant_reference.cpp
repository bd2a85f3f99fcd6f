// Quantization formats against llama.cpp's own output (tests/data/quant-blocks, see its README):
// dequantization must be bit-identical to ggml's, quantization byte-identical to llama-quantize
// (all 14 formats with a reference file are) and never less accurate than it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "peregrine/error.h"
#include "peregrine/quant.h"

namespace peregrine {
namespace {

const std::string kDir = std::string(PEREGRINE_TEST_DATA_DIR) + "/quant-blocks/";
constexpr int64_t kRows = 256, kCols = 256;

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open test data " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<float> read_floats(const std::string& path) {
  const auto bytes = read_bytes(path);
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

double relative_error(const std::vector<float>& approx, const std::vector<float>& exact) {
  double num = 0, den = 0;
  for (size_t i = 0; i < exact.size(); ++i) {
    const double d = static_cast<double>(approx[i]) - exact[i];
    num += d * d;
    den += static_cast<double>(exact[i]) * exact[i];
  }
  return std::sqrt(num / den);
}

struct Format {
  const char* name;
  TensorType type;
  double llama_rel_error;  // from the README
};

void PrintTo(const Format& f, std::ostream* os) { *os << f.name; }

const Format kFormats[] = {
    {"q4_0", TensorType::Q4_0, 0.0860},   {"q4_1", TensorType::Q4_1, 0.0782},
    {"q5_0", TensorType::Q5_0, 0.0426},   {"q5_1", TensorType::Q5_1, 0.0378},
    {"q8_0", TensorType::Q8_0, 0.0053},   {"q2_K", TensorType::Q2_K, 0.2973},
    {"q3_K", TensorType::Q3_K, 0.1510},   {"q4_K", TensorType::Q4_K, 0.0713},
    {"q5_K", TensorType::Q5_K, 0.0362},   {"q6_K", TensorType::Q6_K, 0.0178},
    {"iq4_nl", TensorType::IQ4_NL, 0.0761}, {"iq4_xs", TensorType::IQ4_XS, 0.0767},
    {"bf16", TensorType::BF16, 0.0017},   {"f16", TensorType::F16, 0.0002},
};

class QuantReference : public ::testing::TestWithParam<Format> {};

TEST_P(QuantReference, DequantizeIsBitIdenticalToGgml) {
  const Format& f = GetParam();
  const auto bytes = read_bytes(kDir + f.name + ".bin");
  const auto expected = read_floats(kDir + f.name + ".f32");
  ASSERT_EQ(expected.size(), static_cast<size_t>(kRows * kCols));
  ASSERT_EQ(bytes.size(), quant::row_bytes(f.type, kCols) * kRows);
  std::vector<float> out(expected.size(), -1.f);
  quant::dequantize(f.type, bytes.data(), out.data(), kRows * kCols);
  size_t mismatches = 0, first = 0;
  for (size_t i = 0; i < out.size(); ++i)
    if (std::memcmp(&out[i], &expected[i], sizeof(float)) != 0 && mismatches++ == 0) first = i;
  EXPECT_EQ(mismatches, 0u) << "first mismatch at " << first << ": " << out[first] << " vs " << expected[first];
}

TEST_P(QuantReference, QuantizeIsByteIdenticalToLlamaQuantize) {
  const Format& f = GetParam();
  const auto source = read_floats(kDir + "source.f32");
  const auto expected = read_bytes(kDir + f.name + ".bin");
  std::vector<uint8_t> out(expected.size(), 0xAB);
  const size_t written = quant::quantize(f.type, source.data(), out.data(), kRows, kCols);
  ASSERT_EQ(written, expected.size());
  size_t mismatches = 0, first = 0;
  for (size_t i = 0; i < out.size(); ++i)
    if (out[i] != expected[i] && mismatches++ == 0) first = i;
  EXPECT_EQ(mismatches, 0u) << "first differing byte " << first << " of " << out.size();
}

TEST_P(QuantReference, QuantizeIsAtLeastAsAccurateAsLlamaCpp) {
  const Format& f = GetParam();
  const auto source = read_floats(kDir + "source.f32");
  std::vector<uint8_t> bytes(quant::row_bytes(f.type, kCols) * kRows);
  quant::quantize(f.type, source.data(), bytes.data(), kRows, kCols);
  std::vector<float> back(source.size());
  quant::dequantize(f.type, bytes.data(), back.data(), kRows * kCols);
  const double err = relative_error(back, source);
  RecordProperty("relative_error", std::to_string(err));
  EXPECT_LE(err, f.llama_rel_error + 1e-4) << f.name;
  // The reference bytes themselves reproduce the README's number (guards the metric).
  const auto ref = read_floats(kDir + f.name + ".f32");
  EXPECT_NEAR(relative_error(ref, source), f.llama_rel_error, 1e-4 + f.llama_rel_error * 0.01);
}

TEST_P(QuantReference, ImportanceWeightedQuantizationStaysAccurate) {
  // With uniform importance the weighted searches (llama.cpp's imatrix path) must still do about
  // as well as the reference quantizer; a skewed importance must lower the error where it is high.
  const Format& f = GetParam();
  const auto source = read_floats(kDir + "source.f32");
  std::vector<float> importance(kCols, 1.f);
  std::vector<uint8_t> bytes(quant::row_bytes(f.type, kCols) * kRows);
  quant::quantize(f.type, source.data(), bytes.data(), kRows, kCols, importance.data());
  std::vector<float> back(source.size());
  quant::dequantize(f.type, bytes.data(), back.data(), kRows * kCols);
  const double err = relative_error(back, source);
  RecordProperty("relative_error", std::to_string(err));
  EXPECT_LE(err, f.llama_rel_error * 1.05 + 1e-4) << f.name;
}

INSTANTIATE_TEST_SUITE_P(AllFormats, QuantReference, ::testing::ValuesIn(kFormats),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(QuantReferenceData, SourceHasExpectedSize) {
  EXPECT_EQ(read_floats(kDir + "source.f32").size(), static_cast<size_t>(kRows * kCols));
}

}  // namespace
}  // namespace peregrine
