// IEEE binary16 and bfloat16 conversions and the plain float row formats (F32, F16, BF16).
//
// Conversions are done with integer arithmetic so they are exact and independent of the FPU
// rounding mode and of compiler flags: fp16/bf16 -> fp32 is exact (subnormals included),
// fp32 -> fp16/bf16 rounds to nearest, ties to even, overflowing to infinity. NaN handling
// follows ggml: fp32 -> fp16 gives the canonical quiet NaN 0x7E00 (sign kept), fp32 -> bf16 keeps
// the payload's top bits and forces the quiet bit, fp16 -> fp32 returns a quiet NaN with the
// payload (what both ggml's software path and the F16C instruction produce).
#include <cstring>

#include "format/quant_kernels.h"
#include "peregrine/quant.h"

namespace peregrine::quant {
namespace {

float bits_to_float(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint32_t float_to_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

}  // namespace

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  const uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in float (mantissa < 2^10).
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return bits_to_float(sign | float_to_bits(magnitude));
  }
  if (exponent == 0x1F) {
    if (mantissa == 0) return bits_to_float(sign | 0x7F800000u);
    return bits_to_float(sign | 0x7FC00000u | (mantissa << 13));
  }
  return bits_to_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

uint16_t fp32_to_fp16(float f) {
  const uint32_t bits = float_to_bits(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return sign | 0x7E00u;  // NaN
  if (magnitude >= 0x38800000u) {
    // Normal half range (>= 2^-14) or overflow: rebias the exponent, round the 13 dropped bits.
    uint32_t half = (magnitude >> 13) - (112u << 10);
    const uint32_t dropped = magnitude & 0x1FFFu;
    if (dropped > 0x1000u || (dropped == 0x1000u && (half & 1u))) ++half;  // may carry into the exponent
    if (half >= 0x7C00u) return sign | 0x7C00u;                          // overflow (and infinity)
    return static_cast<uint16_t>(sign | half);
  }
  // Result is a half subnormal (or zero): value / 2^-24 rounded to nearest even.
  const uint32_t exponent = magnitude >> 23;
  if (exponent < 102) return sign;  // below 2^-25: rounds to zero (2^-25 itself ties to even zero)
  const uint32_t significand = (magnitude & 0x7FFFFFu) | 0x800000u;
  const uint32_t shift = 126 - exponent;  // 14..24
  uint32_t half = significand >> shift;
  const uint32_t remainder = significand & ((1u << shift) - 1);
  const uint32_t halfway = 1u << (shift - 1);
  if (remainder > halfway || (remainder == halfway && (half & 1u))) ++half;  // may become 0x400: smallest normal
  return static_cast<uint16_t>(sign | half);
}

float bf16_to_fp32(uint16_t h) { return bits_to_float(static_cast<uint32_t>(h) << 16); }

uint16_t fp32_to_bf16(float f) {
  const uint32_t bits = float_to_bits(f);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);  // quiet NaN
  // Adding 0x7FFF plus the lowest kept bit rounds to nearest, ties to even, and carries into inf.
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

namespace kernels {

void dequantize_f32(const uint8_t* src, float* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void dequantize_f16(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(load_u16(src + 2 * i));
}

void dequantize_bf16(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(load_u16(src + 2 * i));
}

void quantize_f32(const float* src, uint8_t* dst, int64_t n, const float*) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void quantize_f16(const float* src, uint8_t* dst, int64_t n, const float*) {
  for (int64_t i = 0; i < n; ++i) store_u16(dst + 2 * i, fp32_to_fp16(src[i]));
}

void quantize_bf16(const float* src, uint8_t* dst, int64_t n, const float*) {
  for (int64_t i = 0; i < n; ++i) store_u16(dst + 2 * i, fp32_to_bf16(src[i]));
}

}  // namespace kernels
}  // namespace peregrine::quant
