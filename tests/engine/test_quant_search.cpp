// The vectorized group searches (quant_search_groups.h) must reproduce the one-group searches of
// quant_search.h bit for bit; the reference files only cover the paths without importance, so
// this guards the importance-weighted paths too.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "format/quant_search.h"
#include "format/quant_search_groups.h"
#include "peregrine/quant.h"

namespace peregrine {
namespace {

// Groups with varied content: Gaussian, all-zero, constant, positive-only, one with an outlier.
std::vector<float> make_groups(std::mt19937& rng, int groups, int n) {
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(groups * n));
  for (auto& v : x) v = dist(rng);
  for (int i = 0; i < n; ++i) {
    x[static_cast<size_t>(1 * n + i)] = 0.f;                                      // all zero
    x[static_cast<size_t>(2 * n + i)] = 0.75f;                                    // constant positive
    x[static_cast<size_t>(3 * n + i)] = std::fabs(x[static_cast<size_t>(3 * n + i)]) + 1.f;  // positive only
  }
  x[static_cast<size_t>(4 * n + 3)] = 300.f;  // outlier
  return x;
}

std::vector<float> make_weights(std::mt19937& rng, const std::vector<float>& x, bool squares) {
  std::uniform_real_distribution<float> dist(0.05f, 3.f);
  std::vector<float> w(x.size());
  for (size_t i = 0; i < x.size(); ++i) w[i] = squares ? x[i] * x[i] : dist(rng);
  return w;
}

template <int G, int N, bool kMad>
void check_affine(uint32_t seed, int nmax, float rmin, float rdelta, int nstep, bool squares) {
  std::mt19937 rng(seed);
  const auto x = make_groups(rng, G, N);
  const auto w = make_weights(rng, x, squares);
  std::vector<uint8_t> L(G * N), L_ref(G * N), scratch(N);
  float scales[G], mins[G];
  quant::search::affine_scale_groups<G, N, kMad>(nmax, x.data(), w.data(), L.data(), scales, mins, rmin, rdelta, nstep);
  for (int g = 0; g < G; ++g) {
    float min_ref;
    const float scale_ref = quant::search::affine_scale_weighted(N, nmax, x.data() + g * N, w.data() + g * N,
                                                                 L_ref.data() + g * N, &min_ref, scratch.data(), rmin,
                                                                 rdelta, nstep, kMad);
    EXPECT_EQ(std::memcmp(&scales[g], &scale_ref, sizeof(float)), 0) << "group " << g << ": " << scales[g] << " vs " << scale_ref;
    EXPECT_EQ(std::memcmp(&mins[g], &min_ref, sizeof(float)), 0) << "group " << g << ": " << mins[g] << " vs " << min_ref;
  }
  EXPECT_EQ(L, L_ref);
}

template <int G, int N>
void check_symmetric(uint32_t seed, int nmax, bool squares) {
  std::mt19937 rng(seed);
  const auto x = make_groups(rng, G, N);
  const auto w = make_weights(rng, x, squares);
  std::vector<int8_t> L(G * N), L_ref(G * N);
  float scales[G];
  quant::search::symmetric_scale_groups<G, N>(nmax, x.data(), w.data(), L.data(), scales);
  for (int g = 0; g < G; ++g) {
    const float ref = quant::search::symmetric_scale(N, nmax, x.data() + g * N, L_ref.data() + g * N, 1, w.data() + g * N);
    EXPECT_EQ(std::memcmp(&scales[g], &ref, sizeof(float)), 0) << "group " << g << ": " << scales[g] << " vs " << ref;
  }
  EXPECT_EQ(L, L_ref);
}

TEST(QuantSearchGroups, AffineMatchesSingleGroupSearch) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    check_affine<8, 32, false>(seed, 15, -1.f, 0.1f, 20, false);   // Q4_K reference settings
    check_affine<8, 32, false>(seed, 31, -0.9f, 0.05f, 36, false); // Q5_K with importance
    check_affine<16, 16, true>(seed, 3, -0.5f, 0.1f, 15, false);   // Q2_K reference settings
    check_affine<16, 16, false>(seed, 3, -0.9f, 0.05f, 36, true);  // Q2_K with importance, x^2 weights
    check_affine<8, 32, false>(seed, 15, -0.9f, 0.05f, 36, false); // Q4_1 / Q4_K with importance
  }
}

TEST(QuantSearchGroups, SymmetricMatchesSingleGroupSearch) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    check_symmetric<16, 16>(seed, 32, true);   // Q6_K reference
    check_symmetric<16, 16>(seed, 32, false);  // Q6_K with importance
    check_symmetric<16, 16>(seed, 4, false);   // Q3_K with importance
    check_symmetric<8, 32>(seed, 8, false);    // Q4_0 with importance
    check_symmetric<8, 32>(seed, 16, false);   // Q5_0 with importance
  }
}

TEST(QuantSearch, NearestIntRoundsHalfToEvenAndSaturates) {
  using quant::search::nearest_int;
  EXPECT_EQ(nearest_int(0.5f), 0);
  EXPECT_EQ(nearest_int(1.5f), 2);
  EXPECT_EQ(nearest_int(2.5f), 2);
  EXPECT_EQ(nearest_int(-0.5f), 0);
  EXPECT_EQ(nearest_int(-1.5f), -2);
  EXPECT_EQ(nearest_int(-2.49f), -2);
  EXPECT_EQ(nearest_int(4194303.f), 4194303);
  EXPECT_EQ(nearest_int(1e30f), 4194303);
  EXPECT_EQ(nearest_int(-1e30f), -4194303);
  EXPECT_EQ(nearest_int(std::nanf("")), 0);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-5000.f, 5000.f);
  for (int i = 0; i < 100000; ++i) {
    const float v = dist(rng);
    ASSERT_EQ(nearest_int(v), static_cast<int>(std::nearbyint(v))) << v;
  }
}

// IQ4_NL blocks are independent, so a row whose length is not a multiple of the 8-block batch
// (the padded tail path) must give the same blocks as a full row.
TEST(QuantIq4, ShortRowsMatchTheSameBlocksOfALongRow) {
  std::mt19937 rng(17);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> x(256);
  for (auto& v : x) v = dist(rng);
  std::vector<uint8_t> full(quant::row_bytes(TensorType::IQ4_NL, 256)), part(quant::row_bytes(TensorType::IQ4_NL, 96));
  quant::quantize(TensorType::IQ4_NL, x.data(), full.data(), 1, 256);
  quant::quantize(TensorType::IQ4_NL, x.data(), part.data(), 1, 96);
  EXPECT_TRUE(std::equal(part.begin(), part.end(), full.begin()));
  std::vector<float> importance(256, 2.f);
  quant::quantize(TensorType::IQ4_NL, x.data(), full.data(), 1, 256, importance.data());
  quant::quantize(TensorType::IQ4_NL, x.data(), part.data(), 1, 96, importance.data());
  EXPECT_TRUE(std::equal(part.begin(), part.end(), full.begin()));
}

}  // namespace
}  // namespace peregrine

namespace peregrine {
namespace {

// Rows whose block count is not a multiple of the 8-block batch take the padded tail path of the
// importance-weighted legacy quantizers; rebuild the expected blocks from the one-group searches.
TEST(QuantLegacyWeighted, TailBlocksMatchSingleGroupSearch) {
  std::mt19937 rng(23);
  std::normal_distribution<float> dist(0.f, 1.f);
  constexpr int kN = 11 * 32;  // 8 + 3 blocks
  std::vector<float> x(kN), importance(kN);
  for (auto& v : x) v = dist(rng);
  for (auto& v : importance) v = std::fabs(dist(rng)) + 0.1f;
  float sum = 0;
  for (float v : x) sum += v * v;
  const float sigma2 = sum / kN;
  std::vector<uint8_t> q40(quant::row_bytes(TensorType::Q4_0, kN)), q41(quant::row_bytes(TensorType::Q4_1, kN));
  quant::quantize(TensorType::Q4_0, x.data(), q40.data(), 1, kN, importance.data());
  quant::quantize(TensorType::Q4_1, x.data(), q41.data(), 1, kN, importance.data());
  for (int blk = 0; blk < kN / 32; ++blk) {
    const float* xb = x.data() + blk * 32;
    float w[32];
    for (int j = 0; j < 32; ++j) w[j] = importance[blk * 32 + j] * std::sqrt(sigma2 + xb[j] * xb[j]);
    int8_t L[32];
    const uint16_t d0 = quant::fp32_to_fp16(quant::search::symmetric_scale(32, 8, xb, L, 1, w));
    EXPECT_EQ(std::memcmp(q40.data() + 18 * blk, &d0, 2), 0) << "q4_0 block " << blk;
    for (int j = 0; j < 16; ++j) EXPECT_EQ(q40[18 * blk + 2 + j], static_cast<uint8_t>(L[j] | (L[j + 16] << 4))) << blk;
    uint8_t U[32], scratch[32];
    float min;
    const float d1 = quant::search::affine_scale_weighted(32, 15, xb, w, U, &min, scratch, -0.9f, 0.05f, 36, false);
    const uint16_t dm[2] = {quant::fp32_to_fp16(d1), quant::fp32_to_fp16(-min)};
    EXPECT_EQ(std::memcmp(q41.data() + 20 * blk, dm, 4), 0) << "q4_1 block " << blk;
    for (int j = 0; j < 16; ++j) EXPECT_EQ(q41[20 * blk + 4 + j], static_cast<uint8_t>(U[j] | (U[j + 16] << 4))) << blk;
  }
}

}  // namespace
}  // namespace peregrine
