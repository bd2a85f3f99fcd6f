// Decoding of GGUF weight blocks, written once for the CUDA kernels and the host.
//
// Every function here is `PEREGRINE_HD` (host and device under nvcc, plain inline under a host
// compiler), so tests/engine/test_cuda_quant_blocks_host.cpp runs exactly this code on the CPU
// and compares it bit for bit with peregrine::quant::dequantize — the proof that the GPU kernels
// decode every format correctly, available on machines without a GPU.
//
// Interface (BlockCodec<type>): a row of n_in values is a sequence of blocks of kValues values
// and kBytes bytes; a block is decoded in groups of 8 consecutive values
// (decode8(block, group, out), group < kGroups). Plain types (F32, F16, BF16) are treated as
// blocks of 8 values so that every format has the same shape; they also decode single values
// (value(block, i)) for the tail of a row whose length is not a multiple of 8.
//
// Bit exactness: each value is computed with the same operations, in the same order, as the
// reference dequantizers in src/format/quant_*.cpp (whose products are exact, so FMA contraction
// cannot change a result either). Blocks are read byte by byte, so any alignment works (GGUF
// blocks of 34 or 210 bytes are not even 4-byte aligned).
#pragma once

#include <cstdint>
#include <cstring>

#include "peregrine/q8_0_block.h"
#include "peregrine/tensor_type.h"

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#endif

#ifndef PEREGRINE_HD
#if defined(__CUDACC__)
#define PEREGRINE_HD __host__ __device__
#else
#define PEREGRINE_HD
#endif
#endif

namespace peregrine::cuda::blocks {

// ---- scalar helpers ----

PEREGRINE_HD inline uint32_t u16_at(const uint8_t* p) { return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8); }

PEREGRINE_HD inline uint32_t u32_at(const uint8_t* p) { return u16_at(p) | (u16_at(p + 2) << 16); }

#if !defined(__CUDA_ARCH__)
inline uint32_t float_bits_host(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}
#endif

PEREGRINE_HD inline float float_from_bits(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
#endif
}

// IEEE binary16 → float, exact (subnormals included). The device uses the hardware conversion,
// which is exact too.
PEREGRINE_HD inline float half_to_float(uint32_t h) {
#if defined(__CUDA_ARCH__)
  return __half2float(__ushort_as_half(static_cast<unsigned short>(h)));
#else
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  const uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0) return float_from_bits(sign | float_bits_host(static_cast<float>(mantissa) * 0x1p-24f));
  if (exponent == 0x1F) return float_from_bits(sign | 0x7F800000u | (mantissa ? 0x400000u | (mantissa << 13) : 0u));
  return float_from_bits(sign | ((exponent + 112u) << 23) | (mantissa << 13));
#endif
}

PEREGRINE_HD inline float half_at(const uint8_t* p) { return half_to_float(u16_at(p)); }
PEREGRINE_HD inline float bf16_at(const uint8_t* p) { return float_from_bits(u16_at(p) << 16); }
PEREGRINE_HD inline float f32_at(const uint8_t* p) { return float_from_bits(u32_at(p)); }

// The 16-entry IQ4 grid, packed as int8 bytes into two words so device code needs no table in
// memory: entry i is byte (i & 7) of kIq4GridLow (i < 8) or kIq4GridHigh.
// Grid: -127 -104 -83 -65 -49 -35 -22 -10 | 1 13 25 38 53 69 89 113.
constexpr uint64_t kIq4GridLow = 0xF6EADDCFBFAD9881ull;
constexpr uint64_t kIq4GridHigh = 0x7159453526190D01ull;

PEREGRINE_HD inline float iq4_grid(uint32_t i) {
  const uint64_t word = i < 8 ? kIq4GridLow : kIq4GridHigh;
  return static_cast<float>(static_cast<int8_t>(static_cast<uint8_t>(word >> (8 * (i & 7)))));
}

// The 6-bit (scale, min) pair of sub-block j of a Q4_K / Q5_K super-block (12 packed bytes).
PEREGRINE_HD inline void k_scale_min(int j, const uint8_t* q, int& sc, int& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Nibble of value v (0..31) of a 32-value block whose 16 bytes hold value l in the low nibble of
// byte l and value l + 16 in the high nibble (Q4_0, Q4_1, Q5_0, Q5_1, IQ4_XS sub-blocks).
PEREGRINE_HD inline uint32_t split_nibble(const uint8_t* qs, int v) {
  return v < 16 ? (qs[v] & 0xFu) : (qs[v - 16] >> 4);
}

// ---- codecs ----

template <TensorType kType>
struct BlockCodec;  // unsupported types have no codec

template <>
struct BlockCodec<TensorType::F32> {
  static constexpr int kValues = 8, kBytes = 32, kGroups = 1;
  static constexpr bool kPlain = true;
  PEREGRINE_HD static float value(const uint8_t* b, int i) { return f32_at(b + 4 * i); }
  PEREGRINE_HD static void decode8(const uint8_t* b, int, float* out) {
    for (int k = 0; k < 8; ++k) out[k] = value(b, k);
  }
};

template <>
struct BlockCodec<TensorType::F16> {
  static constexpr int kValues = 8, kBytes = 16, kGroups = 1;
  static constexpr bool kPlain = true;
  PEREGRINE_HD static float value(const uint8_t* b, int i) { return half_at(b + 2 * i); }
  PEREGRINE_HD static void decode8(const uint8_t* b, int, float* out) {
    for (int k = 0; k < 8; ++k) out[k] = value(b, k);
  }
};

template <>
struct BlockCodec<TensorType::BF16> {
  static constexpr int kValues = 8, kBytes = 16, kGroups = 1;
  static constexpr bool kPlain = true;
  PEREGRINE_HD static float value(const uint8_t* b, int i) { return bf16_at(b + 2 * i); }
  PEREGRINE_HD static void decode8(const uint8_t* b, int, float* out) {
    for (int k = 0; k < 8; ++k) out[k] = value(b, k);
  }
};

// Q8_0: d (f16) | qs[32] (int8); value = q * d.
template <>
struct BlockCodec<TensorType::Q8_0> {
  static constexpr int kValues = kQ8_0BlockValues, kBytes = kQ8_0BlockBytes, kGroups = kValues / 8;
  static constexpr bool kPlain = false;
  PEREGRINE_HD static void decode8(const uint8_t* b, int g, float* out) {
    const float d = half_at(b);
    const uint8_t* qs = b + 2 + 8 * g;
    for (int k = 0; k < 8; ++k) out[k] = static_cast<float>(static_cast<int8_t>(qs[k])) * d;
  }
};

// Q4_0: d | qs[16]; value = (q - 8) * d.
template <>
struct BlockCodec<TensorType::Q4_0> {
  static constexpr int kValues = 32, kBytes = 18, kGroups = 4;
  static constexpr bool kPlain = false;
  PEREGRINE_HD static void decode8(const uint8_t* b, int g, float* out) {
    const float d = half_at(b);
    for (int k = 0; k < 8; ++k) out[k] = static_cast<float>(static_cast<int>(split_nibble(b + 2, 8 * g + k)) - 8) * d;
  }
};

// Q4_1: d | m | qs[16]; value = q * d + m.
template <>
struct BlockCodec<TensorType::Q4_1> {
  static constexpr int kValues = 32, kBytes = 20, kGroups = 4;
  static constexpr bool kPlain = false;
  PEREGRINE_HD static void decode8(const uint8_t* b, int g, float* out) {
    const float d = half_at(b), m = half_at(b + 2);
    for (int k = 0; k < 8; ++k) out[k] = static_cast<float>(split_nibble(b + 4, 8 * g + k)) * d + m;
  }
};

// Q5_0: d | qh (u32, bit v = fifth bit of value v) | qs[16]; value = (q - 16) * d.
template <>
struct BlockCodec<TensorType::Q5_0> {
  static constexpr int kValues = 32, kBytes = 22, kGroups = 4;
  static constexpr bool kPlain = false;
  PEREGRINE_HD static void decode8(const uint8_t* b, int g, float* out) {
    const float d = half_at(b);
    const uint32_t qh = u32_at(b + 2);
    for (int k = 0; k < 8; ++k) {
      const int v = 8 * g + k;
      const int q = static_cast<int>(split_nibble(b + 6, v) | (((qh >> v) & 1u) << 4));
      out[k] = static_cast<float>(q - 16) * d;
    }
  }
};

// Q5_1: d | m | qh | qs[16]; value = q * d + m.
template <>
struct BlockCodec<TensorType::Q5_1> {
  static constexpr int kValues = 32, kBytes = 24, kGroups = 4;
  static constexpr bool kPlain = false;
  PEREGRINE_HD static void decode8(const uint8_t* b, int g, float* out) {
    const float d = half_at(b), m = half_at(b + 2);
    const uint32_t qh = u32_at(b + 4);
    for (int k = 0; k < 8; ++k) {
      const int v = 8 * g + k;
      const uint32_t q = split_nibble(b + 8, v) | (((qh >> v) & 1u) << 4);
      out[k] = static_cast<float>(q) * d + m;
    }
  }
};

// Q4_K: d | dmin | scales[12] | qs[128]. Group g (8 values) lies in sub-block j = g / 4 of 32
// values; 64-value chunk c = j / 2 keeps its first sub-block in the low nibbles of qs[32c..32c+32)
// and its second in the high nibbles. value = (d·sc)·q − dmin·m.
template <>
struct BlockCodec<TensorType::Q4_K> {
  static constexpr int kValues = 256, kBytes = 144, kGroups = 32;
  static constexpr bool kPlain = false;
  PEREGRINE_HD static void decode8(const uint8_t* b, int g, float* out) {
    const int j = g >> 2, l0 = (g & 3) * 8, shift = 4 * (j & 1);
    int sc, m;
    k_scale_min(j, b + 4, sc, m);
    const float d1 = half_at(b) * static_cast<float>(sc), m1 = half_at(b + 2) * static_cast<float>(m);
    const uint8_t* qs = b + 16 + 32 * (j >> 1) + l0;
    for (int k = 0; k < 8; ++k) out[k] = d1 * static_cast<float>((qs[k] >> shift) & 0xF) - m1;
  }
};

// Q5_K: d | dmin | scales[12] | qh[32] | qs[128]; as Q4_K plus a fifth bit: bit j (the sub-block
// index) of qh[l] for value l of the sub-block.
template <>
struct BlockCodec<TensorType::Q5_K> {
  static constexpr int kValues = 256, kBytes = 176, kGroups = 32;
  static constexpr bool kPlain = false;
  PEREGRINE_HD static void decode8(const uint8_t* b, int g, float* out) {
    const int j = g >> 2, l0 = (g & 3) * 8, shift = 4 * (j & 1);
    int sc, m;
    k_scale_min(j, b + 4, sc, m);
    const float d1 = half_at(b) * static_cast<float>(sc), m1 = half_at(b + 2) * static_cast<float>(m);
    const uint8_t* qh = b + 16 + l0;
    const uint8_t* qs = b + 48 + 32 * (j >> 1) + l0;
    for (int k = 0; k < 8; ++k) {
      const uint32_t q = ((qs[k] >> shift) & 0xFu) + (((qh[k] >> j) & 1u) << 4);
      out[k] = d1 * static_cast<float>(q) - m1;
    }
  }
};

// Q6_K: ql[128] | qh[64] | scales[16] (int8) | d. Value v: half h = v / 128, quarter k = (v % 128)
// / 32, l = v % 32; low nibble from ql[64h + l + 32(k & 1)] (high nibble when k ≥ 2), two high
// bits from qh[32h + l] >> 2k, scale scales[8h + l / 16 + 2k]. value = d·sc·(q − 32).
template <>
struct BlockCodec<TensorType::Q6_K> {
  static constexpr int kValues = 256, kBytes = 210, kGroups = 32;
  static constexpr bool kPlain = false;
  PEREGRINE_HD static void decode8(const uint8_t* b, int g, float* out) {
    const int h = g >> 4, quarter = (g >> 2) & 3, l0 = (g & 3) * 8;
    const uint8_t* ql = b + 64 * h + 32 * (quarter & 1) + l0;
    const uint8_t* qh = b + 128 + 32 * h + l0;
    const int sc = static_cast<int8_t>(b[192 + 8 * h + (l0 >> 4) + 2 * quarter]);
    const float dsc = half_at(b + 208) * static_cast<float>(sc);
    const int nibble_shift = quarter >= 2 ? 4 : 0, high_shift = 2 * quarter;
    for (int k = 0; k < 8; ++k) {
      const int q = static_cast<int>(((ql[k] >> nibble_shift) & 0xFu) | (((qh[k] >> high_shift) & 3u) << 4)) - 32;
      out[k] = dsc * static_cast<float>(q);
    }
  }
};

// IQ4_XS: d | scales_h (u16) | scales_l[4] | qs[128]. Sub-block ib of 32 values: 6-bit scale ls
// (low nibble from scales_l[ib / 2], top bits from scales_h bits 2ib..2ib+1), codes split as in
// Q4_0 within qs[16ib..16ib+16). value = (d·(ls − 32))·grid[q].
template <>
struct BlockCodec<TensorType::IQ4_XS> {
  static constexpr int kValues = 256, kBytes = 136, kGroups = 32;
  static constexpr bool kPlain = false;
  PEREGRINE_HD static void decode8(const uint8_t* b, int g, float* out) {
    const int ib = g >> 2, v0 = (g & 3) * 8;
    const uint32_t scales_h = u16_at(b + 2);
    const int ls = static_cast<int>(((b[4 + ib / 2] >> (4 * (ib & 1))) & 0xFu) | (((scales_h >> (2 * ib)) & 3u) << 4));
    const float dl = half_at(b) * static_cast<float>(ls - 32);
    const uint8_t* qs = b + 8 + 16 * ib;
    for (int k = 0; k < 8; ++k) out[k] = dl * iq4_grid(split_nibble(qs, v0 + k));
  }
};

}  // namespace peregrine::cuda::blocks
