// Integer dot products of GGUF weight blocks with 8-bit activation blocks (the GEMV "v3" kernels,
// cuda_gemv_q8.cu), written once for the GPU and the host.
//
// The activation formats are the CPU backend's Quantized8 formats (backend/cpu/kernels/vec_dot.h),
// byte for byte, so the GPU and the CPU compute the same integers:
//   weight Q4_K Q5_K Q6_K IQ4_XS  ×  Q8_K  d (f32) | q[256] (int8) | bsums[16] (int16, sums of 16 q)
//   weight Q8_0                   ×  Q8_0  d (f16) | q[32] (int8)
//
// A block dot product is split into kParts parts (one per GPU lane). part() returns exact
// integers (weight codes × activation codes, weighted by the block's integer sub-block scales);
// combine() turns integers into the block's float contribution with the CPU kernel's expression:
//   combine(block, act, Σ_p part(p)) == the CPU scalar vec_dot of that one block, bit for bit,
// because integer sums do not depend on their order. The GPU lanes combine() their own part and
// sum floats instead (no integer reduction between lanes in the inner loop), which differs from
// the CPU only by float rounding: tests/engine/test_cuda_vec_dot_host.cpp proves both statements
// on the host for every type.
//
// Alignment: the device loads 32-bit words. Q4_K, Q5_K, IQ4_XS blocks (144, 176, 136 bytes) need
// 4-byte aligned rows; Q6_K and Q8_0 blocks (210, 34 bytes) 2-byte aligned rows (words are built
// from two 16-bit loads). Activation rows are 4-byte aligned (292 = 4·73; Q8_0 rows use 16-bit
// loads). The host reads byte by byte (any alignment).
//
// Float rounding is pinned with mul_rn/sub_rn (__fmul_rn/__fsub_rn on the device: nvcc must not
// contract them into an FMA; plain operators on the host, whose test is built with
// -ffp-contract=off), so the device computes exactly what the host test checks.
#pragma once

#include <cstdint>

#include "backend/cuda/cuda_quant_blocks.cuh"
#include "peregrine/q8_0_block.h"
#include "peregrine/tensor_type.h"

namespace peregrine::cuda::q8 {

using blocks::f32_at;
using blocks::half_at;
using blocks::u16_at;
using blocks::u32_at;

inline constexpr int kQ8KBytes = 292;  // activation block of the 256-value weight formats
inline constexpr int kQ8KQs = 4;       // offset of q[256]
inline constexpr int kQ8KBsums = 260;  // offset of bsums[16]
inline constexpr int kQ8_0Bytes = kQ8_0BlockBytes;  // activation block of Q8_0 weights: Q8_0 itself

// ---- portable integer and float primitives ----

// Σ_{k<4} int8(a byte k) · int8(b byte k) + c (the device's __dp4a).
PEREGRINE_HD inline int dp4a(int a, int b, int c) {
#if defined(__CUDA_ARCH__)
  return __dp4a(a, b, c);
#else
  for (int k = 0; k < 4; ++k)
    c += static_cast<int>(static_cast<int8_t>(static_cast<uint32_t>(a) >> (8 * k))) *
         static_cast<int>(static_cast<int8_t>(static_cast<uint32_t>(b) >> (8 * k)));
  return c;
#endif
}

PEREGRINE_HD inline float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

PEREGRINE_HD inline float sub_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}

// Little-endian 32-bit word at p, p 4-byte aligned on the device.
PEREGRINE_HD inline int word_a4(const uint8_t* p) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const int*>(p);
#else
  return static_cast<int>(u32_at(p));
#endif
}

// Little-endian 32-bit word at p, p 2-byte aligned on the device.
PEREGRINE_HD inline int word_a2(const uint8_t* p) {
#if defined(__CUDA_ARCH__)
  const auto* h = reinterpret_cast<const uint16_t*>(p);
  return static_cast<int>(static_cast<uint32_t>(h[0]) | (static_cast<uint32_t>(h[1]) << 16));
#else
  return static_cast<int>(u32_at(p));
#endif
}

PEREGRINE_HD inline uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  return blocks::float_bits_host(f);
#endif
}

// The f32 scale d of a Q8_K activation block (4-byte aligned on the device).
PEREGRINE_HD inline float q8k_scale(const uint8_t* a) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const float*>(a);
#else
  return f32_at(a);
#endif
}

PEREGRINE_HD inline int i16_at(const uint8_t* p) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const int16_t*>(p);
#else
  return static_cast<int16_t>(static_cast<uint16_t>(u16_at(p)));
#endif
}

// Per byte x − 32 for bytes x < 64 (Q6_K codes), wrapping into int8: setting bit 7 of every byte
// keeps the subtraction from borrowing across bytes, the xor removes it again.
PEREGRINE_HD inline int minus_32_bytes(int x) {
  return static_cast<int>(((static_cast<uint32_t>(x) | 0x80808080u) - 0x20202020u) ^ 0x80808080u);
}

// The 4 IQ4 grid values (int8) of the nibbles in bytes k of `nibbles` (each byte < 16).
PEREGRINE_HD inline int iq4_grid_bytes(uint32_t nibbles) {
  uint32_t out = 0;
  for (int k = 0; k < 4; ++k) {
    const uint32_t i = (nibbles >> (8 * k)) & 0xFu;
    const uint64_t word = i < 8 ? blocks::kIq4GridLow : blocks::kIq4GridHigh;
    out |= static_cast<uint32_t>(static_cast<uint8_t>(word >> (8 * (i & 7)))) << (8 * k);
  }
  return static_cast<int>(out);
}

// ---- activation quantizers (the CPU backend's bytes) ----

// Round to nearest, ties to even (|v| well below 2^22 here).
PEREGRINE_HD inline int round_even(float v) {
#if defined(__CUDA_ARCH__)
  return __float2int_rn(v);
#else
  // The FPU's default rounding does the work (ggml's nearest_int).
  const float shifted = v + 12582912.f;
  return static_cast<int>(blocks::float_bits_host(shifted) & 0x007FFFFFu) - 0x00400000;
#endif
}

// float → IEEE binary16 bits, round to nearest even (finite inputs; the activation scales are).
PEREGRINE_HD inline uint32_t float_to_half_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __half_as_ushort(__float2half_rn(f));
#else
  const uint32_t bits = blocks::float_bits_host(f);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t abs = bits & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) return sign | 0x7C00u | (abs > 0x7F800000u ? 0x200u : 0u);
  if (abs >= 0x477FF000u) return sign | 0x7C00u;  // rounds to ≥ 65520: infinity
  if (abs < 0x38800000u) {                        // subnormal (or zero) half
    if (abs < 0x33000000u) return sign;           // below half the smallest subnormal
    const uint32_t exponent = abs >> 23, mantissa = (abs & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126u - exponent;  // 14..24 bits dropped
    uint32_t h = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rest > half || (rest == half && (h & 1u))) ++h;
    return sign | h;
  }
  uint32_t h = ((abs >> 13) - (112u << 10));  // rebias 127 → 15
  const uint32_t rest = abs & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent: still right
  return sign | h;
#endif
}

// Q8_K: max = the first value of largest magnitude (sign kept), iscale = −127 / max,
// q = min(127, round_even(iscale·x)), d = 1 / iscale, bsums = sums of 16 q; all zero when max = 0.
PEREGRINE_HD inline float q8k_inverse_scale(float max) { return -127.0f / max; }
PEREGRINE_HD inline int q8k_code(float x, float iscale) {
  const int q = round_even(mul_rn(iscale, x));
  return q < 127 ? q : 127;
}

// Q8_0 (the CPU's x86 quantizer): d = amax / 127 stored as f16, q = round_even(x · (127 / amax)).
PEREGRINE_HD inline float q8_0_inverse_scale(float amax) { return amax != 0.0f ? 127.0f / amax : 0.0f; }
PEREGRINE_HD inline int q8_0_code(float x, float inverse_scale) { return round_even(mul_rn(x, inverse_scale)); }

// Whole blocks, sequentially: the reference the GPU's warp-parallel quantizer follows step by step
// (and the host test compares with the CPU backend's quantize_activations).
PEREGRINE_HD inline void quantize_block_q8k(const float* x, uint8_t* dst) {
  float max = 0.0f, amax = 0.0f;
  for (int j = 0; j < 256; ++j) {
    const float ax = x[j] < 0.0f ? -x[j] : x[j];
    if (ax > amax) amax = ax, max = x[j];
  }
  for (int j = 0; j < kQ8KBytes; ++j) dst[j] = 0;
  if (amax == 0.0f) return;
  const float iscale = q8k_inverse_scale(max);
  for (int s = 0; s < 16; ++s) {
    int sum = 0;
    for (int l = 0; l < 16; ++l) {
      const int q = q8k_code(x[16 * s + l], iscale);
      dst[kQ8KQs + 16 * s + l] = static_cast<uint8_t>(static_cast<int8_t>(q));
      sum += q;
    }
    dst[kQ8KBsums + 2 * s] = static_cast<uint8_t>(sum & 0xFF);
    dst[kQ8KBsums + 2 * s + 1] = static_cast<uint8_t>((sum >> 8) & 0xFF);
  }
  const uint32_t d = float_bits(1.0f / iscale);
  for (int k = 0; k < 4; ++k) dst[k] = static_cast<uint8_t>(d >> (8 * k));
}

PEREGRINE_HD inline void quantize_block_q8_0(const float* x, uint8_t* dst) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) {
    const float ax = x[j] < 0.0f ? -x[j] : x[j];
    amax = ax > amax ? ax : amax;
  }
  const float inverse_scale = q8_0_inverse_scale(amax);
  for (int j = 0; j < 32; ++j) dst[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(q8_0_code(x[j], inverse_scale)));
  const uint32_t d = float_to_half_bits(amax / 127.0f);
  dst[0] = static_cast<uint8_t>(d & 0xFF);
  dst[1] = static_cast<uint8_t>(d >> 8);
}

// ---- block dot products ----

// Integers of one part: `dot` = Σ scale·Σ q_w·q_a, `min` = Σ min·bsum (K-quants with mins only).
struct PartSums {
  int dot = 0, min = 0;
};

template <TensorType kType>
struct Q8Dot;  // weight types without an 8-bit dot product have none

// Q4_K: part p (0..7) covers the 16 qs bytes at 16p of the 128, i.e. 64-value chunk c = p / 2,
// values l0..l0+15 (l0 = 16·(p % 2)) of sub-block 2c (low nibbles) and of 2c + 1 (high nibbles).
// CPU: (d_a·d)·Σ_s sc_s·dot_s − (d_a·dmin)·Σ_s m_s·(bsum_2s + bsum_2s+1).
template <>
struct Q8Dot<TensorType::Q4_K> {
  static constexpr int kValues = 256, kWeightBytes = 144, kActBytes = kQ8KBytes, kParts = 8;
  static constexpr int kRowAlign = 4;
  PEREGRINE_HD static PartSums part(const uint8_t* w, const uint8_t* a, int p) {
    const int c = p >> 1, half = p & 1;
    int sc_lo, m_lo, sc_hi, m_hi;
    blocks::k_scale_min(2 * c, w + 4, sc_lo, m_lo);
    blocks::k_scale_min(2 * c + 1, w + 4, sc_hi, m_hi);
    const uint8_t* qs = w + 16 + 16 * p;
    const uint8_t* a_lo = a + kQ8KQs + 64 * c + 16 * half;
    int dot_lo = 0, dot_hi = 0;
    for (int i = 0; i < 4; ++i) {
      const int q = word_a4(qs + 4 * i);
      dot_lo = dp4a(q & 0x0F0F0F0F, word_a4(a_lo + 4 * i), dot_lo);
      dot_hi = dp4a((q >> 4) & 0x0F0F0F0F, word_a4(a_lo + 32 + 4 * i), dot_hi);
    }
    PartSums s;
    s.dot = sc_lo * dot_lo + sc_hi * dot_hi;
    s.min = m_lo * i16_at(a + kQ8KBsums + 2 * (4 * c + half)) + m_hi * i16_at(a + kQ8KBsums + 2 * (4 * c + 2 + half));
    return s;
  }
  PEREGRINE_HD static float combine(const uint8_t* w, const uint8_t* a, PartSums s) {
    const float da = q8k_scale(a);
    return sub_rn(mul_rn(mul_rn(da, half_at(w)), static_cast<float>(s.dot)),
                  mul_rn(mul_rn(da, half_at(w + 2)), static_cast<float>(s.min)));
  }
};

// Q5_K: as Q4_K with the fifth bit of value l of sub-block s in bit s of qh[l] (qh at 16..47).
template <>
struct Q8Dot<TensorType::Q5_K> {
  static constexpr int kValues = 256, kWeightBytes = 176, kActBytes = kQ8KBytes, kParts = 8;
  static constexpr int kRowAlign = 4;
  PEREGRINE_HD static PartSums part(const uint8_t* w, const uint8_t* a, int p) {
    const int c = p >> 1, half = p & 1;
    int sc_lo, m_lo, sc_hi, m_hi;
    blocks::k_scale_min(2 * c, w + 4, sc_lo, m_lo);
    blocks::k_scale_min(2 * c + 1, w + 4, sc_hi, m_hi);
    const uint8_t* qh = w + 16 + 16 * half;
    const uint8_t* qs = w + 48 + 16 * p;
    const uint8_t* a_lo = a + kQ8KQs + 64 * c + 16 * half;
    int dot_lo = 0, dot_hi = 0;
    for (int i = 0; i < 4; ++i) {
      const int q = word_a4(qs + 4 * i), h = word_a4(qh + 4 * i);
      const int lo = (q & 0x0F0F0F0F) | (((h >> (2 * c)) & 0x01010101) << 4);
      const int hi = ((q >> 4) & 0x0F0F0F0F) | (((h >> (2 * c + 1)) & 0x01010101) << 4);
      dot_lo = dp4a(lo, word_a4(a_lo + 4 * i), dot_lo);
      dot_hi = dp4a(hi, word_a4(a_lo + 32 + 4 * i), dot_hi);
    }
    PartSums s;
    s.dot = sc_lo * dot_lo + sc_hi * dot_hi;
    s.min = m_lo * i16_at(a + kQ8KBsums + 2 * (4 * c + half)) + m_hi * i16_at(a + kQ8KBsums + 2 * (4 * c + 2 + half));
    return s;
  }
  PEREGRINE_HD static float combine(const uint8_t* w, const uint8_t* a, PartSums s) {
    return Q8Dot<TensorType::Q4_K>::combine(w, a, s);  // same header layout: d, dmin first
  }
};

// Q6_K: part p (0..7) is half h = p / 4 and l0 = 8·(p % 4): values 128h + 32k + l0 .. +7 of every
// quarter k = 0..3 (ql bytes l0.. and 32 + l0.., qh bytes l0..; no byte is read by two parts).
// Value 128h + 32k + l has scale 8h + 2k + l / 16. CPU: (d_a·d)·Σ_s sc_s·Σ (q − 32)·q_a.
template <>
struct Q8Dot<TensorType::Q6_K> {
  static constexpr int kValues = 256, kWeightBytes = 210, kActBytes = kQ8KBytes, kParts = 8;
  static constexpr int kRowAlign = 2;
  PEREGRINE_HD static PartSums part(const uint8_t* w, const uint8_t* a, int p) {
    const int h = p >> 2, l0 = 8 * (p & 3);
    const uint8_t* ql = w + 64 * h + l0;
    const uint8_t* qh = w + 128 + 32 * h + l0;
    const uint8_t* scales = w + 192 + 8 * h + (l0 >> 4);
    const uint8_t* aq = a + kQ8KQs + 128 * h + l0;
    int dot[4] = {0, 0, 0, 0};
    for (int i = 0; i < 2; ++i) {
      const int lo = word_a2(ql + 4 * i), hi = word_a2(ql + 32 + 4 * i), bits = word_a2(qh + 4 * i);
      const int q0 = (lo & 0x0F0F0F0F) | ((bits & 0x03030303) << 4);
      const int q1 = (hi & 0x0F0F0F0F) | (((bits >> 2) & 0x03030303) << 4);
      const int q2 = ((lo >> 4) & 0x0F0F0F0F) | (((bits >> 4) & 0x03030303) << 4);
      const int q3 = ((hi >> 4) & 0x0F0F0F0F) | (((bits >> 6) & 0x03030303) << 4);
      dot[0] = dp4a(minus_32_bytes(q0), word_a4(aq + 4 * i), dot[0]);
      dot[1] = dp4a(minus_32_bytes(q1), word_a4(aq + 32 + 4 * i), dot[1]);
      dot[2] = dp4a(minus_32_bytes(q2), word_a4(aq + 64 + 4 * i), dot[2]);
      dot[3] = dp4a(minus_32_bytes(q3), word_a4(aq + 96 + 4 * i), dot[3]);
    }
    PartSums s;
    for (int k = 0; k < 4; ++k) s.dot += static_cast<int8_t>(scales[2 * k]) * dot[k];
    return s;
  }
  PEREGRINE_HD static float combine(const uint8_t* w, const uint8_t* a, PartSums s) {
    return mul_rn(mul_rn(q8k_scale(a), half_at(w + 208)), static_cast<float>(s.dot));
  }
};

// IQ4_XS: part p (0..7) is sub-block p: codes in qs[16p..16p+16) (low nibbles values 0..15, high
// nibbles 16..31), scale ls − 32. CPU: (d_a·d)·Σ_s (ls_s − 32)·Σ grid[code]·q_a.
template <>
struct Q8Dot<TensorType::IQ4_XS> {
  static constexpr int kValues = 256, kWeightBytes = 136, kActBytes = kQ8KBytes, kParts = 8;
  static constexpr int kRowAlign = 4;
  PEREGRINE_HD static PartSums part(const uint8_t* w, const uint8_t* a, int p) {
    const uint32_t scales_h = u16_at(w + 2);
    const int ls = static_cast<int>(((w[4 + p / 2] >> (4 * (p & 1))) & 0xFu) | (((scales_h >> (2 * p)) & 3u) << 4));
    const uint8_t* qs = w + 8 + 16 * p;
    const uint8_t* aq = a + kQ8KQs + 32 * p;
    int dot = 0;
    for (int i = 0; i < 4; ++i) {
      const uint32_t q = static_cast<uint32_t>(word_a4(qs + 4 * i));
      dot = dp4a(iq4_grid_bytes(q & 0x0F0F0F0Fu), word_a4(aq + 4 * i), dot);
      dot = dp4a(iq4_grid_bytes((q >> 4) & 0x0F0F0F0Fu), word_a4(aq + 16 + 4 * i), dot);
    }
    PartSums s;
    s.dot = (ls - 32) * dot;
    return s;
  }
  PEREGRINE_HD static float combine(const uint8_t* w, const uint8_t* a, PartSums s) {
    return mul_rn(mul_rn(q8k_scale(a), half_at(w)), static_cast<float>(s.dot));
  }
};

// Q8_0 × Q8_0: part p (0..1) is values 16p..16p+15. CPU: (d_w·d_a)·Σ q_w·q_a.
template <>
struct Q8Dot<TensorType::Q8_0> {
  static constexpr int kValues = kQ8_0BlockValues, kWeightBytes = kQ8_0BlockBytes, kActBytes = kQ8_0Bytes, kParts = 2;
  static_assert(kParts * 16 == kValues, "part p covers values 16p..16p+15");
  static constexpr int kRowAlign = 2;
  PEREGRINE_HD static PartSums part(const uint8_t* w, const uint8_t* a, int p) {
    int dot = 0;
    for (int i = 0; i < 4; ++i) dot = dp4a(word_a2(w + 2 + 16 * p + 4 * i), word_a2(a + 2 + 16 * p + 4 * i), dot);
    PartSums s;
    s.dot = dot;
    return s;
  }
  PEREGRINE_HD static float combine(const uint8_t* w, const uint8_t* a, PartSums s) {
    return mul_rn(mul_rn(half_at(w), half_at(a)), static_cast<float>(s.dot));
  }
};

// One block, every part's integers summed first: equal to the CPU's scalar dot of the block.
template <TensorType kType>
PEREGRINE_HD float block_dot_exact(const uint8_t* w, const uint8_t* a) {
  using Dot = Q8Dot<kType>;
  PartSums total;
  for (int p = 0; p < Dot::kParts; ++p) {
    const PartSums s = Dot::part(w, a, p);
    total.dot += s.dot;
    total.min += s.min;
  }
  return Dot::combine(w, a, total);
}

}  // namespace peregrine::cuda::q8
