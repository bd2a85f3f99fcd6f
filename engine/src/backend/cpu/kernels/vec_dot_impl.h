// Internal to the dot-product kernels: block geometry, little helpers shared by the scalar and
// AVX2 implementations, and the per-type kernel declarations the dispatcher tables point at.
// Block layouts are documented in docs/quant-formats.md (weights) and docs/cpu-kernels.md (Q8_1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

// The AVX2 kernels exist on x86 only; elsewhere the dispatcher uses the scalar ones.
#if defined(__x86_64__) || defined(__i386__)
#define PEREGRINE_KERNELS_X86 1
#else
#define PEREGRINE_KERNELS_X86 0
#endif

namespace peregrine::cpu::kernels {

// Bytes per block of each format (ggml's sizeof(block_*)).
inline constexpr int kQ4_0Bytes = 18, kQ4_1Bytes = 20, kQ5_0Bytes = 22, kQ5_1Bytes = 24;
inline constexpr int kQ8_0Bytes = 34, kQ8_1Bytes = 36, kIQ4NLBytes = 18;
inline constexpr int kQ2_KBytes = 84, kQ3_KBytes = 110, kQ4_KBytes = 144, kQ5_KBytes = 176;
inline constexpr int kQ6_KBytes = 210, kQ8_KBytes = 292, kIQ4XSBytes = 136;
// Byte offset of the bsums (16 x int16) in a Q8_K block: after f32 d and 256 int8 values.
inline constexpr int kQ8_KBsums = 4 + 256;

// The IQ4_NL / IQ4_XS non-linear grid.
inline constexpr int8_t kIq4Grid[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                        1,    13,   25,  38,  53,  69,  89,  113};

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline int16_t load_i16(const uint8_t* p) {
  int16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline float load_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The 6-bit scale and min of sub-block s (0..7) of a Q4_K / Q5_K block (`q` = its 12 scale bytes).
inline void k4_scale_min(int s, const uint8_t* q, uint8_t& sc, uint8_t& m) {
  if (s < 4) {
    sc = q[s] & 63;
    m = q[s + 4] & 63;
  } else {
    sc = (q[s + 4] & 0xF) | ((q[s - 4] >> 6) << 4);
    m = (q[s + 4] >> 4) | ((q[s] >> 6) << 4);
  }
}

// The 16 signed scales (6-bit value − 32) of a Q3_K block (`q` = its 12 scale bytes).
inline void q3k_scales(const uint8_t* q, int8_t out[16]) {
  for (int s = 0; s < 16; ++s) {
    const int low = s < 8 ? (q[s] & 0xF) : (q[s - 8] >> 4);
    const int high = (q[8 + s % 4] >> (2 * (s / 4))) & 3;
    out[s] = static_cast<int8_t>((low | (high << 4)) - 32);
  }
}

// Both at once, as words: bytes 0..7 of out = the 8 scales, bytes 8..15 = the 8 mins (same values
// as k4_scale_min, rearranged with word operations for the vector kernels).
inline void k4_scale_min_words(const uint8_t* q, uint32_t out[4]) {
  const uint32_t w0 = load_u32(q), w1 = load_u32(q + 4), w2 = load_u32(q + 8);
  out[0] = w0 & 0x3F3F3F3Fu;
  out[1] = (w2 & 0x0F0F0F0Fu) | (((w0 >> 6) & 0x03030303u) << 4);
  out[2] = w1 & 0x3F3F3F3Fu;
  out[3] = ((w2 >> 4) & 0x0F0F0F0Fu) | (((w1 >> 6) & 0x03030303u) << 4);
}

// The 16 unbiased 6-bit Q3_K scales (q3k_scales + 32) as words: byte s of out = scale s.
inline void q3k_scale_words(const uint8_t* q, uint32_t out[4]) {
  const uint32_t w0 = load_u32(q), w1 = load_u32(q + 4), hi = load_u32(q + 8);
  out[0] = (w0 & 0x0F0F0F0Fu) | ((hi & 0x03030303u) << 4);
  out[1] = (w1 & 0x0F0F0F0Fu) | (((hi >> 2) & 0x03030303u) << 4);
  out[2] = ((w0 >> 4) & 0x0F0F0F0Fu) | (((hi >> 4) & 0x03030303u) << 4);
  out[3] = ((w1 >> 4) & 0x0F0F0F0Fu) | (((hi >> 6) & 0x03030303u) << 4);
}

// The 6-bit scale (minus 32) of sub-block s of an IQ4_XS block.
inline int iq4xs_scale(const uint8_t* block, int s) {
  const uint16_t scales_h = load_u16(block + 2);
  const int low = (block[4 + s / 2] >> (4 * (s % 2))) & 0xF;
  const int high = (scales_h >> (2 * s)) & 3;
  return (low | (high << 4)) - 32;
}

// Per-type kernels: float f(int64_t n, const void* weight_row, const void* act_row).
#define PEREGRINE_DECLARE_VEC_DOT(suffix)                                \
  float vec_dot_f32_##suffix(int64_t, const void*, const void*);         \
  float vec_dot_f16_##suffix(int64_t, const void*, const void*);         \
  float vec_dot_bf16_##suffix(int64_t, const void*, const void*);        \
  float vec_dot_q4_0_##suffix(int64_t, const void*, const void*);        \
  float vec_dot_q4_1_##suffix(int64_t, const void*, const void*);        \
  float vec_dot_q5_0_##suffix(int64_t, const void*, const void*);        \
  float vec_dot_q5_1_##suffix(int64_t, const void*, const void*);        \
  float vec_dot_q8_0_##suffix(int64_t, const void*, const void*);        \
  float vec_dot_iq4_nl_##suffix(int64_t, const void*, const void*);      \
  float vec_dot_q2_k_##suffix(int64_t, const void*, const void*);        \
  float vec_dot_q3_k_##suffix(int64_t, const void*, const void*);        \
  float vec_dot_q4_k_##suffix(int64_t, const void*, const void*);        \
  float vec_dot_q5_k_##suffix(int64_t, const void*, const void*);        \
  float vec_dot_q6_k_##suffix(int64_t, const void*, const void*);        \
  float vec_dot_iq4_xs_##suffix(int64_t, const void*, const void*);

PEREGRINE_DECLARE_VEC_DOT(scalar)
PEREGRINE_DECLARE_VEC_DOT(avx2)
#undef PEREGRINE_DECLARE_VEC_DOT

// One weight row against n_act (1..4) activation rows `act_stride` bytes apart: y[j] for each.
// Each weight block is expanded once for all of them (AVX2 only; every quantized type).
#define PEREGRINE_DECLARE_VEC_DOT_MULTI(type) \
  void vec_dot_##type##_avx2_multi(int64_t, const void*, const void*, size_t, int, float*);
PEREGRINE_DECLARE_VEC_DOT_MULTI(q4_0)
PEREGRINE_DECLARE_VEC_DOT_MULTI(q4_1)
PEREGRINE_DECLARE_VEC_DOT_MULTI(q5_0)
PEREGRINE_DECLARE_VEC_DOT_MULTI(q5_1)
PEREGRINE_DECLARE_VEC_DOT_MULTI(q8_0)
PEREGRINE_DECLARE_VEC_DOT_MULTI(iq4_nl)
PEREGRINE_DECLARE_VEC_DOT_MULTI(q4_k)
PEREGRINE_DECLARE_VEC_DOT_MULTI(q5_k)
PEREGRINE_DECLARE_VEC_DOT_MULTI(q6_k)
PEREGRINE_DECLARE_VEC_DOT_MULTI(q2_k)
PEREGRINE_DECLARE_VEC_DOT_MULTI(q3_k)
PEREGRINE_DECLARE_VEC_DOT_MULTI(iq4_xs)
#undef PEREGRINE_DECLARE_VEC_DOT_MULTI

// Q8_0 (with_sum = false) / Q8_1 (with_sum = true) activation quantizers, ggml-cpu's x86
// semantics (see quantize_activations.cpp); n a multiple of 32. Both give identical bytes.
void quantize_row_q8_0_scalar(const float* x, uint8_t* dst, int64_t n, bool with_sum);
void quantize_row_q8_0_avx2(const float* x, uint8_t* dst, int64_t n, bool with_sum);
// Q8_K, the same bytes as quant::quantize(Q8_K) (ggml's reference quantizer); n a multiple of 256.
void quantize_row_q8_k_avx2(const float* x, uint8_t* dst, int64_t n);

}  // namespace peregrine::cpu::kernels
