// Per-format kernels behind peregrine::quant::dequantize / quantize (see quant_dispatch.cpp).
//
// Every block is accessed through byte arrays (alignment 1), so callers may pass any pointer:
// GGUF tensor data, mmap'ed files and freshly allocated buffers alike. Multi-byte fields are
// little-endian, which is what GGUF stores and what the host is (checked below).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace peregrine::quant::kernels {

static_assert(std::endian::native == std::endian::little, "block formats assume a little-endian host");

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, sizeof v); }
inline float load_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store_f32(uint8_t* p, float v) { std::memcpy(p, &v, sizeof v); }

// Dequantizes `n_blocks` consecutive blocks starting at `src` into n_blocks * block_elems floats.
using DequantizeBlocks = void (*)(const uint8_t* src, float* dst, int64_t n_blocks);
// Quantizes one row of `n_per_row` values (a multiple of the block size). `importance` is null
// or holds n_per_row weights (one per column).
using QuantizeRow = void (*)(const float* src, uint8_t* dst, int64_t n_per_row, const float* importance);

// quant_fp.cpp
void dequantize_f32(const uint8_t* src, float* dst, int64_t n);
void dequantize_f16(const uint8_t* src, float* dst, int64_t n);
void dequantize_bf16(const uint8_t* src, float* dst, int64_t n);
void quantize_f32(const float* src, uint8_t* dst, int64_t n, const float* importance);
void quantize_f16(const float* src, uint8_t* dst, int64_t n, const float* importance);
void quantize_bf16(const float* src, uint8_t* dst, int64_t n, const float* importance);

// quant_legacy.cpp (blocks of 32)
void dequantize_q4_0(const uint8_t* src, float* dst, int64_t n_blocks);
void dequantize_q4_1(const uint8_t* src, float* dst, int64_t n_blocks);
void dequantize_q5_0(const uint8_t* src, float* dst, int64_t n_blocks);
void dequantize_q5_1(const uint8_t* src, float* dst, int64_t n_blocks);
void dequantize_q8_0(const uint8_t* src, float* dst, int64_t n_blocks);
void quantize_q4_0(const float* src, uint8_t* dst, int64_t n, const float* importance);
void quantize_q4_1(const float* src, uint8_t* dst, int64_t n, const float* importance);
void quantize_q5_0(const float* src, uint8_t* dst, int64_t n, const float* importance);
void quantize_q5_1(const float* src, uint8_t* dst, int64_t n, const float* importance);
void quantize_q8_0(const float* src, uint8_t* dst, int64_t n, const float* importance);

// quant_kquants_low.cpp (super-blocks of 256 with 16-value sub-blocks)
void dequantize_q2_k(const uint8_t* src, float* dst, int64_t n_blocks);
void dequantize_q3_k(const uint8_t* src, float* dst, int64_t n_blocks);
void dequantize_q6_k(const uint8_t* src, float* dst, int64_t n_blocks);
void dequantize_q8_k(const uint8_t* src, float* dst, int64_t n_blocks);
void quantize_q2_k(const float* src, uint8_t* dst, int64_t n, const float* importance);
void quantize_q3_k(const float* src, uint8_t* dst, int64_t n, const float* importance);
void quantize_q6_k(const float* src, uint8_t* dst, int64_t n, const float* importance);
void quantize_q8_k(const float* src, uint8_t* dst, int64_t n, const float* importance);

// quant_kquants_mid.cpp (super-blocks of 256 with 32-value sub-blocks, scale and min)
void dequantize_q4_k(const uint8_t* src, float* dst, int64_t n_blocks);
void dequantize_q5_k(const uint8_t* src, float* dst, int64_t n_blocks);
void quantize_q4_k(const float* src, uint8_t* dst, int64_t n, const float* importance);
void quantize_q5_k(const float* src, uint8_t* dst, int64_t n, const float* importance);

// quant_iq4.cpp (non-linear 4-bit grid)
void dequantize_iq4_nl(const uint8_t* src, float* dst, int64_t n_blocks);
void dequantize_iq4_xs(const uint8_t* src, float* dst, int64_t n_blocks);
void quantize_iq4_nl(const float* src, uint8_t* dst, int64_t n, const float* importance);
void quantize_iq4_xs(const float* src, uint8_t* dst, int64_t n, const float* importance);

}  // namespace peregrine::quant::kernels
