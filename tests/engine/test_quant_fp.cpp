// IEEE half / bfloat16 conversions against an independent float64 reference of
// round-to-nearest-even (subnormals, ties, overflow to infinity, NaN).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "peregrine/quant.h"

namespace peregrine {
namespace {

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

float float_of(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

// Value of a binary16 pattern computed in double from its fields.
double half_value(uint16_t h) {
  const int sign = (h >> 15) ? -1 : 1;
  const int e = (h >> 10) & 31;
  const int m = h & 1023;
  if (e == 31) return m ? std::numeric_limits<double>::quiet_NaN() : sign * std::numeric_limits<double>::infinity();
  if (e == 0) return sign * std::ldexp(static_cast<double>(m), -24);
  return sign * std::ldexp(static_cast<double>(1024 + m), e - 25);
}

// Round v to a binary format with `mantissa_bits` fraction bits, minimum normal exponent emin,
// overflowing at 2^(emax+1), ties to even; computed in double (exact for float inputs).
double reference_round(double v, int mantissa_bits, int emin, int emax) {
  if (v == 0) return v;
  const double a = std::fabs(v);
  int e;
  std::frexp(a, &e);  // a = f * 2^e, f in [0.5, 1)
  e -= 1;             // a in [2^e, 2^(e+1))
  const int ulp_exp = (e < emin ? emin : e) - mantissa_bits;
  const double q = std::nearbyint(std::ldexp(a, -ulp_exp));  // default mode: ties to even
  double r = std::ldexp(q, ulp_exp);
  if (r >= std::ldexp(1.0, emax + 1)) r = std::numeric_limits<double>::infinity();
  return std::copysign(r, v);
}

void expect_half_matches_reference(float f) {
  const uint16_t h = quant::fp32_to_fp16(f);
  if (std::isnan(f)) {
    EXPECT_EQ(h & 0x7FFFu, 0x7E00u) << "NaN must become the quiet NaN";
    return;
  }
  const double expected = reference_round(f, 10, -14, 15);
  const double got = half_value(h);
  ASSERT_EQ(got, expected) << "fp32_to_fp16(" << f << ") bits " << std::hex << bits_of(f);
  ASSERT_EQ(std::signbit(got), std::signbit(static_cast<double>(f))) << "sign of " << f;
}

void expect_bf16_matches_reference(float f) {
  const uint16_t h = quant::fp32_to_bf16(f);
  if (std::isnan(f)) {
    EXPECT_TRUE(std::isnan(quant::bf16_to_fp32(h)));
    EXPECT_TRUE(h & 0x40u) << "NaN must stay quiet";
    return;
  }
  const double expected = reference_round(f, 7, -126, 127);
  const double got = quant::bf16_to_fp32(h);
  ASSERT_EQ(got, expected) << "fp32_to_bf16(" << f << ") bits " << std::hex << bits_of(f);
  ASSERT_EQ(std::signbit(got), std::signbit(static_cast<double>(f)));
}

TEST(QuantFp16, EveryHalfConvertsExactlyToFloat) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = quant::fp16_to_fp32(static_cast<uint16_t>(h));
    const double expected = half_value(static_cast<uint16_t>(h));
    if (std::isnan(expected)) {
      ASSERT_TRUE(std::isnan(f)) << h;
      EXPECT_TRUE(bits_of(f) & 0x00400000u) << "quiet NaN for " << h;
      continue;
    }
    ASSERT_EQ(static_cast<double>(f), expected) << "half " << h;
    ASSERT_EQ(std::signbit(f), (h & 0x8000u) != 0) << "half " << h;
    // Round trip is the identity on every non-NaN half (subnormals and infinities included).
    ASSERT_EQ(quant::fp32_to_fp16(f), h) << "half " << h;
  }
}

TEST(QuantFp16, TiesAndNeighboursOfEveryMidpointRoundToNearestEven) {
  for (uint32_t h = 0; h < 0x7C00; ++h) {  // every finite non-negative half and its successor
    const double mid = (half_value(static_cast<uint16_t>(h)) + half_value(static_cast<uint16_t>(h + 1))) / 2;
    const auto f = static_cast<float>(mid);
    ASSERT_EQ(static_cast<double>(f), mid);  // midpoints are floats
    for (float v : {f, std::nextafter(f, 0.f), std::nextafter(f, 1e30f)}) {
      expect_half_matches_reference(v);
      expect_half_matches_reference(-v);
    }
  }
}

TEST(QuantFp16, SpecialValues) {
  EXPECT_EQ(quant::fp32_to_fp16(65504.f), 0x7BFFu);
  EXPECT_EQ(quant::fp32_to_fp16(65519.996f), 0x7BFFu);
  EXPECT_EQ(quant::fp32_to_fp16(65520.f), 0x7C00u);  // tie rounds to even, i.e. overflows
  EXPECT_EQ(quant::fp32_to_fp16(1e10f), 0x7C00u);
  EXPECT_EQ(quant::fp32_to_fp16(-std::numeric_limits<float>::infinity()), 0xFC00u);
  EXPECT_EQ(quant::fp32_to_fp16(std::numeric_limits<float>::max()), 0x7C00u);
  EXPECT_EQ(quant::fp32_to_fp16(-0.f), 0x8000u);
  EXPECT_EQ(quant::fp32_to_fp16(std::ldexp(1.f, -24)), 0x0001u);   // smallest subnormal
  EXPECT_EQ(quant::fp32_to_fp16(std::ldexp(1.f, -25)), 0x0000u);   // tie to even: zero
  EXPECT_EQ(quant::fp32_to_fp16(std::ldexp(1.5f, -25)), 0x0001u);  // above the tie
  EXPECT_EQ(quant::fp32_to_fp16(std::ldexp(1.f, -14)), 0x0400u);   // smallest normal
  EXPECT_EQ(quant::fp32_to_fp16(std::numeric_limits<float>::denorm_min()), 0x0000u);
  EXPECT_EQ(quant::fp32_to_fp16(std::numeric_limits<float>::quiet_NaN()), 0x7E00u);
  EXPECT_EQ(quant::fp32_to_fp16(-std::numeric_limits<float>::quiet_NaN()), 0xFE00u);
  EXPECT_EQ(quant::fp16_to_fp32(0x3C00), 1.0f);
  EXPECT_EQ(quant::fp16_to_fp32(0xC000), -2.0f);
  EXPECT_EQ(quant::fp16_to_fp32(0x0001), std::ldexp(1.f, -24));
  EXPECT_EQ(quant::fp16_to_fp32(0x03FF), std::ldexp(1023.f, -24));
  EXPECT_TRUE(std::isinf(quant::fp16_to_fp32(0x7C00)));
}

TEST(QuantFp16, RandomBitPatternsMatchReference) {
  std::mt19937 rng(1234);
  for (int i = 0; i < 2'000'000; ++i) expect_half_matches_reference(float_of(rng()));
  // Concentrate on the half range and its subnormals too.
  std::uniform_real_distribution<float> exponent(-30.f, 17.f);
  for (int i = 0; i < 1'000'000; ++i) {
    const float v = std::exp2(exponent(rng)) * ((rng() & 1) ? 1.f : -1.f);
    expect_half_matches_reference(v);
  }
}

TEST(QuantBf16, RandomBitPatternsMatchReference) {
  std::mt19937 rng(99);
  for (int i = 0; i < 2'000'000; ++i) expect_bf16_matches_reference(float_of(rng()));
  // Ties: the low 16 bits exactly 0x8000 with even and odd kept parts, plus their neighbours.
  for (int i = 0; i < 200'000; ++i) {
    const uint32_t tie = (rng() & 0xFFFF0000u) | 0x8000u;
    for (uint32_t b : {tie, tie - 1, tie + 1}) expect_bf16_matches_reference(float_of(b));
  }
}

TEST(QuantBf16, SpecialValues) {
  EXPECT_EQ(quant::fp32_to_bf16(1.0f), 0x3F80u);
  EXPECT_EQ(quant::fp32_to_bf16(std::numeric_limits<float>::max()), 0x7F80u);  // rounds up to inf
  EXPECT_EQ(quant::fp32_to_bf16(-std::numeric_limits<float>::infinity()), 0xFF80u);
  EXPECT_EQ(quant::fp32_to_bf16(std::numeric_limits<float>::denorm_min()), 0x0000u);
  EXPECT_EQ(quant::fp32_to_bf16(float_of(0x00018000u)), 0x0002u);  // subnormal tie, odd kept part rounds up
  EXPECT_EQ(quant::fp32_to_bf16(float_of(0x7F800001u)), 0x7FC0u);  // signalling NaN is quietened
  EXPECT_EQ(quant::bf16_to_fp32(0xC040), -3.0f);
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = quant::bf16_to_fp32(static_cast<uint16_t>(h));
    ASSERT_EQ(bits_of(f), h << 16);
    if (!std::isnan(f)) {
      ASSERT_EQ(quant::fp32_to_bf16(f), h);
    }
  }
}

TEST(QuantFp16, RowConversionUsesTheScalarConversion) {
  std::vector<float> src = {0.f, -0.f, 1.f, 65520.f, std::ldexp(1.f, -25), 3.14159f, -1e-7f, 1e6f};
  src.resize(64, 0.5f);
  std::vector<uint16_t> half(src.size()), brain(src.size());
  ASSERT_EQ(quant::quantize(TensorType::F16, src.data(), half.data(), 1, static_cast<int64_t>(src.size())), src.size() * 2);
  ASSERT_EQ(quant::quantize(TensorType::BF16, src.data(), brain.data(), 1, static_cast<int64_t>(src.size())), src.size() * 2);
  std::vector<float> back_half(src.size()), back_brain(src.size());
  quant::dequantize(TensorType::F16, half.data(), back_half.data(), static_cast<int64_t>(src.size()));
  quant::dequantize(TensorType::BF16, brain.data(), back_brain.data(), static_cast<int64_t>(src.size()));
  for (size_t i = 0; i < src.size(); ++i) {
    EXPECT_EQ(half[i], quant::fp32_to_fp16(src[i]));
    EXPECT_EQ(brain[i], quant::fp32_to_bf16(src[i]));
    EXPECT_EQ(bits_of(back_half[i]), bits_of(quant::fp16_to_fp32(half[i])));
    EXPECT_EQ(bits_of(back_brain[i]), bits_of(quant::bf16_to_fp32(brain[i])));
  }
}

}  // namespace
}  // namespace peregrine
