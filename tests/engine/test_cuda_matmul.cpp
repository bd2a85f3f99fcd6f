// CudaBackend::matmul against the CPU backend, for every supported weight type,
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
//
// GEMV versions (cuda_gemv.h), each run directly for every type it supports × 1..9 tokens:
//   v1, v2 against the float path: 1e-4·m as above.
//   v3 against the CPU's Quantized8 path (the same activation bytes and integers): 2e-5·m, float
//     summation order only (parts of at most 2048 values: ≤ 128 terms per output).
//   v3 against the float path: Σ_j |W[r][j]|·h_j + 1e-4·m, where h_j = amax/254 of x[t][j]'s
//     activation block (half a quantization step of the activation, 256 values for K-quants and
//     IQ4_XS, 32 for Q8_0).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#if PEREGRINE_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_gemv.h"
#endif
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

// Half a quantization step of each activation value in 8-bit blocks of `block` values (0: none).
std::vector<double> activation_half_steps(const std::vector<float>& x, int64_t n_in, int block) {
  std::vector<double> h(x.size(), 0.0);
  if (block == 0) return h;
  for (size_t b = 0; b < x.size(); b += static_cast<size_t>(block)) {
    double amax = 0.0;
    for (int j = 0; j < block; ++j) amax = std::max(amax, std::abs(static_cast<double>(x[b + j])));
    for (int j = 0; j < block; ++j) h[b + j] = amax / 254.0;
  }
  (void)n_in;
  return h;
}

// Every output element of `actual` against `expected` (both [n_tokens][view rows]): |a − e| ≤
// rel_tol·Σ_j|W·x| + Σ_j|W|·h_j (h from activation_half_steps with `act_block`).
void expect_outputs_match(const std::vector<float>& actual, const std::vector<float>& expected, const TestWeight& w,
                          int64_t first_row, int64_t n_in, int64_t n_out, const std::vector<float>& x,
                          int64_t n_tokens, double rel_tol, int act_block) {
  const std::vector<double> half_step = activation_half_steps(x, n_in, act_block);
  int64_t failures = 0;
  double worst = 0.0;  // largest error / magnitude seen
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < n_out; ++r) {
      double magnitude = 0.0, rounding = 0.0;
      const float* wrow = w.dequantized.data() + (first_row + r) * n_in;
      for (int64_t j = 0; j < n_in; ++j) {
        magnitude += std::abs(static_cast<double>(wrow[j]) * x[t * n_in + j]);
        rounding += std::abs(static_cast<double>(wrow[j])) * half_step[t * n_in + j];
      }
      const double a = actual[t * n_out + r], e = expected[t * n_out + r], err = std::abs(a - e);
      const double bound = rel_tol * magnitude + rounding + 1e-30;
      if (!(err <= bound) && ++failures <= 5)  // NaN (an unwritten output) fails too
        ADD_FAILURE() << "y[" << t << "][" << r << "] = " << a << ", CPU " << e << ", bound " << bound;
      if (magnitude > 0) worst = std::max(worst, std::isnan(err) ? INFINITY : err / magnitude);
    }
  }
  EXPECT_EQ(failures, 0) << failures << " of " << n_tokens * n_out << " outputs off; worst error/magnitude "
                         << worst << " (bound " << rel_tol << (act_block ? " + activation rounding" : "") << ")";
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
  expect_outputs_match(actual, expected, w, first_row, n_in, n_out, x, n_tokens, rel_tol, 0);
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
// The 32-value legacy types (GEMV v1 and the cuBLAS path); the tiny-quant fixture has Q5_0.
TEST_F(CudaMatmulTest, Q4_0) { check_type(TensorType::Q4_0, kBlock32Shapes); }
TEST_F(CudaMatmulTest, Q4_1) { check_type(TensorType::Q4_1, kBlock32Shapes); }
TEST_F(CudaMatmulTest, Q5_0) { check_type(TensorType::Q5_0, kBlock32Shapes); }
TEST_F(CudaMatmulTest, Q5_1) { check_type(TensorType::Q5_1, kBlock32Shapes); }

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

#if PEREGRINE_HAVE_CUDA
// ---- GEMV versions, run directly ----

constexpr double kQ8ExactRelTol = 2e-5;

class CudaGemvVersionTest : public CudaMatmulTest {
 protected:
  void SetUp() override {
    CudaMatmulTest::SetUp();
    if (IsSkipped()) return;
    cpu_q8 = make_cpu_backend(1, ActivationMode::Quantized8);
    cuda_gpu = dynamic_cast<cuda::CudaBackend*>(gpu.get());
    ASSERT_NE(cuda_gpu, nullptr);
  }

  // Every type the version supports (others must report no support) × 1..9 tokens.
  void check_version(cuda::GemvVersion v) {
    const TensorType types[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0,
                                TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::IQ4_XS};
    int checked_types = 0;
    for (const TensorType type : types) {
      const bool plain = tensor_type_info(type).block_elems == 1;
      const bool block32 = type == TensorType::Q8_0;
      // 300 rows: partial CTAs. 2048 values: several units / steps per row; 512: fewer units than lanes.
      const std::vector<Shape> shapes = plain ? std::vector<Shape>{{300, 1024}, {45, 512}}
                                        : block32 ? std::vector<Shape>{{300, 2048}, {37, 256}}
                                                  : std::vector<Shape>{{300, 2048}, {37, 768}};
      uint32_t seed = 500u + static_cast<uint32_t>(type) * 37u + static_cast<uint32_t>(v);
      bool any = false;
      for (const Shape& s : shapes) {
        const TestWeight w = make_weight(*gpu, type, s, seed++);
        if (!cuda::gemv_supports(v, w.gpu_view)) continue;
        any = true;
        for (int64_t n_tokens = 1; n_tokens <= kLastGemvTokens; ++n_tokens) {
          SCOPED_TRACE(std::string(cuda::gemv_version_name(v)) + " " + std::string(tensor_type_info(type).name) + " " +
                       std::to_string(s.n_out) + "x" + std::to_string(s.n_in) + " tokens=" + std::to_string(n_tokens));
          check_one(v, w, n_tokens, seed++);
        }
      }
      checked_types += any ? 1 : 0;
    }
    EXPECT_GE(checked_types, 5) << "the version supports too few types";
  }

  void check_one(cuda::GemvVersion v, const TestWeight& w, int64_t n_tokens, uint32_t seed) {
    const WeightView& view = w.cpu_view;
    const std::vector<float> x = cuda_random(static_cast<size_t>(n_tokens * view.n_in), seed, 2.0f);
    const BackendArray<float> x_gpu = to_backend(*gpu, x);
    BackendArray<float> y_gpu = poisoned(*gpu, n_tokens * view.n_out);
    cuda::run_gemv(*cuda_gpu, v, w.gpu_view, x_gpu.data(), y_gpu.data(), n_tokens);
    const std::vector<float> actual = to_host(*gpu, y_gpu);

    std::vector<float> expected_float(static_cast<size_t>(n_tokens * view.n_out));
    cpu_float->matmul(view, x.data(), expected_float.data(), n_tokens);
    if (v != cuda::GemvVersion::V3) {
      expect_outputs_match(actual, expected_float, w, 0, view.n_in, view.n_out, x, n_tokens, kGemvRelTol, 0);
      return;
    }
    std::vector<float> expected_q8(expected_float.size());
    cpu_q8->matmul(view, x.data(), expected_q8.data(), n_tokens);
    expect_outputs_match(actual, expected_q8, w, 0, view.n_in, view.n_out, x, n_tokens, kQ8ExactRelTol, 0);
    const int act_block = view.type == TensorType::Q8_0 ? 32 : 256;
    expect_outputs_match(actual, expected_float, w, 0, view.n_in, view.n_out, x, n_tokens, kGemvRelTol, act_block);
  }

  std::unique_ptr<Backend> cpu_q8;
  cuda::CudaBackend* cuda_gpu = nullptr;
};

TEST_F(CudaGemvVersionTest, V1) { check_version(cuda::GemvVersion::V1); }
TEST_F(CudaGemvVersionTest, V2) { check_version(cuda::GemvVersion::V2); }
TEST_F(CudaGemvVersionTest, V3) { check_version(cuda::GemvVersion::V3); }

// A version without a kernel for the weight throws from run_gemv, and the automatic choice falls
// back to one that has a kernel.
TEST_F(CudaGemvVersionTest, UnsupportedVersionThrowsAndChoiceFallsBack) {
  const TestWeight f16 = make_weight(*gpu, TensorType::F16, {16, 256}, 9u);
  EXPECT_FALSE(cuda::gemv_supports(cuda::GemvVersion::V3, f16.gpu_view));
  BackendArray<float> x(*gpu, 256), y(*gpu, 16);
  EXPECT_THROW(cuda::run_gemv(*cuda_gpu, cuda::GemvVersion::V3, f16.gpu_view, x.data(), y.data(), 1), Error);
  const TestWeight q6 = make_weight(*gpu, TensorType::Q6_K, {16, 256}, 10u);
  EXPECT_FALSE(cuda::gemv_supports(cuda::GemvVersion::V2, q6.gpu_view));
  EXPECT_TRUE(cuda::gemv_supports(cuda::GemvVersion::V1, q6.gpu_view));
  for (const TestWeight* w : {&f16, &q6})
    for (int64_t n_tokens = 1; n_tokens <= kLastGemvTokens; ++n_tokens)
      EXPECT_TRUE(cuda::gemv_supports(cuda::choose_gemv_version(w->gpu_view, n_tokens), w->gpu_view));
}
#endif  // PEREGRINE_HAVE_CUDA

}  // namespace
}  // namespace peregrine::test
