// The 8-bit activation math of the GEMV v3 kernels (backend/cuda/cuda_vec_dot_q8.cuh), executed
// on the host (dp4a emulated) and compared with the CPU backend's Quantized8 path, which matches
// ggml:
//   - the activation quantizers give the CPU's bytes (quantize_activations), every block;
//   - the integer part sums, combined once per block, give the CPU scalar vec_dot of that block
//     bit for bit, and summed over a row in order, the CPU scalar vec_dot of the row bit for bit;
//   - the GPU's order (each part combined to float, floats summed) stays within a stated bound:
//     every part's float carries at most 3 roundings of relative 2^-24 on its own magnitude, plus
//     the sum's roundings, so |gpu − cpu| ≤ 16·2^-24·Σ_parts |part value| + 1e-30;
//   - the f16 rounding used for Q8_0 scales equals quant::fp32_to_fp16 across the float range.
// Needs no GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/kernels/vec_dot.h"
#include "backend/cuda/cuda_vec_dot_q8.cuh"
#include "peregrine/quant.h"
#include "peregrine/tensor_type.h"

namespace peregrine {
namespace {

namespace kernels = cpu::kernels;
using cuda::q8::PartSums;
using cuda::q8::Q8Dot;

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

// Values with a spread of magnitudes per row, some outliers, one all-zero row and exact ties of
// the largest magnitude with both signs (the Q8_K scale takes the first one's sign).
std::vector<float> test_values(int64_t n_rows, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n_rows * n));
  for (int64_t r = 0; r < n_rows; ++r) {
    const float scale = r == 0 ? 0.0f : std::pow(10.0f, static_cast<float>(r % 5) - 2.0f);
    for (int64_t i = 0; i < n; ++i) {
      float x = normal(rng) * scale;
      if (unit(rng) < 0.01f) x *= 20.0f;
      v[static_cast<size_t>(r * n + i)] = x;
    }
    if (r % 4 == 3 && n >= 64) {  // a tie of the largest magnitude, the negative one first
      v[static_cast<size_t>(r * n + 5)] = -100.0f * scale;
      v[static_cast<size_t>(r * n + 40)] = 100.0f * scale;
    }
  }
  return v;
}

std::string hex_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return "first difference at byte " + std::to_string(i) + ": " + std::to_string(a[i]) +
                             " vs " + std::to_string(b[i]);
  return "equal";
}

// ---- quantizers ----

TEST(CudaVecDotHost, Q8KQuantizerMatchesCpu) {
  constexpr int64_t kRows = 12, kN = 1024;
  const std::vector<float> x = test_values(kRows, kN, 1u);
  for (int64_t r = 0; r < kRows; ++r) {
    std::vector<uint8_t> cpu(kernels::activation_row_bytes(TensorType::Q4_K, kN)), ours(cpu.size());
    kernels::quantize_activations(TensorType::Q4_K, x.data() + r * kN, kN, cpu.data(), kernels::Isa::Scalar);
    for (int64_t b = 0; b < kN / 256; ++b)
      cuda::q8::quantize_block_q8k(x.data() + r * kN + 256 * b, ours.data() + cuda::q8::kQ8KBytes * b);
    EXPECT_EQ(ours, cpu) << "row " << r << ": " << hex_diff(ours, cpu);
  }
}

TEST(CudaVecDotHost, Q8_0QuantizerMatchesCpu) {
  constexpr int64_t kRows = 12, kN = 512;
  const std::vector<float> x = test_values(kRows, kN, 2u);
  for (int64_t r = 0; r < kRows; ++r) {
    std::vector<uint8_t> cpu(kernels::activation_row_bytes(TensorType::Q8_0, kN)), ours(cpu.size());
    kernels::quantize_activations(TensorType::Q8_0, x.data() + r * kN, kN, cpu.data());
    for (int64_t b = 0; b < kN / 32; ++b)
      cuda::q8::quantize_block_q8_0(x.data() + r * kN + 32 * b, ours.data() + cuda::q8::kQ8_0Bytes * b);
    EXPECT_EQ(ours, cpu) << "row " << r << ": " << hex_diff(ours, cpu);
  }
}

TEST(CudaVecDotHost, HalfRoundingMatchesReference) {
  int64_t failures = 0;
  // Every 97th float bit pattern (all exponents, both signs), plus exact ties around subnormals.
  for (uint64_t bits = 0; bits <= 0xFFFFFFFFull; bits += 97) {
    float f;
    const uint32_t b32 = static_cast<uint32_t>(bits);
    std::memcpy(&f, &b32, sizeof f);
    if (std::isnan(f)) continue;
    const uint32_t ours = cuda::q8::float_to_half_bits(f), ref = quant::fp32_to_fp16(f);
    if (ours != ref && ++failures <= 5) ADD_FAILURE() << "bits " << b32 << ": " << ours << " vs " << ref;
  }
  for (const float f : {0x1p-25f, 0x1.8p-25f, 0x1p-24f, 0x1.8p-24f, 0x1.4p-23f, 65504.0f, 65519.99f, 65520.0f}) {
    EXPECT_EQ(cuda::q8::float_to_half_bits(f), quant::fp32_to_fp16(f)) << f;
    EXPECT_EQ(cuda::q8::float_to_half_bits(-f), quant::fp32_to_fp16(-f)) << -f;
  }
  EXPECT_EQ(failures, 0);
}

TEST(CudaVecDotHost, Dp4aAndByteHelpers) {
  std::mt19937 rng(3);
  for (int i = 0; i < 10000; ++i) {
    const int a = static_cast<int>(rng()), b = static_cast<int>(rng()), c = static_cast<int>(rng() % 100000);
    int expected = c;
    for (int k = 0; k < 4; ++k)
      expected += static_cast<int8_t>((static_cast<uint32_t>(a) >> (8 * k)) & 0xFF) *
                  static_cast<int8_t>((static_cast<uint32_t>(b) >> (8 * k)) & 0xFF);
    ASSERT_EQ(cuda::q8::dp4a(a, b, c), expected);
    const int codes = static_cast<int>(rng() & 0x3F3F3F3Fu);  // bytes < 64
    const int shifted = cuda::q8::minus_32_bytes(codes);
    for (int k = 0; k < 4; ++k)
      ASSERT_EQ(static_cast<int8_t>(static_cast<uint32_t>(shifted) >> (8 * k)),
                static_cast<int>((static_cast<uint32_t>(codes) >> (8 * k)) & 0xFF) - 32);
  }
}

// ---- block dot products ----

struct DotCase {
  std::vector<uint8_t> weights;      // n_rows rows of quantized weights
  std::vector<uint8_t> activations;  // n_rows rows in the CPU's activation format
  uint64_t weight_row_bytes = 0, act_row_bytes = 0;
};

DotCase make_case(TensorType type, int64_t n_rows, int64_t n, uint32_t seed) {
  DotCase c;
  const std::vector<float> w = test_values(n_rows, n, seed), x = test_values(n_rows, n, seed + 1000);
  c.weight_row_bytes = quant::row_bytes(type, n);
  c.weights.resize(c.weight_row_bytes * static_cast<uint64_t>(n_rows));
  quant::quantize(type, w.data(), c.weights.data(), n_rows, n);
  c.act_row_bytes = kernels::activation_row_bytes(type, n);
  c.activations.resize(c.act_row_bytes * static_cast<uint64_t>(n_rows));
  for (int64_t r = 0; r < n_rows; ++r)
    kernels::quantize_activations(type, x.data() + r * n, n, c.activations.data() + r * c.act_row_bytes);
  return c;
}

template <TensorType kType>
void check_type() {
  using Dot = Q8Dot<kType>;
  constexpr int64_t kRows = 16, kN = 8 * 256;  // 8 super-blocks, 64 Q8_0 blocks per row
  const DotCase c = make_case(kType, kRows, kN, 10u + static_cast<uint32_t>(kType));
  const kernels::VecDotFn cpu_dot = kernels::vec_dot_kernel(kType, kernels::Isa::Scalar);
  ASSERT_NE(cpu_dot, nullptr);
  ASSERT_EQ(c.weight_row_bytes, static_cast<uint64_t>(kN / Dot::kValues * Dot::kWeightBytes));
  ASSERT_EQ(c.act_row_bytes, static_cast<uint64_t>(kN / Dot::kValues * Dot::kActBytes));
  int64_t nonzero = 0;
  for (int64_t r = 0; r < kRows; ++r) {
    const uint8_t* wrow = c.weights.data() + r * c.weight_row_bytes;
    const uint8_t* arow = c.activations.data() + r * c.act_row_bytes;
    float exact_row = 0.0f, gpu_order = 0.0f;
    double magnitude = 0.0;
    for (int64_t b = 0; b < kN / Dot::kValues; ++b) {
      const uint8_t* wb = wrow + b * Dot::kWeightBytes;
      const uint8_t* ab = arow + b * Dot::kActBytes;
      const float exact = cuda::q8::block_dot_exact<kType>(wb, ab);
      const float cpu_block = cpu_dot(Dot::kValues, wb, ab);
      // The CPU's row sum starts at +0, which turns a block's −0 into +0.
      ASSERT_EQ(bits_of(0.0f + exact), bits_of(cpu_block)) << "row " << r << " block " << b << ": " << exact << " vs "
                                                    << cpu_block;
      exact_row += exact;
      for (int p = 0; p < Dot::kParts; ++p) {
        const float part = Dot::combine(wb, ab, Dot::part(wb, ab, p));
        gpu_order += part;
        magnitude += std::abs(static_cast<double>(part));
      }
    }
    const float cpu_row = cpu_dot(kN, wrow, arow);
    EXPECT_EQ(bits_of(exact_row), bits_of(cpu_row)) << "row " << r << ": " << exact_row << " vs " << cpu_row;
    const double bound = 16.0 * 0x1p-24 * magnitude + 1e-30;
    EXPECT_LE(std::abs(static_cast<double>(gpu_order) - cpu_row), bound) << "row " << r;
    if (cpu_row != 0.0f) ++nonzero;
  }
  EXPECT_GE(nonzero, kRows - 2);  // the comparison is not vacuous (row 0 is all zero)
}

TEST(CudaVecDotHost, Q4_K) { check_type<TensorType::Q4_K>(); }
TEST(CudaVecDotHost, Q5_K) { check_type<TensorType::Q5_K>(); }
TEST(CudaVecDotHost, Q6_K) { check_type<TensorType::Q6_K>(); }
TEST(CudaVecDotHost, IQ4_XS) { check_type<TensorType::IQ4_XS>(); }
TEST(CudaVecDotHost, Q8_0) { check_type<TensorType::Q8_0>(); }

}  // namespace
}  // namespace peregrine
