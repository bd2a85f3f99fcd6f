// CudaBackend::matmul against the CPU backend's float path, for every supported weight type,
// 1..33 activation rows (the GEMV family up to 9 tokens, the dequantize + cuBLAS path above) and
// shapes that exercise partial warps (n_out not a multiple of the rows per CTA), several
// shared-memory tiles per row, rows that are not 16-byte aligned (34- and 210-byte blocks) and,
// for plain types, rows whose length is not a multiple of 8.
//
// Bounds, per element of y[t][r], relative to m = Σ_j |W[r][j]·x[t][j]| (the scale of the
// rounding error of any summation order):
//   GEMV (≤ 9 tokens): 1e-4·m. Both sides multiply the same exactly decoded weights in float;
//     only the summation order differs (n ≤ 2048 terms: worst case ~n·2^-24·m ≈ 1.2e-4·m for a
//     sequential sum, far less for the GPU's 32-way split; observed errors are ~1e-6·m).
//   cuBLAS (> 9 tokens): 2e-3·m. TF32 tensor cores round both inputs to 10 mantissa bits (relative
//     2^-11 each), so every product carries up to ~2^-10 relative error: at most ~1e-3·m in total.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "peregrine/backend.h"
#include "peregrine/error.h"
#include "peregrine/quant.h"

namespace peregrine::test {
namespace {

constexpr double kGemvRelTol = 1e-4;
constexpr double kCublasRelTol = 2e-3;
constexpr int64_t kLastGemvTokens = 9;

struct Shape {
  int64_t n_out, n_in;
};

// A quantized weight matrix held twice: host bytes (what the CPU backend reads) and the GPU copy.
struct TestWeight {
  std::vector<uint8_t> bytes;
  std::vector<float> dequantized;  // for the error bound
  WeightView cpu_view, gpu_view;
};

TestWeight make_weight(Backend& gpu, TensorType type, Shape s, uint32_t seed) {
  TestWeight w;
  const std::vector<float> values = cuda_random(static_cast<size_t>(s.n_out * s.n_in), seed);
  const uint64_t row_bytes = quant::row_bytes(type, s.n_in);
  w.bytes.resize(row_bytes * static_cast<uint64_t>(s.n_out));
  quant::quantize(type, values.data(), w.bytes.data(), s.n_out, s.n_in);
  w.dequantized.resize(values.size());
  quant::dequantize(type, w.bytes.data(), w.dequantized.data(), static_cast<int64_t>(values.size()));
  w.cpu_view = WeightView{type, w.bytes.data(), s.n_in, s.n_out, row_bytes, "test.weight"};
  w.gpu_view = w.cpu_view;
  w.gpu_view.data = gpu.place_weights(w.bytes.data(), w.bytes.size(), "test.weight");
  return w;
}

// Runs both backends on `view` (rows [first_row, first_row + view.n_out) of `w`) and checks every
// output element.
void expect_matmul_matches(Backend& gpu, Backend& cpu, const TestWeight& w, const WeightView& cpu_view,
                           const WeightView& gpu_view, int64_t first_row, int64_t n_tokens, uint32_t seed) {
  const int64_t n_in = cpu_view.n_in, n_out = cpu_view.n_out;
  const std::vector<float> x = cuda_random(static_cast<size_t>(n_tokens * n_in), seed, 2.0f);

  std::vector<float> expected(static_cast<size_t>(n_tokens * n_out));
  cpu.matmul(cpu_view, x.data(), expected.data(), n_tokens);

  const BackendArray<float> x_gpu = to_backend(gpu, x);
  BackendArray<float> y_gpu = poisoned(gpu, n_tokens * n_out);
  gpu.matmul(gpu_view, x_gpu.data(), y_gpu.data(), n_tokens);
  const std::vector<float> actual = to_host(gpu, y_gpu);

  const double rel_tol = n_tokens <= kLastGemvTokens ? kGemvRelTol : kCublasRelTol;
  int64_t failures = 0;
  double worst = 0.0;  // largest error / magnitude seen
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < n_out; ++r) {
      double magnitude = 0.0;
      const float* wrow = w.dequantized.data() + (first_row + r) * n_in;
      for (int64_t j = 0; j < n_in; ++j) magnitude += std::abs(static_cast<double>(wrow[j]) * x[t * n_in + j]);
      const double a = actual[t * n_out + r], e = expected[t * n_out + r], err = std::abs(a - e);
      const double bound = rel_tol * magnitude + 1e-30;
      if (!(err <= bound) && ++failures <= 5)  // NaN (an unwritten output) fails too
        ADD_FAILURE() << "y[" << t << "][" << r << "] = " << a << ", CPU " << e << ", bound " << bound;
      if (magnitude > 0) worst = std::max(worst, std::isnan(err) ? INFINITY : err / magnitude);
    }
  }
  EXPECT_EQ(failures, 0) << failures << " of " << n_tokens * n_out << " outputs off; worst error/magnitude "
                         << worst << " (bound " << rel_tol << ")";
}

class CudaMatmulTest : public CudaTest {
 protected:
  void SetUp() override {
    CudaTest::SetUp();
    if (IsSkipped()) return;
    cpu_float = make_cpu_backend(1, ActivationMode::Float);
  }

  void check_type(TensorType type, const std::vector<Shape>& shapes) {
    uint32_t seed = 100u + static_cast<uint32_t>(type);
    for (const Shape& s : shapes) {
      const TestWeight w = make_weight(*gpu, type, s, seed++);
      for (const int64_t n_tokens : {1, 2, 3, 4, 5, 8, 9, 16, 33}) {
        SCOPED_TRACE(std::string(tensor_type_info(type).name) + " " + std::to_string(s.n_out) + "x" +
                     std::to_string(s.n_in) + " tokens=" + std::to_string(n_tokens));
        expect_matmul_matches(*gpu, *cpu_float, w, w.cpu_view, w.gpu_view, 0, n_tokens, seed++);
      }
    }
  }

  std::unique_ptr<Backend> cpu_float;
};

// 300 rows: not a multiple of the 16 rows a CTA computes. 2048 values: several shared-memory tiles
// per row. The small shape has rows whose start is not 16-byte aligned for 34-/210-byte blocks.
const std::vector<Shape> kBlock32Shapes = {{300, 2048}, {37, 96}};
const std::vector<Shape> kBlock256Shapes = {{300, 2048}, {37, 768}};
const std::vector<Shape> kPlainShapes = {{300, 1024}, {45, 515}};  // 515: a partial group of 3

TEST_F(CudaMatmulTest, F32) { check_type(TensorType::F32, kPlainShapes); }
TEST_F(CudaMatmulTest, F16) { check_type(TensorType::F16, kPlainShapes); }
TEST_F(CudaMatmulTest, BF16) { check_type(TensorType::BF16, kPlainShapes); }
TEST_F(CudaMatmulTest, Q8_0) { check_type(TensorType::Q8_0, kBlock32Shapes); }
TEST_F(CudaMatmulTest, Q4_K) { check_type(TensorType::Q4_K, kBlock256Shapes); }
TEST_F(CudaMatmulTest, Q5_K) { check_type(TensorType::Q5_K, kBlock256Shapes); }
TEST_F(CudaMatmulTest, Q6_K) { check_type(TensorType::Q6_K, kBlock256Shapes); }
TEST_F(CudaMatmulTest, IQ4_XS) { check_type(TensorType::IQ4_XS, kBlock256Shapes); }

// A row range of a larger matrix (the gate / up halves of a fused tensor): the view starts
// mid-allocation, at an odd offset for Q8_0 rows of 34·3 bytes.
TEST_F(CudaMatmulTest, RowSubViews) {
  for (const TensorType type : {TensorType::Q8_0, TensorType::Q6_K, TensorType::F16}) {
    const Shape s = type == TensorType::Q8_0 ? Shape{300, 96} : Shape{300, 768};
    const TestWeight w = make_weight(*gpu, type, s, 7u);
    for (const int64_t n_tokens : {1, 7, 16}) {
      SCOPED_TRACE(std::string(tensor_type_info(type).name) + " rows 5..205, tokens=" + std::to_string(n_tokens));
      expect_matmul_matches(*gpu, *cpu_float, w, w.cpu_view.rows(5, 200), w.gpu_view.rows(5, 200), 5, n_tokens, 11u);
    }
  }
}

// Types without a GPU codec fail loudly, naming the type and the tensor.
TEST_F(CudaMatmulTest, UnsupportedTypeThrows) {
  const TestWeight w = make_weight(*gpu, TensorType::Q2_K, {16, 256}, 3u);
  BackendArray<float> x(*gpu, 256), y(*gpu, 16);
  WeightView view = w.gpu_view;
  view.name = "blk.0.ffn_down.weight";
  try {
    gpu->matmul(view, x.data(), y.data(), 1);
    FAIL() << "expected peregrine::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("q2_K"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("blk.0.ffn_down.weight"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace peregrine::test
