// The CPU matrix product on every weight encoding, against float64 dot products with ggml's own
// dequantization of the same bytes (tests/data/quant-blocks, 256 rows of 256 values).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <cstring>
#include <string>

#include "peregrine/backend.h"
#include "peregrine/error.h"
#include "peregrine/tensor_type.h"
#include "test_cpu_ops_util.h"

namespace peregrine {
namespace {

const std::filesystem::path kBlocks = std::filesystem::path(PEREGRINE_TEST_DATA_DIR) / "quant-blocks";

std::vector<uint8_t> read_bytes(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  EXPECT_TRUE(f.good()) << p;
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::vector<float> read_f32(const std::filesystem::path& p) {
  auto b = read_bytes(p);
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}

WeightView view_of(const std::vector<uint8_t>& bytes, TensorType type, int64_t n_in, int64_t n_out) {
  WeightView w;
  w.type = type;
  w.data = bytes.data();
  w.n_in = n_in;
  w.n_out = n_out;
  w.row_bytes = tensor_bytes(tensor_type_info(type), n_in);
  w.name = "test";
  return w;
}

class CpuMatmul : public ::testing::TestWithParam<std::string> {};

TEST_P(CpuMatmul, MatchesFloat64DotOfGgmlDequantization) {
  const std::string name = GetParam();
  const int64_t n = 256, T = 3;
  const auto type = tensor_type_from_name(name);
  ASSERT_TRUE(type.has_value()) << name;
  const auto bytes = read_bytes(kBlocks / (name + ".bin"));
  const auto deq = read_f32(kBlocks / (name + ".f32"));
  ASSERT_EQ(deq.size(), size_t(n * n));
  ASSERT_EQ(bytes.size(), tensor_bytes(tensor_type_info(*type), n * n));
  const WeightView w = view_of(bytes, *type, n, n);
  const auto x = test::random_floats(T * n, 77);

  auto be = make_cpu_backend(1);
  std::vector<float> y(T * n);
  be->matmul(w, x.data(), y.data(), T);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = 0; r < n; ++r) {
      double ref = 0, mag = 0;
      for (int64_t i = 0; i < n; ++i) {
        ref += double(deq[r * n + i]) * x[t * n + i];
        mag += std::abs(double(deq[r * n + i]) * x[t * n + i]);
      }
      ASSERT_NEAR(y[t * n + r], ref, 1e-6 * mag + 1e-7) << name << " token " << t << " row " << r;
    }

  // A row block (an expert of a stacked tensor) is the same rows.
  std::vector<float> y_block(T * 16);
  be->matmul(w.rows(100, 16), x.data(), y_block.data(), T);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = 0; r < 16; ++r) EXPECT_EQ(y_block[t * 16 + r], y[t * n + 100 + r]);

  // Embedding lookup dequantizes exactly like ggml.
  const std::vector<int32_t> ids = {5, 0, 255};
  std::vector<float> rows(ids.size() * n);
  be->get_rows(w, ids, rows.data());
  for (size_t k = 0; k < ids.size(); ++k)
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(rows[k * n + i], deq[ids[k] * n + i]) << name << " row " << ids[k];

  // Splitting the rows over threads changes no bit.
  auto be3 = make_cpu_backend(3);
  std::vector<float> y3(T * n);
  be3->matmul(w, x.data(), y3.data(), T);
  EXPECT_EQ(y3, y);
}

INSTANTIATE_TEST_SUITE_P(QuantTypes, CpuMatmul,
                         ::testing::Values("f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_K", "q3_K",
                                           "q4_K", "q5_K", "q6_K", "iq4_nl", "iq4_xs"),
                         [](const auto& info) { return info.param; });

TEST(CpuMatmulF32, MatchesFloat64AndChecksTokenIds) {
  const int64_t n = 256, T = 2;
  const auto src = read_f32(kBlocks / "source.f32");
  std::vector<uint8_t> bytes(src.size() * 4);
  std::memcpy(bytes.data(), src.data(), bytes.size());
  const WeightView w = view_of(bytes, TensorType::F32, n, n);
  const auto x = test::random_floats(T * n, 78);
  auto be = make_cpu_backend(2);
  std::vector<float> y(T * n);
  be->matmul(w, x.data(), y.data(), T);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = 0; r < n; ++r) {
      double ref = 0, mag = 0;
      for (int64_t i = 0; i < n; ++i) {
        ref += double(src[r * n + i]) * x[t * n + i];
        mag += std::abs(double(src[r * n + i]) * x[t * n + i]);
      }
      ASSERT_NEAR(y[t * n + r], ref, 1e-6 * mag + 1e-7);
    }
  std::vector<float> out(n);
  const std::vector<int32_t> bad = {256};
  EXPECT_THROW(be->get_rows(w, bad, out.data()), Error);
}

}  // namespace
}  // namespace peregrine
