// AVX2 building blocks of the vector dot-product kernels. Every function carries the target
// attribute itself (no -mavx2 for the library, no `#pragma GCC target` that could leak AVX2 code
// into inline functions shared with the rest of the program), so only code reached after the
// runtime check in vec_dot_dispatch.cpp executes AVX2 instructions.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#define PEREGRINE_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace peregrine::cpu::kernels::avx2 {

PEREGRINE_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

PEREGRINE_AVX2 inline float f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

PEREGRINE_AVX2 inline __m256i load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}
PEREGRINE_AVX2 inline __m128i load128(const void* p) {
  return _mm_loadu_si128(static_cast<const __m128i*>(p));
}

// Sum of adjacent int16 pairs as int32 (8 lanes).
PEREGRINE_AVX2 inline __m256i pair_sums(__m256i v16) { return _mm256_madd_epi16(v16, _mm256_set1_epi16(1)); }

// Unsigned bytes u (0..127 at most in the kernels, so no int16 saturation) times signed bytes y:
// int16 lane k = u[2k]*y[2k] + u[2k+1]*y[2k+1].
PEREGRINE_AVX2 inline __m256i dot_u8_i8_16(__m256i u, __m256i y) { return _mm256_maddubs_epi16(u, y); }

// Signed bytes x times signed bytes y (neither −128): moves the sign of x onto y so maddubs sees
// |x| unsigned. int16 lane k = x[2k]*y[2k] + x[2k+1]*y[2k+1].
PEREGRINE_AVX2 inline __m256i dot_i8_i8_16(__m256i x, __m256i y) {
  return _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

// 16 bytes of packed 4-bit values → 32 bytes: low nibbles (values 0..15) in the low 128 bits,
// high nibbles (values 16..31) in the high 128 bits.
PEREGRINE_AVX2 inline __m256i nibbles32(const uint8_t* p) {
  const __m128i x = load128(p);
  const __m256i v = _mm256_set_m128i(_mm_srli_epi16(x, 4), x);
  return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

// Byte j = 0xFF where bit j of `bits` is set, else 0.
PEREGRINE_AVX2 inline __m256i bits_to_bytes(uint32_t bits) {
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(bits)),
      _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i mask = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, mask), mask);
}

// int16 scale vector: `lo` for the low 128 bits (first 16 values), `hi` for the high 128 bits.
PEREGRINE_AVX2 inline __m256i scales16(int lo, int hi) {
  return _mm256_set_m128i(_mm_set1_epi16(static_cast<short>(hi)), _mm_set1_epi16(static_cast<short>(lo)));
}

// `table`: 8 int16 scales in each 128-bit half. Returns scale `lo` in every int16 of the low half
// and scale `hi` in the high half (one vpshufb when lo/hi are constants, i.e. in unrolled loops).
PEREGRINE_AVX2 inline __m256i pick_scales(__m256i table, int lo, int hi) {
  const char a = static_cast<char>(2 * lo), b = static_cast<char>(2 * lo + 1);
  const char c = static_cast<char>(2 * hi), d = static_cast<char>(2 * hi + 1);
  return _mm256_shuffle_epi8(table, _mm256_setr_epi8(a, b, a, b, a, b, a, b, a, b, a, b, a, b, a, b,
                                                     c, d, c, d, c, d, c, d, c, d, c, d, c, d, c, d));
}

// 8 int16 (a 128-bit vector) in both halves of a 256-bit one.
PEREGRINE_AVX2 inline __m256i both_halves(__m128i v) { return _mm256_broadcastsi128_si256(v); }

// Byte mask: 0xFF where (v & bit) != 0.
PEREGRINE_AVX2 inline __m256i test_bit(__m256i v, int bit) {
  const __m256i m = _mm256_set1_epi8(static_cast<char>(bit));
  return _mm256_cmpeq_epi8(_mm256_and_si256(v, m), m);
}

}  // namespace peregrine::cpu::kernels::avx2

// Defines vec_dot_<name>_avx2 (one activation row) and vec_dot_<name>_avx2_multi (1..4 rows) from
// a kernel template `kernel<NA>(n, weight_row, act_rows, act_stride, y)`. The single-row entry is
// the NA = 1 instance, so both give bit-identical results per activation row.
#define PEREGRINE_AVX2_SINGLE_AND_MULTI(name, kernel)                                                   \
  PEREGRINE_AVX2 float vec_dot_##name##_avx2(int64_t n, const void* w, const void* a) {                 \
    float y;                                                                                            \
    kernel<1>(n, static_cast<const uint8_t*>(w), static_cast<const uint8_t*>(a), 0, &y);                \
    return y;                                                                                           \
  }                                                                                                     \
  PEREGRINE_AVX2 void vec_dot_##name##_avx2_multi(int64_t n, const void* w, const void* a, size_t stride, \
                                                  int n_act, float* y) {                                \
    const auto* wb = static_cast<const uint8_t*>(w);                                                    \
    const auto* ab = static_cast<const uint8_t*>(a);                                                    \
    switch (n_act) {                                                                                    \
      case 1: kernel<1>(n, wb, ab, stride, y); break;                                                   \
      case 2: kernel<2>(n, wb, ab, stride, y); break;                                                   \
      case 3: kernel<3>(n, wb, ab, stride, y); break;                                                   \
      default: kernel<4>(n, wb, ab, stride, y); break;                                                  \
    }                                                                                                   \
  }
