// AVX2 dot products of the 256-value super-block formats with Q8_K activations.
//
// The weights are expanded 32 values at a time to unsigned bytes (the format's offset, e.g. −32
// for Q6_K or −4 for Q3_K's cleared high bit, is taken out afterwards through the activation's
// 16-value sums `bsums`), multiplied with the activation bytes by maddubs, and weighted by the
// sub-block scales with madd — all in int32 lanes, exact. Only the per-block total meets floats:
// one FMA with d_w*d_a per block.
#include "backend/cpu/kernels/vec_dot_impl.h"

#if PEREGRINE_KERNELS_X86
#include "backend/cpu/kernels/avx2_util.h"

namespace peregrine::cpu::kernels {
namespace {

using namespace avx2;

struct Q8KBlock {
  float d;
  const int8_t* q;
  const uint8_t* bsums;
};

PEREGRINE_AVX2 inline Q8KBlock q8k(const uint8_t* a) {
  float d;
  std::memcpy(&d, a, 4);
  return {d, reinterpret_cast<const int8_t*>(a + 4), a + kQ8_KBsums};
}

// Σ scale[s] * bsums[s] over the 16 groups of 16 as int32 lanes (`scales16v`: 16 int16 scales).
PEREGRINE_AVX2 inline __m256i scaled_bsums(const Q8KBlock& y, __m256i scales16v) {
  return _mm256_madd_epi16(load256(y.bsums), scales16v);
}

// Σ over 32 values of u*a weighted per 16 by the int16 lanes of `scales`, as int32 lanes.
PEREGRINE_AVX2 inline __m256i weighted32(__m256i u, const int8_t* a, __m256i scales) {
  return _mm256_madd_epi16(dot_u8_i8_16(u, load256(a)), scales);
}

// Σ_s min[s] * (bsums[2s] + bsums[2s+1]) of a Q4_K/Q5_K block as 4 int32 lanes (`mins8`: the 8 mins
// as bytes in the low 64 bits).
PEREGRINE_AVX2 inline __m128i k4_mins_dot(const Q8KBlock& y, __m128i mins8) {
  const __m256i bsums = load256(y.bsums);
  const __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bsums), _mm256_extracti128_si256(bsums, 1));
  return _mm_madd_epi16(_mm_cvtepu8_epi16(mins8), pairs);
}

// Q4_K and Q5_K share everything but the fifth bit. NA activation rows `stride` bytes apart; the
// weight block is expanded once for all of them.
template <bool kFifthBit, int NA>
PEREGRINE_AVX2 inline void dot_k4(int64_t n, const uint8_t* w, const uint8_t* a, size_t stride, float* out) {
  constexpr int kBytes = kFifthBit ? kQ5_KBytes : kQ4_KBytes;
  constexpr int kQs = kFifthBit ? 48 : 16;
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i bit4 = _mm256_set1_epi8(0x10);
  // One accumulator per activation row takes both the scaled sums and the (subtracted) min term:
  // with 4 rows, separate min accumulators would not fit in the 16 vector registers.
  __m256 acc[NA];
  #pragma GCC unroll 4
  for (int j = 0; j < NA; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / 256; ++b, w += kBytes) {
    Q8KBlock y[NA];
    #pragma GCC unroll 4
    for (int j = 0; j < NA; ++j) y[j] = q8k(a + j * stride + b * kQ8_KBytes);
    uint32_t words[4];
    k4_scale_min_words(w + 4, words);
    const __m128i packed = _mm_setr_epi32(static_cast<int>(words[0]), static_cast<int>(words[1]),
                                          static_cast<int>(words[2]), static_cast<int>(words[3]));
    const __m256i scales = both_halves(_mm_cvtepu8_epi16(packed));
    const float d = f16(w), dmin = f16(w + 2);
    #pragma GCC unroll 4
    for (int j = 0; j < NA; ++j) {
      const __m256i mins = _mm256_inserti128_si256(_mm256_setzero_si256(), k4_mins_dot(y[j], _mm_srli_si128(packed, 8)), 0);
      acc[j] = _mm256_fnmadd_ps(_mm256_set1_ps(y[j].d * dmin), _mm256_cvtepi32_ps(mins), acc[j]);
    }
    [[maybe_unused]] const __m256i qh = kFifthBit ? load256(w + 16) : _mm256_setzero_si256();
    __m256i sumi[NA];
    #pragma GCC unroll 4
    for (int j = 0; j < NA; ++j) sumi[j] = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m256i q = load256(w + kQs + 32 * c);
      __m256i lo = _mm256_and_si256(q, low4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
      if constexpr (kFifthBit) {
        lo = _mm256_or_si256(lo, _mm256_and_si256(test_bit(qh, 1 << (2 * c)), bit4));
        hi = _mm256_or_si256(hi, _mm256_and_si256(test_bit(qh, 1 << (2 * c + 1)), bit4));
      }
      const __m256i sc_lo = pick_scales(scales, 2 * c, 2 * c);
      const __m256i sc_hi = pick_scales(scales, 2 * c + 1, 2 * c + 1);
      #pragma GCC unroll 4
      for (int j = 0; j < NA; ++j) {
        sumi[j] = _mm256_add_epi32(sumi[j], weighted32(lo, y[j].q + 64 * c, sc_lo));
        sumi[j] = _mm256_add_epi32(sumi[j], weighted32(hi, y[j].q + 64 * c + 32, sc_hi));
      }
    }
    #pragma GCC unroll 4
    for (int j = 0; j < NA; ++j) {
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(y[j].d * d), _mm256_cvtepi32_ps(sumi[j]), acc[j]);
    }
  }
  #pragma GCC unroll 4
  for (int j = 0; j < NA; ++j) out[j] = hsum(acc[j]);
}

template <int NA>
PEREGRINE_AVX2 inline void q4_k_kernel(int64_t n, const uint8_t* w, const uint8_t* a, size_t stride, float* y) {
  dot_k4<false, NA>(n, w, a, stride, y);
}
template <int NA>
PEREGRINE_AVX2 inline void q5_k_kernel(int64_t n, const uint8_t* w, const uint8_t* a, size_t stride, float* y) {
  dot_k4<true, NA>(n, w, a, stride, y);
}

template <int NA>
PEREGRINE_AVX2 inline void q6_k_kernel(int64_t n, const uint8_t* w, const uint8_t* a, size_t stride, float* out) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256 acc[NA];
  #pragma GCC unroll 4
  for (int j = 0; j < NA; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / 256; ++b, w += kQ6_KBytes) {
    Q8KBlock y[NA];
    #pragma GCC unroll 4
    for (int j = 0; j < NA; ++j) y[j] = q8k(a + j * stride + b * kQ8_KBytes);
    const uint8_t* sc = w + 192;
    // The stored 6-bit values are q + 32: subtract 32 * Σ scale * bsums at the end.
    const __m256i sc16 = _mm256_cvtepi8_epi16(load128(sc));
    __m256i sumi[NA];
    #pragma GCC unroll 4
    for (int j = 0; j < NA; ++j) {
      sumi[j] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(scaled_bsums(y[j], sc16), 5));
    }
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __m256i scales = both_halves(_mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc + 8 * h))));
      const __m256i ql0 = load256(w + 64 * h);
      const __m256i ql1 = load256(w + 64 * h + 32);
      const __m256i qh = load256(w + 128 + 32 * h);
      const __m256i q0 = _mm256_or_si256(_mm256_and_si256(ql0, low4),
                                         _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x03)), 4));
      const __m256i q1 = _mm256_or_si256(_mm256_and_si256(ql1, low4),
                                         _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x0C)), 2));
      const __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                                         _mm256_and_si256(qh, _mm256_set1_epi8(0x30)));
      const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                                         _mm256_srli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(static_cast<char>(0xC0))), 2));
      #pragma GCC unroll 4
      for (int j = 0; j < NA; ++j) {
        const int8_t* ay = y[j].q + 128 * h;
        sumi[j] = _mm256_add_epi32(sumi[j], weighted32(q0, ay, pick_scales(scales, 0, 1)));
        sumi[j] = _mm256_add_epi32(sumi[j], weighted32(q1, ay + 32, pick_scales(scales, 2, 3)));
        sumi[j] = _mm256_add_epi32(sumi[j], weighted32(q2, ay + 64, pick_scales(scales, 4, 5)));
        sumi[j] = _mm256_add_epi32(sumi[j], weighted32(q3, ay + 96, pick_scales(scales, 6, 7)));
      }
    }
    const float d = f16(w + 208);
    #pragma GCC unroll 4
    for (int j = 0; j < NA; ++j) {
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(y[j].d * d), _mm256_cvtepi32_ps(sumi[j]), acc[j]);
    }
  }
  #pragma GCC unroll 4
  for (int j = 0; j < NA; ++j) out[j] = hsum(acc[j]);
}

template <int NA>
PEREGRINE_AVX2 inline void q2_k_kernel(int64_t n, const uint8_t* w, const uint8_t* a, size_t stride, float* out) {
  const __m256i low2 = _mm256_set1_epi8(0x03);
  const __m128i low4 = _mm_set1_epi8(0x0F);
  // One accumulator per activation row takes both the scaled sums and the (subtracted) min term:
  // with 4 rows, separate min accumulators would not fit in the 16 vector registers.
  __m256 acc[NA];
  #pragma GCC unroll 4
  for (int j = 0; j < NA; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / 256; ++b, w += kQ2_KBytes) {
    Q8KBlock y[NA];
    #pragma GCC unroll 4
    for (int j = 0; j < NA; ++j) y[j] = q8k(a + j * stride + b * kQ8_KBytes);
    const __m128i packed = load128(w);
    const __m128i sc8 = _mm_and_si128(packed, low4);
    const __m256i mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), low4));
    const float d = f16(w + 80), dmin = f16(w + 82);
    __m256i sumi[NA];
    #pragma GCC unroll 4
    for (int j = 0; j < NA; ++j) {
      acc[j] = _mm256_fnmadd_ps(_mm256_set1_ps(y[j].d * dmin), _mm256_cvtepi32_ps(scaled_bsums(y[j], mins16)),
                                acc[j]);
      sumi[j] = _mm256_setzero_si256();
    }
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __m256i scales = both_halves(_mm_cvtepu8_epi16(h == 0 ? sc8 : _mm_srli_si128(sc8, 8)));
      const __m256i q = load256(w + 16 + 32 * h);
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        const __m256i u = _mm256_and_si256(_mm256_srli_epi16(q, 2 * k), low2);
        const __m256i sc = pick_scales(scales, 2 * k, 2 * k + 1);
        #pragma GCC unroll 4
        for (int j = 0; j < NA; ++j) {
          sumi[j] = _mm256_add_epi32(sumi[j], weighted32(u, y[j].q + 128 * h + 32 * k, sc));
        }
      }
    }
    #pragma GCC unroll 4
    for (int j = 0; j < NA; ++j) {
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(y[j].d * d), _mm256_cvtepi32_ps(sumi[j]), acc[j]);
    }
  }
  #pragma GCC unroll 4
  for (int j = 0; j < NA; ++j) out[j] = hsum(acc[j]);
}

template <int NA>
PEREGRINE_AVX2 inline void q3_k_kernel(int64_t n, const uint8_t* w, const uint8_t* a, size_t stride, float* out) {
  const __m256i low2 = _mm256_set1_epi8(0x03);
  const __m256i bit2 = _mm256_set1_epi8(0x04);
  __m256 acc[NA];
  #pragma GCC unroll 4
  for (int j = 0; j < NA; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / 256; ++b, w += kQ3_KBytes) {
    Q8KBlock y[NA];
    #pragma GCC unroll 4
    for (int j = 0; j < NA; ++j) y[j] = q8k(a + j * stride + b * kQ8_KBytes);
    uint32_t words[4];
    q3k_scale_words(w + 96, words);
    const __m128i sc8 = _mm_sub_epi8(_mm_setr_epi32(static_cast<int>(words[0]), static_cast<int>(words[1]),
                                                    static_cast<int>(words[2]), static_cast<int>(words[3])),
                                     _mm_set1_epi8(32));
    // Stored values are q + 4 (low 2 bits plus 4 when the hmask bit is set): subtract 4 Σ sc bsums.
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
    __m256i sumi[NA];
    #pragma GCC unroll 4
    for (int j = 0; j < NA; ++j) {
      sumi[j] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(scaled_bsums(y[j], sc16), 2));
    }
    const __m256i hm = load256(w);
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __m256i scales = both_halves(_mm_cvtepi8_epi16(h == 0 ? sc8 : _mm_srli_si128(sc8, 8)));
      const __m256i q = load256(w + 32 + 32 * h);
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        const __m256i high = _mm256_and_si256(test_bit(hm, 1 << (4 * h + k)), bit2);
        const __m256i u = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * k), low2), high);
        const __m256i sc = pick_scales(scales, 2 * k, 2 * k + 1);
        #pragma GCC unroll 4
        for (int j = 0; j < NA; ++j) {
          sumi[j] = _mm256_add_epi32(sumi[j], weighted32(u, y[j].q + 128 * h + 32 * k, sc));
        }
      }
    }
    const float d = f16(w + 108);
    #pragma GCC unroll 4
    for (int j = 0; j < NA; ++j) {
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(y[j].d * d), _mm256_cvtepi32_ps(sumi[j]), acc[j]);
    }
  }
  #pragma GCC unroll 4
  for (int j = 0; j < NA; ++j) out[j] = hsum(acc[j]);
}

// The 8 IQ4_XS sub-block scales (6-bit value − 32) as int16 in both 128-bit halves: low nibbles
// from scales_l, top two bits from scales_h (moved to bits 14-15 by a per-lane multiply).
PEREGRINE_AVX2 inline __m256i iq4xs_scales(const uint8_t* blk) {
  uint16_t scales_h;
  std::memcpy(&scales_h, blk + 2, 2);
  uint32_t scales_l;
  std::memcpy(&scales_l, blk + 4, 4);
  const __m128i packed = _mm_cvtsi32_si128(static_cast<int>(scales_l));
  const __m128i nib = _mm_set1_epi8(0x0F);
  const __m128i low = _mm_cvtepu8_epi16(
      _mm_unpacklo_epi8(_mm_and_si128(packed, nib), _mm_and_si128(_mm_srli_epi16(packed, 4), nib)));
  const __m128i high = _mm_srli_epi16(
      _mm_mullo_epi16(_mm_set1_epi16(static_cast<short>(scales_h)),
                      _mm_setr_epi16(1 << 14, 1 << 12, 1 << 10, 1 << 8, 1 << 6, 1 << 4, 1 << 2, 1)),
      14);
  return both_halves(_mm_sub_epi16(_mm_or_si128(low, _mm_slli_epi16(high, 4)), _mm_set1_epi16(32)));
}

// Two sub-blocks per step: one 32-byte load holds both, its low nibbles are the first 16 values of
// each and the high nibbles the last 16, so the activation halves are regrouped to match.
template <int NA>
PEREGRINE_AVX2 inline void iq4_xs_kernel(int64_t n, const uint8_t* w, const uint8_t* a, size_t stride, float* out) {
  const __m256i grid = _mm256_broadcastsi128_si256(load128(kIq4Grid));
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256 acc[NA];
  #pragma GCC unroll 4
  for (int j = 0; j < NA; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / 256; ++b, w += kIQ4XSBytes) {
    Q8KBlock y[NA];
    __m256i sumi[NA];
    #pragma GCC unroll 4
    for (int j = 0; j < NA; ++j) y[j] = q8k(a + j * stride + b * kQ8_KBytes), sumi[j] = _mm256_setzero_si256();
    const __m256i scales = iq4xs_scales(w);
#pragma GCC unroll 4
    for (int p = 0; p < 4; ++p) {
      const __m256i q = load256(w + 8 + 32 * p);
      const __m256i lo = _mm256_shuffle_epi8(grid, _mm256_and_si256(q, low4));
      const __m256i hi = _mm256_shuffle_epi8(grid, _mm256_and_si256(_mm256_srli_epi16(q, 4), low4));
      const __m256i sc = pick_scales(scales, 2 * p, 2 * p + 1);
      #pragma GCC unroll 4
      for (int j = 0; j < NA; ++j) {
        const __m256i a0 = load256(y[j].q + 64 * p);
        const __m256i a1 = load256(y[j].q + 64 * p + 32);
        const __m256i plo = _mm256_madd_epi16(dot_i8_i8_16(lo, _mm256_permute2x128_si256(a0, a1, 0x20)), sc);
        const __m256i phi = _mm256_madd_epi16(dot_i8_i8_16(hi, _mm256_permute2x128_si256(a0, a1, 0x31)), sc);
        sumi[j] = _mm256_add_epi32(sumi[j], _mm256_add_epi32(plo, phi));
      }
    }
    const float d = f16(w);
    #pragma GCC unroll 4
    for (int j = 0; j < NA; ++j) {
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(y[j].d * d), _mm256_cvtepi32_ps(sumi[j]), acc[j]);
    }
  }
  #pragma GCC unroll 4
  for (int j = 0; j < NA; ++j) out[j] = hsum(acc[j]);
}

}  // namespace

PEREGRINE_AVX2_SINGLE_AND_MULTI(q4_k, q4_k_kernel)
PEREGRINE_AVX2_SINGLE_AND_MULTI(q5_k, q5_k_kernel)
PEREGRINE_AVX2_SINGLE_AND_MULTI(q6_k, q6_k_kernel)
PEREGRINE_AVX2_SINGLE_AND_MULTI(q2_k, q2_k_kernel)
PEREGRINE_AVX2_SINGLE_AND_MULTI(q3_k, q3_k_kernel)
PEREGRINE_AVX2_SINGLE_AND_MULTI(iq4_xs, iq4_xs_kernel)

}  // namespace peregrine::cpu::kernels

#endif  // PEREGRINE_KERNELS_X86
