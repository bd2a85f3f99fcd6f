// Activation quantizers, argument checks, and the kernels on arbitrary block bytes (every bit
// pattern a GGUF file may hold, including ones no quantizer writes, such as −128 in Q8_0 or
// extreme sub-block scales) with saturated activations: the cases where int16 lanes could overflow.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "peregrine/error.h"
#include "test_cpu_kernels_util.h"

namespace peregrine::cpu::kernels {
namespace {

using testing::half_at;
using testing::quantize_act;
using testing::random_row;
using testing::reference_dot;

TEST(CpuKernelActivations, PairsEachWeightTypeWithGgmlsVecDotType) {
  using T = TensorType;
  for (T t : {T::Q2_K, T::Q3_K, T::Q4_K, T::Q5_K, T::Q6_K, T::IQ4_XS}) EXPECT_EQ(activation_type(t), T::Q8_K);
  for (T t : {T::Q4_0, T::Q5_0, T::Q8_0, T::IQ4_NL}) EXPECT_EQ(activation_type(t), T::Q8_0);
  for (T t : {T::Q4_1, T::Q5_1}) EXPECT_EQ(activation_type(t), T::Q8_1);
  for (T t : {T::F32, T::F16, T::BF16}) EXPECT_EQ(activation_type(t), T::F32);
  EXPECT_EQ(activation_row_bytes(T::Q4_K, 512), 2u * 292u);
  EXPECT_EQ(activation_row_bytes(T::Q8_0, 64), 2u * 34u);
  EXPECT_EQ(activation_row_bytes(T::Q5_1, 64), 2u * 36u);
  EXPECT_EQ(activation_row_bytes(T::BF16, 3), 12u);
}

TEST(CpuKernelActivations, Q8KUsesSignedLargestMagnitudeAndBlockSums) {
  std::vector<float> x = random_row(512, 11);
  x[300] = -1000.0f;  // largest magnitude of block 1, negative: d = max / -127 > 0, its q = -127
  const auto act = quantize_act(TensorType::Q4_K, x);
  for (int b = 0; b < 2; ++b) {
    const uint8_t* blk = act.data() + b * 292;
    float d;
    std::memcpy(&d, blk, 4);
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 256; ++j) {
      if (std::fabs(x[b * 256 + j]) > amax) amax = std::fabs(x[b * 256 + j]), max = x[b * 256 + j];
    }
    EXPECT_FLOAT_EQ(d, max / -127.0f);
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += static_cast<int8_t>(blk[4 + 16 * g + j]);
      int16_t bsum;
      std::memcpy(&bsum, blk + 260 + 2 * g, 2);
      EXPECT_EQ(bsum, sum) << "block " << b << " group " << g;
    }
  }
  EXPECT_EQ(static_cast<int8_t>(act[292 + 4 + 300 - 256]), -127);
}

TEST(CpuKernelActivations, Q8_0AndQ8_1ScaleIsMaxAbsOver127) {
  std::vector<float> x = random_row(64, 12);
  x[40] = 50.0f;
  const auto a0 = quantize_act(TensorType::Q8_0, x);
  const auto a1 = quantize_act(TensorType::Q4_1, x);
  EXPECT_EQ(half_at(a0.data() + 34), half_at(a1.data() + 36));
  EXPECT_EQ(half_at(a1.data() + 36), quant::fp16_to_fp32(quant::fp32_to_fp16(50.0f / 127.0f)));
  for (int b = 0; b < 2; ++b) {
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      EXPECT_EQ(a0[b * 34 + 2 + j], a1[b * 36 + 4 + j]) << "Q8_0 and Q8_1 round the same way";
      sum += static_cast<int8_t>(a1[b * 36 + 4 + j]);
    }
    const float d = half_at(a1.data() + b * 36);
    // s is f16(d_float * Σq); d_float differs from the stored f16 d, so allow one f16 rounding step.
    EXPECT_NEAR(half_at(a1.data() + b * 36 + 2), d * static_cast<float>(sum), std::fabs(d * sum) * 2e-3 + 1e-6);
  }
  EXPECT_EQ(static_cast<int8_t>(a1[36 + 4 + 8]), 127);
}

// ggml-cpu's x86 rule: q = round_half_even(x * (127 / max|x|)). With max = 127 the multiplier is
// exactly 1, so ties show: 2.5 → 2, -3.5 → -4, 0.5 → 0 (roundf would give 3, -4, 1).
TEST(CpuKernelActivations, Q8_0RoundsHalfToEvenWithMultiplier127OverMax) {
  std::vector<float> x(32, 1.0f);
  x[0] = 127.0f, x[1] = 2.5f, x[2] = -3.5f, x[3] = 0.5f, x[4] = 100.4f;
  for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
    if (!isa_available(isa)) continue;
    for (TensorType t : {TensorType::Q8_0, TensorType::Q5_1}) {
      std::vector<uint8_t> act(activation_row_bytes(t, 32));
      quantize_activations(t, x.data(), 32, act.data(), isa);
      const int qs = t == TensorType::Q8_0 ? 2 : 4;
      const auto q = [&](int j) { return static_cast<int>(static_cast<int8_t>(act[qs + j])); };
      EXPECT_EQ(q(0), 127);
      EXPECT_EQ(q(1), 2) << isa_name(isa);
      EXPECT_EQ(q(2), -4) << isa_name(isa);
      EXPECT_EQ(q(3), 0) << isa_name(isa);
      EXPECT_EQ(q(4), 100) << isa_name(isa);
      EXPECT_EQ(q(5), 1) << isa_name(isa);
      EXPECT_EQ(half_at(act.data()), 1.0f);
    }
  }
}

TEST(CpuKernelActivations, Avx2QuantizerGivesTheScalarBytes) {
  if (!isa_available(Isa::Avx2)) GTEST_SKIP() << "no AVX2 on this CPU";
  for (TensorType t : {TensorType::Q8_0, TensorType::Q4_1, TensorType::Q4_K}) {
    for (uint32_t seed = 0; seed < 4; ++seed) {
      auto x = random_row(1024, 300 + seed);
      for (size_t i = 0; i < 64; ++i) x[i] = std::round(x[i] * 4.0f) / 4.0f;  // many exact ties
      // Q8_K block 1: two values of equal magnitude (the first, +5, sets the sign); block 2: max
      // -127 (multiplier exactly 1) with ties; block 3: all zero.
      x[256] = 5.0f, x[300] = -5.0f;
      x[512] = -127.0f, x[513] = 2.5f, x[514] = -3.5f;
      std::fill(x.begin() + 768, x.begin() + 1024, 0.0f);
      std::vector<uint8_t> a(activation_row_bytes(t, 1024)), b(a.size());
      quantize_activations(t, x.data(), 1024, a.data(), Isa::Scalar);
      quantize_activations(t, x.data(), 1024, b.data(), Isa::Avx2);
      EXPECT_EQ(a, b) << tensor_type_info(t).name << " seed " << seed;
    }
  }
}

// Against ggml's scalar reference quantizer (quant::quantize Q8_0: roundf(x / d)): same scale,
// values at most one unit apart, and equal except in rare last-unit cases.
TEST(CpuKernelActivations, Q8_0MatchesReferenceQuantizerUpToRareTies) {
  const auto x = random_row(4096, 21);
  const auto ours = quantize_act(TensorType::Q8_0, x);
  const auto ref = testing::quantize_row(TensorType::Q8_0, x);
  int differing = 0;
  for (int b = 0; b < 4096 / 32; ++b) {
    EXPECT_EQ(half_at(ours.data() + b * 34), half_at(ref.data() + b * 34));
    for (int j = 0; j < 32; ++j) {
      const int d = static_cast<int8_t>(ours[b * 34 + 2 + j]) - static_cast<int8_t>(ref[b * 34 + 2 + j]);
      EXPECT_LE(std::abs(d), 1);
      differing += d != 0;
    }
  }
  EXPECT_LE(differing, 8) << "of 4096 values";
}

TEST(CpuKernelActivations, ZeroRowGivesZeroBlocksAndZeroDots) {
  const std::vector<float> zeros(256, 0.0f);
  for (TensorType t : {TensorType::Q4_K, TensorType::Q8_0, TensorType::Q4_1}) {
    const auto act = quantize_act(t, zeros);
    for (uint8_t byte : act) EXPECT_EQ(byte, 0) << tensor_type_info(t).name;
    const auto w = testing::quantize_row(t, random_row(256, 3));
    EXPECT_EQ(vec_dot(t, 256, w.data(), act.data()), 0.0f);
  }
}

// A NaN or an infinity in an activation row is not rounded away: the max operations that find a
// block's scale drop NaN, which made the block finite and the product finite but wrong (float
// activations give NaN). Such a block gets a NaN scale, so every product with it is NaN.
TEST(CpuKernelActivations, NonFiniteValuesGiveNonFiniteDots) {
  const float poisons[] = {std::nanf(""), INFINITY, -INFINITY};
  for (TensorType t : {TensorType::Q8_0, TensorType::Q4_1, TensorType::Q4_K, TensorType::Q6_K, TensorType::IQ4_XS}) {
    const auto w = testing::quantize_row(t, random_row(512, 5));
    for (float poison : poisons) {
      for (size_t at : {size_t{0}, size_t{37}, size_t{300}, size_t{511}}) {
        auto x = random_row(512, 6);
        x[at] = poison;
        for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
          if (!isa_available(isa)) continue;
          std::vector<uint8_t> act(activation_row_bytes(t, 512));
          quantize_activations(t, x.data(), 512, act.data(), isa);
          const float dot = vec_dot_kernel(t, isa)(512, w.data(), act.data());
          EXPECT_FALSE(std::isfinite(dot)) << tensor_type_info(t).name << " " << poison << " at " << at
                                           << (isa == Isa::Avx2 ? " avx2" : " scalar") << ": " << dot;
        }
      }
    }
  }
}

TEST(CpuKernelApi, RejectsUnsupportedTypesAndBadLengths) {
  EXPECT_THROW(activation_type(TensorType::Q8_K), Error);
  EXPECT_THROW(activation_type(TensorType::IQ2_XXS), Error);
  EXPECT_THROW(activation_row_bytes(TensorType::Q4_K, 100), Error);
  EXPECT_THROW(activation_row_bytes(TensorType::Q4_0, 48), Error);
  EXPECT_THROW(vec_dot_kernel(TensorType::MXFP4), Error);
  EXPECT_EQ(vec_dot_kernel(TensorType::Q8_1, Isa::Scalar), nullptr);
  EXPECT_FALSE(has_vec_dot(TensorType::I32));
  EXPECT_TRUE(has_vec_dot(TensorType::IQ4_XS));
  EXPECT_EQ(weight_block_elems(TensorType::Q6_K), 256);
  EXPECT_EQ(weight_block_elems(TensorType::IQ4_NL), 32);
  std::vector<float> x(100, 1.0f);
  std::vector<uint8_t> dst(4096);
  EXPECT_THROW(quantize_activations(TensorType::Q4_K, x.data(), 100, dst.data()), Error);
}

// Byte offsets of the f16 scale fields of each block format (patched to sane values; every other
// byte stays random).
struct RawCase {
  TensorType type;
  std::vector<int> half_offsets;
};

class VecDotRawBytesTest : public ::testing::TestWithParam<RawCase> {};

TEST_P(VecDotRawBytesTest, AnyBlockBytesWithSaturatedActivations) {
  const RawCase& c = GetParam();
  const auto info = tensor_type_info(c.type);
  const int64_t n = 4 * 256;
  const int64_t n_blocks = n / info.block_elems;
  std::mt19937 rng(static_cast<uint32_t>(c.type) + 17);
  std::uniform_real_distribution<float> scale(0.001f, 0.1f);
  std::vector<uint8_t> w(static_cast<size_t>(n_blocks) * info.block_bytes);
  for (auto& byte : w) byte = static_cast<uint8_t>(rng());
  for (int64_t b = 0; b < n_blocks; ++b) {
    for (int off : c.half_offsets) {
      const uint16_t h = quant::fp32_to_fp16(scale(rng) * (rng() % 2 ? 1.0f : -1.0f));
      std::memcpy(w.data() + b * info.block_bytes + off, &h, 2);
    }
  }
  // Activations of equal magnitude: every quantized value is ±127 (the int16 worst case), plus a
  // random row for the general case.
  std::vector<float> saturated(static_cast<size_t>(n));
  for (size_t i = 0; i < saturated.size(); ++i) saturated[i] = (rng() % 2 ? 3.0f : -3.0f);
  for (const auto& x : {saturated, random_row(n, 77)}) {
    const auto act = quantize_act(c.type, x);
    const auto ref = reference_dot(c.type, n, w, act);
    const float s = vec_dot_kernel(c.type, Isa::Scalar)(n, w.data(), act.data());
    EXPECT_NEAR(s, ref.dot, 1e-5 * ref.magnitude) << info.name << " scalar";
    if (isa_available(Isa::Avx2)) {
      const float v = vec_dot_kernel(c.type, Isa::Avx2)(n, w.data(), act.data());
      EXPECT_NEAR(v, ref.dot, 1e-5 * ref.magnitude) << info.name << " avx2";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    QuantTypes, VecDotRawBytesTest,
    ::testing::Values(RawCase{TensorType::Q4_0, {0}}, RawCase{TensorType::Q4_1, {0, 2}},
                      RawCase{TensorType::Q5_0, {0}}, RawCase{TensorType::Q5_1, {0, 2}},
                      RawCase{TensorType::Q8_0, {0}}, RawCase{TensorType::IQ4_NL, {0}},
                      RawCase{TensorType::Q2_K, {80, 82}}, RawCase{TensorType::Q3_K, {108}},
                      RawCase{TensorType::Q4_K, {0, 2}}, RawCase{TensorType::Q5_K, {0, 2}},
                      RawCase{TensorType::Q6_K, {208}}, RawCase{TensorType::IQ4_XS, {0}}),
    [](const ::testing::TestParamInfo<RawCase>& info) {
      return std::string(tensor_type_info(info.param.type).name);
    });

}  // namespace
}  // namespace peregrine::cpu::kernels
