// The block decoding the CUDA kernels run (backend/cuda/cuda_quant_blocks.cuh), executed on the
// host: rows quantized with the project's quantizers, decoded group by group through the codecs,
// compared bit for bit with peregrine::quant::dequantize. Needs no GPU, so the decode math of
// every GPU kernel is checked on every machine.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_quant_blocks.cuh"
#include "peregrine/quant.h"
#include "peregrine/tensor_type.h"

namespace peregrine {
namespace {

using cuda::blocks::BlockCodec;

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

// Rows with a spread of magnitudes (tiny values reach f16 subnormals, a few rows carry outliers
// so the block scales vary), never all-zero blocks except one deliberate zero row.
std::vector<float> test_rows(int64_t n_rows, int64_t n_per_row, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n_rows * n_per_row));
  for (int64_t r = 0; r < n_rows; ++r) {
    const float scale = r == 0 ? 0.0f : std::pow(10.0f, static_cast<float>(r % 7) - 4.0f);
    for (int64_t i = 0; i < n_per_row; ++i) {
      float x = normal(rng) * scale;
      if (r % 3 == 2 && unit(rng) < 0.01f) x *= 30.0f;  // outliers
      v[static_cast<size_t>(r * n_per_row + i)] = x;
    }
  }
  return v;
}

// Quantizes, dequantizes with the reference and with the codec, and compares every value's bits.
template <TensorType kType>
void expect_codec_matches_reference(int64_t n_per_row, bool with_importance) {
  using Codec = BlockCodec<kType>;
  constexpr int64_t kRows = 9;
  const std::string type_name(tensor_type_info(kType).name);
  SCOPED_TRACE(type_name + " n_per_row=" + std::to_string(n_per_row) + (with_importance ? " imatrix" : ""));

  const std::vector<float> src = test_rows(kRows, n_per_row, 1234u + static_cast<uint32_t>(kType));
  std::vector<float> importance;
  if (with_importance) {
    std::mt19937 rng(99);
    std::uniform_real_distribution<float> dist(0.1f, 4.0f);
    importance.resize(static_cast<size_t>(n_per_row));
    for (auto& w : importance) w = dist(rng);
  }
  const size_t row_bytes = quant::row_bytes(kType, n_per_row);
  std::vector<uint8_t> packed(row_bytes * kRows);
  ASSERT_EQ(quant::quantize(kType, src.data(), packed.data(), kRows, n_per_row,
                            with_importance ? importance.data() : nullptr),
            packed.size());
  std::vector<float> expected(src.size());
  quant::dequantize(kType, packed.data(), expected.data(), static_cast<int64_t>(expected.size()));

  const int64_t full_blocks = n_per_row / Codec::kValues;
  int64_t mismatches = 0;
  for (int64_t r = 0; r < kRows; ++r) {
    const uint8_t* row = packed.data() + static_cast<size_t>(r) * row_bytes;
    const float* want = expected.data() + r * n_per_row;
    for (int64_t b = 0; b < full_blocks; ++b) {
      for (int g = 0; g < Codec::kGroups; ++g) {
        float got[8];
        Codec::decode8(row + b * Codec::kBytes, g, got);
        for (int k = 0; k < 8; ++k) {
          const int64_t i = b * Codec::kValues + g * 8 + k;
          if (bits_of(got[k]) != bits_of(want[i]) && ++mismatches <= 5)
            ADD_FAILURE() << "row " << r << " value " << i << ": codec " << got[k] << ", reference " << want[i];
        }
      }
    }
    if constexpr (Codec::kPlain) {
      // Single values, the tail included (a row need not be a multiple of 8 for plain types).
      for (int64_t i = 0; i < n_per_row; ++i) {
        const float got = Codec::value(row + (i / 8) * Codec::kBytes, static_cast<int>(i % 8));
        if (bits_of(got) != bits_of(want[i]) && ++mismatches <= 5)
          ADD_FAILURE() << "row " << r << " value " << i << " (single): codec " << got << ", reference " << want[i];
      }
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(CudaQuantBlocksHost, PlainTypes) {
  expect_codec_matches_reference<TensorType::F32>(1024, false);
  expect_codec_matches_reference<TensorType::F32>(515, false);  // tail of 3
  expect_codec_matches_reference<TensorType::F16>(1024, false);
  expect_codec_matches_reference<TensorType::F16>(517, false);
  expect_codec_matches_reference<TensorType::BF16>(1024, false);
  expect_codec_matches_reference<TensorType::BF16>(519, false);
}

TEST(CudaQuantBlocksHost, LegacyBlocks) {
  for (const bool imatrix : {false, true}) {
    expect_codec_matches_reference<TensorType::Q8_0>(1024, imatrix);
    expect_codec_matches_reference<TensorType::Q4_0>(1024, imatrix);
    expect_codec_matches_reference<TensorType::Q4_1>(1024, imatrix);
    expect_codec_matches_reference<TensorType::Q5_0>(1024, imatrix);
    expect_codec_matches_reference<TensorType::Q5_1>(1024, imatrix);
  }
  expect_codec_matches_reference<TensorType::Q8_0>(96, false);
}

TEST(CudaQuantBlocksHost, KQuants) {
  for (const bool imatrix : {false, true}) {
    expect_codec_matches_reference<TensorType::Q4_K>(1024, imatrix);
    expect_codec_matches_reference<TensorType::Q5_K>(1024, imatrix);
    expect_codec_matches_reference<TensorType::Q6_K>(1024, imatrix);
  }
}

TEST(CudaQuantBlocksHost, Iq4Xs) {
  expect_codec_matches_reference<TensorType::IQ4_XS>(1024, false);
  expect_codec_matches_reference<TensorType::IQ4_XS>(1024, true);
}

// Every grid entry (the packed-word table) against the format's definition.
TEST(CudaQuantBlocksHost, Iq4GridEntries) {
  const int grid[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  for (uint32_t i = 0; i < 16; ++i) EXPECT_EQ(cuda::blocks::iq4_grid(i), static_cast<float>(grid[i])) << i;
}

// Every f16 / bf16 bit pattern (subnormals, infinities and NaNs included) against the project's
// conversions, bit for bit.
TEST(CudaQuantBlocksHost, HalfConversionsAllPatterns) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint8_t bytes[2] = {static_cast<uint8_t>(h & 0xFF), static_cast<uint8_t>(h >> 8)};
    ASSERT_EQ(bits_of(cuda::blocks::half_at(bytes)), bits_of(quant::fp16_to_fp32(static_cast<uint16_t>(h))))
        << "f16 0x" << std::hex << h;
    ASSERT_EQ(bits_of(cuda::blocks::bf16_at(bytes)), bits_of(quant::bf16_to_fp32(static_cast<uint16_t>(h))))
        << "bf16 0x" << std::hex << h;
  }
}

}  // namespace
}  // namespace peregrine
