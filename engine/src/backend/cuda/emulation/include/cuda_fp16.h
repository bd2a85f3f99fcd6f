// The CUDA emulator's cuda_fp16.h: __half with CUDA's conversions (round to nearest even), built
// on the engine's own binary16 helpers (quant::fp32_to_fp16 / fp16_to_fp32). Only the part of
// the real header the backend uses. Emulation build only (docs/cuda.md).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "cuda_emulator_device.h"

namespace peregrine::quant {
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
}  // namespace peregrine::quant

struct __align__(2) __half {
  unsigned short __x;
  __half() = default;
  __half(float f);  // NOLINT: implicit like CUDA's
  operator float() const;
};

struct __align__(4) __half2 {
  __half x, y;
};

typedef __half half;
typedef __half2 half2;

inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline __half __ushort_as_half(unsigned short bits) {
  __half h;
  h.__x = bits;
  return h;
}
inline float __half2float(__half h) { return ::peregrine::quant::fp16_to_fp32(h.__x); }
// CUDA's conversion gives the canonical NaN 0x7FFF for every NaN; otherwise the engine's
// round-to-nearest-even conversion (overflow to ±inf, subnormals rounded) is the same function.
inline __half __float2half_rn(float f) {
  return __ushort_as_half(std::isnan(f) ? static_cast<unsigned short>(0x7FFF) : ::peregrine::quant::fp32_to_fp16(f));
}
inline __half __float2half(float f) { return __float2half_rn(f); }
inline __half2 __floats2half2_rn(float a, float b) { return {__float2half_rn(a), __float2half_rn(b)}; }
inline float __low2float(__half2 h) { return __half2float(h.x); }
inline float __high2float(__half2 h) { return __half2float(h.y); }

inline __half::__half(float f) : __x(__float2half_rn(f).__x) {}
inline __half::operator float() const { return __half2float(*this); }
