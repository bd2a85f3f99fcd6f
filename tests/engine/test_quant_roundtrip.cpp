// dequantize(quantize(x)) on synthetic inputs for every format: Gaussian rows (several seeds),
// all-zero rows, rows with one huge outlier, tiny values in the fp16-subnormal range and
// negative-only rows; plus importance weighting, thread safety and argument errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "peregrine/error.h"
#include "peregrine/quant.h"

namespace peregrine {
namespace {

constexpr int64_t kRowLen = 1024;  // four 256-value super-blocks
constexpr int64_t kRows = 8;

struct Spec {
  const char* name;
  TensorType type;
  double gaussian;   // bound on ||deq - x|| / ||x|| for N(0, 1) rows
  double negative;   // same for rows of -(|N(0,1)| + 0.1)
  double outlier;    // bound on the relative error of the outlier itself
  double tiny;       // bound on the relative error for N(0,1) * 3e-5 (scales in fp16 subnormals)
};

void PrintTo(const Spec& s, std::ostream* os) { *os << s.name; }

// Bounds are the measured errors of this implementation (identical to llama.cpp's quantizers)
// rounded up by roughly 10-20 %, so a regression in any search shows up.
const Spec kSpecs[] = {
    {"f32", TensorType::F32, 0, 0, 0, 0},
    {"f16", TensorType::F16, 2.5e-4, 2.5e-4, 2.5e-4, 7e-4},
    {"bf16", TensorType::BF16, 2e-3, 2e-3, 2e-3, 2e-3},
    {"q4_0", TensorType::Q4_0, 0.098, 0.095, 0.01, 0.10},
    {"q4_1", TensorType::Q4_1, 0.090, 0.048, 0.01, 0.095},
    {"q5_0", TensorType::Q5_0, 0.049, 0.047, 0.01, 0.05},
    {"q5_1", TensorType::Q5_1, 0.044, 0.024, 0.01, 0.047},
    {"q8_0", TensorType::Q8_0, 0.0062, 0.0060, 0.01, 0.038},
    {"q2_K", TensorType::Q2_K, 0.33, 0.20, 0.02, 0.36},
    {"q3_K", TensorType::Q3_K, 0.17, 0.17, 0.02, 0.18},
    {"q4_K", TensorType::Q4_K, 0.080, 0.045, 0.02, 0.12},
    {"q5_K", TensorType::Q5_K, 0.041, 0.023, 0.02, 0.29},
    // Q6_K's and IQ4_XS's super-block scale (max sub-block scale / 128 resp. / 32) underflows
    // fp16 at this magnitude, so those blocks decode to exact zeros (llama.cpp does the same):
    // the error is then exactly 1, never more.
    {"q6_K", TensorType::Q6_K, 0.020, 0.020, 0.02, 1.0},
    {"q8_K", TensorType::Q8_K, 0.0080, 0.0075, 0.01, 0.0080},
    {"iq4_nl", TensorType::IQ4_NL, 0.085, 0.085, 0.01, 0.095},
    {"iq4_xs", TensorType::IQ4_XS, 0.086, 0.086, 0.02, 1.0},
};

std::vector<float> gaussian(uint32_t seed, int64_t n, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng) * scale;
  return v;
}

std::vector<float> roundtrip(TensorType type, const std::vector<float>& x, const float* importance = nullptr) {
  const int64_t rows = static_cast<int64_t>(x.size()) / kRowLen;
  std::vector<uint8_t> bytes(quant::row_bytes(type, kRowLen) * static_cast<size_t>(rows));
  EXPECT_EQ(quant::quantize(type, x.data(), bytes.data(), rows, kRowLen, importance), bytes.size());
  std::vector<float> back(x.size(), std::nanf(""));
  quant::dequantize(type, bytes.data(), back.data(), static_cast<int64_t>(x.size()));
  return back;
}

double rel_error(const float* approx, const float* exact, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(approx[i]) - exact[i];
    num += d * d;
    den += static_cast<double>(exact[i]) * exact[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

void expect_finite(const std::vector<float>& v, const char* what) {
  for (size_t i = 0; i < v.size(); ++i) ASSERT_TRUE(std::isfinite(v[i])) << what << " value " << i;
}

class QuantRoundTrip : public ::testing::TestWithParam<Spec> {};

TEST_P(QuantRoundTrip, GaussianRowsSeveralSeeds) {
  const Spec& s = GetParam();
  EXPECT_TRUE(quant::is_supported(s.type));
  double worst = 0;
  for (uint32_t seed : {1u, 2u, 3u, 4u}) {
    const auto x = gaussian(seed, kRowLen * kRows);
    const auto back = roundtrip(s.type, x);
    expect_finite(back, "gaussian");
    const double err = rel_error(back.data(), x.data(), x.size());
    worst = std::max(worst, err);
    EXPECT_LE(err, s.gaussian) << "seed " << seed;
  }
  RecordProperty("worst_gaussian", std::to_string(worst));
}

TEST_P(QuantRoundTrip, AllZeroRowsStayZero) {
  const Spec& s = GetParam();
  const std::vector<float> x(kRowLen * 2, 0.f);
  const auto back = roundtrip(s.type, x);
  for (size_t i = 0; i < back.size(); ++i) ASSERT_EQ(back[i], 0.f) << s.name << " value " << i;
}

TEST_P(QuantRoundTrip, NegativeOnlyRows) {
  const Spec& s = GetParam();
  auto x = gaussian(7, kRowLen * kRows);
  for (auto& v : x) v = -(std::fabs(v) + 0.1f);
  const auto back = roundtrip(s.type, x);
  expect_finite(back, "negative");
  const double err = rel_error(back.data(), x.data(), x.size());
  RecordProperty("negative", std::to_string(err));
  EXPECT_LE(err, s.negative);
}

TEST_P(QuantRoundTrip, OneHugeOutlierOnlyHurtsItsOwnSuperBlock) {
  const Spec& s = GetParam();
  for (uint32_t seed : {11u, 12u}) {
    auto x = gaussian(seed, kRowLen * kRows);
    const size_t pos = (seed * 997u) % x.size();
    const float outlier = (seed % 2) ? 1000.f : -1000.f;
    x[pos] = outlier;
    const auto back = roundtrip(s.type, x);
    expect_finite(back, "outlier");
    EXPECT_LE(std::fabs(back[pos] - outlier) / 1000.0, s.outlier) << "outlier reconstructed as " << back[pos];
    // Every 256-value span without the outlier keeps the Gaussian accuracy.
    double num = 0, den = 0;
    for (size_t start = 0; start < x.size(); start += 256) {
      if (pos >= start && pos < start + 256) continue;
      for (size_t i = start; i < start + 256; ++i) {
        num += (static_cast<double>(back[i]) - x[i]) * (static_cast<double>(back[i]) - x[i]);
        den += static_cast<double>(x[i]) * x[i];
      }
    }
    EXPECT_LE(std::sqrt(num / den), s.gaussian) << "seed " << seed;
  }
}

TEST_P(QuantRoundTrip, TinyValuesNearHalfSubnormalRange) {
  // With values ~3e-5 the fp16 scales of most formats land in (or near) the subnormal range,
  // where they have few significant bits; the result must stay finite and bounded.
  const Spec& s = GetParam();
  const auto x = gaussian(21, kRowLen * kRows, 3e-5f);
  const auto back = roundtrip(s.type, x);
  expect_finite(back, "tiny");
  const double err = rel_error(back.data(), x.data(), x.size());
  RecordProperty("tiny", std::to_string(err));
  EXPECT_LE(err, s.tiny);
}

TEST_P(QuantRoundTrip, NonMultipleOfBlockIsRejectedWithTypeAndCount) {
  const Spec& s = GetParam();
  const int64_t block = s.type == TensorType::F32 || s.type == TensorType::F16 || s.type == TensorType::BF16 ? 1
                        : (s.type == TensorType::Q4_0 || s.type == TensorType::Q4_1 || s.type == TensorType::Q5_0 ||
                           s.type == TensorType::Q5_1 || s.type == TensorType::Q8_0 || s.type == TensorType::IQ4_NL)
                            ? 32
                            : 256;
  // Plain types take any n >= 0, so for them the bad count is a negative one.
  const int64_t bad = block == 1 ? -3 : block + 16;
  std::vector<float> x(static_cast<size_t>(std::max<int64_t>(bad, 1)), 1.f), y(x.size());
  std::vector<uint8_t> buf(4096);
  try {
    quant::quantize(s.type, x.data(), buf.data(), 1, bad);
    FAIL() << "quantize accepted n_per_row " << bad;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(s.name), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(std::to_string(bad)), std::string::npos) << e.what();
  }
  EXPECT_THROW(quant::dequantize(s.type, buf.data(), y.data(), bad), Error);
  EXPECT_THROW(quant::row_bytes(s.type, bad), Error);
}

INSTANTIATE_TEST_SUITE_P(AllFormats, QuantRoundTrip, ::testing::ValuesIn(kSpecs),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(QuantErrors, UnsupportedTypesNameTheType) {
  std::vector<float> x(256, 1.f);
  std::vector<uint8_t> buf(1024);
  for (TensorType t : {TensorType::Q8_1, TensorType::IQ2_XXS, TensorType::I32, TensorType::MXFP4}) {
    const std::string name(tensor_type_info(t).name);
    try {
      quant::dequantize(t, buf.data(), x.data(), 256);
      FAIL() << "dequantize accepted " << name;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("256"), std::string::npos) << e.what();
    }
    EXPECT_THROW(quant::quantize(t, x.data(), buf.data(), 1, 256), Error) << name;
  }
  EXPECT_EQ(quant::row_bytes(TensorType::IQ2_XXS, 512), 132u);  // geometry is known even if unsupported
  EXPECT_FALSE(quant::is_supported(TensorType::Q8_1));
  EXPECT_FALSE(quant::is_supported(TensorType::IQ2_XXS));
}

TEST(QuantErrors, SupportedSetMatchesTheTypeTable) {
  // tensor_type.cpp's `dequantizable` flag is what the GGUF loader trusts; it must agree.
  for (uint32_t id = 0; id < 64; ++id) {
    const auto info = tensor_type_info(id);
    if (!info) continue;
    EXPECT_EQ(quant::is_supported(info->type), info->dequantizable) << info->name;
  }
}

TEST(QuantRowBytes, MatchesBlockGeometry) {
  EXPECT_EQ(quant::row_bytes(TensorType::F32, 7), 28u);
  EXPECT_EQ(quant::row_bytes(TensorType::Q4_0, 64), 36u);
  EXPECT_EQ(quant::row_bytes(TensorType::Q4_K, 512), 288u);
  EXPECT_EQ(quant::row_bytes(TensorType::Q6_K, 256), 210u);
  EXPECT_EQ(quant::row_bytes(TensorType::Q8_K, 256), 292u);
  EXPECT_EQ(quant::row_bytes(TensorType::IQ4_XS, 256), 136u);
  EXPECT_EQ(quant::row_bytes(TensorType::Q8_0, 0), 0u);
}

// Importance steers the searches: columns with high importance must come out more accurate than
// without importance, for every format whose search uses it.
TEST(QuantImportance, HeavyColumnsGetMoreAccurate) {
  const auto x = gaussian(31, kRowLen * kRows);
  std::vector<float> importance(kRowLen, 1.f);
  for (int64_t c = 0; c < kRowLen; c += 4) importance[static_cast<size_t>(c)] = 50.f;  // every 4th column
  auto heavy_error = [&](const std::vector<float>& back) {
    double num = 0, den = 0;
    for (size_t i = 0; i < x.size(); i += 4) {
      num += (static_cast<double>(back[i]) - x[i]) * (static_cast<double>(back[i]) - x[i]);
      den += static_cast<double>(x[i]) * x[i];
    }
    return std::sqrt(num / den);
  };
  for (TensorType t : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q2_K,
                       TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::IQ4_NL,
                       TensorType::IQ4_XS}) {
    const double plain = heavy_error(roundtrip(t, x));
    const double weighted = heavy_error(roundtrip(t, x, importance.data()));
    EXPECT_LT(weighted, plain * 0.97) << tensor_type_info(t).name << ": " << weighted << " vs " << plain;
  }
}

TEST(QuantThreads, ConcurrentQuantizationIsDeterministic) {
  const auto x = gaussian(41, kRowLen * 16);
  for (TensorType t : {TensorType::Q4_K, TensorType::Q6_K, TensorType::IQ4_XS, TensorType::Q8_0}) {
    const size_t row = quant::row_bytes(t, kRowLen);
    std::vector<uint8_t> expected(row * 16);
    quant::quantize(t, x.data(), expected.data(), 16, kRowLen);
    std::vector<std::vector<uint8_t>> results(4, std::vector<uint8_t>(expected.size()));
    std::vector<std::thread> threads;
    for (int th = 0; th < 4; ++th)
      threads.emplace_back([&, th] {
        for (int64_t r = 0; r < 16; ++r) {
          const int64_t rr = (r + th * 5) % 16;  // different order per thread
          quant::quantize(t, x.data() + rr * kRowLen, results[static_cast<size_t>(th)].data() + rr * row, 1, kRowLen);
        }
      });
    for (auto& th : threads) th.join();
    for (const auto& r : results) EXPECT_EQ(r, expected) << tensor_type_info(t).name;
  }
}

// Q8_K has no llama.cpp file: check it against a float64 model of its definition (scale = the
// signed value of largest magnitude / -127, levels rounded to nearest and capped at 127,
// bsums = sums of 16 levels).
TEST(QuantQ8K, MatchesFloat64Definition) {
  struct BlockQ8K {
    float d;
    int8_t qs[256];
    int16_t bsums[16];
  };
  static_assert(sizeof(BlockQ8K) == 292);
  for (uint32_t seed : {51u, 52u, 53u}) {
    auto x = gaussian(seed, 256 * 4);
    if (seed == 52) x[100] = -40.f;           // a negative extreme: scale positive
    if (seed == 53) std::fill(x.begin() + 256, x.begin() + 512, 0.f);  // an all-zero block
    std::vector<BlockQ8K> blocks(4);
    quant::quantize(TensorType::Q8_K, x.data(), blocks.data(), 1, 1024);
    for (int b = 0; b < 4; ++b) {
      const float* xb = x.data() + 256 * b;
      double max = 0;
      for (int i = 0; i < 256; ++i)
        if (std::fabs(xb[i]) > std::fabs(max)) max = xb[i];
      const BlockQ8K& q = blocks[static_cast<size_t>(b)];
      if (max == 0) {
        EXPECT_EQ(q.d, 0.f);
        for (int i = 0; i < 256; ++i) EXPECT_EQ(q.qs[i], 0);
        continue;
      }
      EXPECT_NEAR(q.d, max / -127.0, std::fabs(max / 127.0) * 1e-6);
      for (int i = 0; i < 256; ++i) {
        const double exact = xb[i] * (-127.0 / max);
        const double expected = std::min(127.0, std::nearbyint(exact));
        // A float rounding of the product may flip an exact .5 tie; nothing else may differ.
        if (std::fabs(std::fabs(exact - std::trunc(exact)) - 0.5) > 1e-4) EXPECT_EQ(q.qs[i], expected) << i;
        else EXPECT_LE(std::fabs(q.qs[i] - expected), 1.0) << i;
        EXPECT_LE(std::fabs(q.d * q.qs[i] - xb[i]), std::fabs(q.d) * 0.5001) << i;
      }
      EXPECT_EQ(q.qs[std::find(xb, xb + 256, static_cast<float>(max)) - xb], -127);
      for (int g = 0; g < 16; ++g) {
        int sum = 0;
        for (int i = 0; i < 16; ++i) sum += q.qs[16 * g + i];
        EXPECT_EQ(q.bsums[g], sum) << g;
      }
    }
  }
}

}  // namespace
}  // namespace peregrine
