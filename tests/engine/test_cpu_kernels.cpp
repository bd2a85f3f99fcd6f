// Every dot-product kernel against the float64 reference: scalar kernel vs dequantized rows, then
// the AVX2 kernel vs the scalar one (when this CPU has AVX2+FMA+F16C; the test says which ran).
#include <gtest/gtest.h>

#include <iostream>
#include <string>

#include "test_cpu_kernels_util.h"

namespace peregrine::cpu::kernels {
namespace {

using testing::quantize_act;
using testing::quantize_row;
using testing::random_row;
using testing::reference_dot;

// Both kernels accumulate in float: allowed error relative to Σ|w_i a_i|.
constexpr double kRelTol = 1e-5;

struct TypeCase {
  TensorType type;
  std::vector<int64_t> lengths;
};

std::string type_name(TensorType t) { return std::string(tensor_type_info(t).name); }

const std::vector<TypeCase>& all_cases() {
  static const std::vector<TypeCase> cases = [] {
    const std::vector<int64_t> k{256, 512, 2304, 4096};
    const std::vector<int64_t> legacy{32, 96, 1024, 4128};
    const std::vector<int64_t> plain{1, 7, 8, 33, 256, 1000, 4099};
    using T = TensorType;
    return std::vector<TypeCase>{
        {T::Q4_K, k},     {T::Q6_K, k},      {T::Q8_0, legacy}, {T::Q5_K, k},      {T::Q5_0, legacy},
        {T::F16, plain},  {T::BF16, plain},  {T::F32, plain},   {T::Q4_0, legacy}, {T::Q4_1, legacy},
        {T::Q5_1, legacy}, {T::Q3_K, k},     {T::Q2_K, k},      {T::IQ4_NL, legacy}, {T::IQ4_XS, k},
    };
  }();
  return cases;
}

void PrintTo(const TypeCase& c, std::ostream* os) { *os << type_name(c.type); }

class VecDotTest : public ::testing::TestWithParam<TypeCase> {};

TEST_P(VecDotTest, ScalarMatchesFloat64Reference) {
  const TypeCase& c = GetParam();
  const VecDotFn scalar = vec_dot_kernel(c.type, Isa::Scalar);
  ASSERT_NE(scalar, nullptr);
  for (const int64_t n : c.lengths) {
    for (uint32_t seed = 1; seed <= 3; ++seed) {
      const auto w = quantize_row(c.type, random_row(n, seed * 7919 + static_cast<uint32_t>(n)));
      const auto act = quantize_act(c.type, random_row(n, seed * 104729 + static_cast<uint32_t>(n)));
      const auto ref = reference_dot(c.type, n, w, act);
      const float got = scalar(n, w.data(), act.data());
      EXPECT_NEAR(got, ref.dot, kRelTol * ref.magnitude)
          << type_name(c.type) << " n=" << n << " seed=" << seed << " |dot|/Σ|wa|=" << std::fabs(ref.dot) / ref.magnitude;
    }
  }
}

TEST_P(VecDotTest, Avx2MatchesScalar) {
  const TypeCase& c = GetParam();
  if (!isa_available(Isa::Avx2)) GTEST_SKIP() << "this CPU lacks AVX2+FMA+F16C: only the scalar path exists";
  const VecDotFn scalar = vec_dot_kernel(c.type, Isa::Scalar);
  const VecDotFn fast = vec_dot_kernel(c.type, Isa::Avx2);
  ASSERT_NE(fast, scalar) << type_name(c.type) << " has no AVX2 kernel";
  for (const int64_t n : c.lengths) {
    for (uint32_t seed = 1; seed <= 3; ++seed) {
      const auto w = quantize_row(c.type, random_row(n, seed * 31 + static_cast<uint32_t>(n)));
      const auto act = quantize_act(c.type, random_row(n, seed * 131 + static_cast<uint32_t>(n)));
      const auto ref = reference_dot(c.type, n, w, act);
      const float s = scalar(n, w.data(), act.data());
      const float v = fast(n, w.data(), act.data());
      EXPECT_NEAR(v, s, kRelTol * ref.magnitude) << type_name(c.type) << " n=" << n << " seed=" << seed;
      EXPECT_NEAR(v, ref.dot, kRelTol * ref.magnitude) << type_name(c.type) << " n=" << n << " seed=" << seed;
    }
  }
}

// The dispatched entry point runs the best kernel; say which one, so a log shows the path tested.
TEST_P(VecDotTest, DispatchedKernelIsTheBestIsa) {
  const TypeCase& c = GetParam();
  const Isa isa = best_isa();
  EXPECT_EQ(vec_dot_kernel(c.type), vec_dot_kernel(c.type, isa));
  const int64_t n = c.lengths.back();
  const auto w = quantize_row(c.type, random_row(n, 5));
  const auto act = quantize_act(c.type, random_row(n, 6));
  EXPECT_EQ(vec_dot(c.type, n, w.data(), act.data()), vec_dot_kernel(c.type, isa)(n, w.data(), act.data()));
  RecordProperty("isa", isa_name(isa));
  std::cout << "[ path     ] " << type_name(c.type) << ": " << isa_name(isa) << "\n";
}

// Identical rows in a strided matrix: vec_dot_rows must equal one vec_dot per row.
TEST_P(VecDotTest, RowsVariantMatchesSingleRows) {
  const TypeCase& c = GetParam();
  const int64_t n = c.lengths.back();
  const size_t row_bytes = quant::row_bytes(c.type, n);
  const size_t stride = row_bytes + 64;  // padding between rows: the stride must be honoured
  constexpr int kRows = 5;
  std::vector<uint8_t> matrix(stride * kRows, 0xAB);
  std::vector<std::vector<uint8_t>> rows;
  for (int r = 0; r < kRows; ++r) {
    rows.push_back(quantize_row(c.type, random_row(n, 100 + r)));
    std::memcpy(matrix.data() + r * stride, rows.back().data(), row_bytes);
  }
  const auto act = quantize_act(c.type, random_row(n, 99));
  std::vector<float> y(kRows);
  vec_dot_rows(c.type, n, kRows, matrix.data(), stride, act.data(), y.data());
  for (int r = 0; r < kRows; ++r) EXPECT_EQ(y[r], vec_dot(c.type, n, rows[r].data(), act.data())) << "row " << r;
}

// One weight row × 7 activation rows (a fused chunk of 4, then 3) with a padded stride: the fused
// multi-row kernels must give exactly vec_dot's result for every activation row.
TEST_P(VecDotTest, MultiActivationVariantMatchesSingleRows) {
  const TypeCase& c = GetParam();
  const int64_t n = c.lengths.back();
  const auto w = quantize_row(c.type, random_row(n, 7));
  constexpr int kActs = 7;
  const size_t act_bytes = activation_row_bytes(c.type, n);
  const size_t stride = act_bytes + 32;
  std::vector<uint8_t> acts(stride * kActs, 0xCD);
  for (int j = 0; j < kActs; ++j) {
    const auto act = quantize_act(c.type, random_row(n, 200 + j));
    std::memcpy(acts.data() + j * stride, act.data(), act_bytes);
  }
  std::vector<float> y(kActs + 1, -1.0f);
  vec_dot_multi(c.type, n, w.data(), acts.data(), stride, kActs, y.data());
  for (int j = 0; j < kActs; ++j) {
    EXPECT_EQ(y[j], vec_dot(c.type, n, w.data(), acts.data() + j * stride)) << type_name(c.type) << " act row " << j;
  }
  EXPECT_EQ(y[kActs], -1.0f) << "wrote past n_act";
}

INSTANTIATE_TEST_SUITE_P(AllTypes, VecDotTest, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<TypeCase>& info) { return type_name(info.param.type); });

}  // namespace
}  // namespace peregrine::cpu::kernels
