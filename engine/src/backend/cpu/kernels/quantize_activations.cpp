// Q8_0 / Q8_1 activation rows, bit-exact with ggml-cpu's x86 quantizer (quantize_row_q8_0/q8_1
// built with AVX2): per block of 32, max = max|x|, d = max / 127 (stored f16, round to nearest even),
// q = round_half_even(x * (127 / max)) — note 127 / max, not 1 / d — and for Q8_1
// s = f16(d * Σq). The scalar and AVX2 versions produce identical bytes (one float multiply and
// one round-to-nearest-even per value in both).
#include <cmath>
#include <cstring>

#include "backend/cpu/kernels/vec_dot_impl.h"
#include "peregrine/quant.h"

#if PEREGRINE_KERNELS_X86
#include "backend/cpu/kernels/avx2_util.h"
#endif

namespace peregrine::cpu::kernels {
namespace {

inline void store_half(uint8_t* p, uint16_t h) { std::memcpy(p, &h, 2); }

}  // namespace

void quantize_row_q8_0_scalar(const float* x, uint8_t* dst, int64_t n, bool with_sum) {
  const int qs = with_sum ? 4 : 2;
  const int bytes = with_sum ? kQ8_1Bytes : kQ8_0Bytes;
  for (int64_t b = 0; b < n / 32; ++b, x += 32, dst += bytes) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      // nearbyint rounds half to even in the default rounding mode, like _mm256_round_ps(NEAREST).
      const int q = static_cast<int>(std::nearbyint(x[j] * id));
      dst[qs + j] = static_cast<uint8_t>(static_cast<int8_t>(q));
      sum += q;
    }
    store_half(dst, quant::fp32_to_fp16(d));
    if (with_sum) store_half(dst + 2, quant::fp32_to_fp16(d * static_cast<float>(sum)));
  }
}

#if PEREGRINE_KERNELS_X86

PEREGRINE_AVX2 void quantize_row_q8_0_avx2(const float* x, uint8_t* dst, int64_t n, bool with_sum) {
  using namespace avx2;
  const int qs = with_sum ? 4 : 2;
  const int bytes = with_sum ? kQ8_1Bytes : kQ8_0Bytes;
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < n / 32; ++b, x += 32, dst += bytes) {
    __m256 v[4];
    for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(x + 8 * k);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                             _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float d = amax / 127.0f;
    const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    // int32 → int8 with packs (lane-interleaved), then undo the interleave.
    const __m256i p16a = _mm256_packs_epi32(q[0], q[1]);
    const __m256i p16b = _mm256_packs_epi32(q[2], q[3]);
    const __m256i p8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p16a, p16b),
                                                   _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + qs), p8);
    const uint16_t dh = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    std::memcpy(dst, &dh, 2);
    if (with_sum) {
      const __m256i s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
      __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
      const uint16_t sh = _cvtss_sh(d * static_cast<float>(_mm_cvtsi128_si32(s4)), _MM_FROUND_TO_NEAREST_INT);
      std::memcpy(dst + 2, &sh, 2);
    }
  }
}

// Q8_K exactly as ggml's reference quantizer (quant::quantize(Q8_K), the scalar path): max = the
// first value of largest magnitude, iscale = -127 / max, q = min(127, round_half_even(iscale * x)),
// d = 1 / iscale, bsums = sums of 16 q.
PEREGRINE_AVX2 void quantize_row_q8_k_avx2(const float* x, uint8_t* dst, int64_t n) {
  using namespace avx2;
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < n / 256; ++b, x += 256, dst += kQ8_KBytes) {
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < 32; ++k) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    if (amax == 0.0f) {
      std::memset(dst, 0, kQ8_KBytes);
      continue;
    }
    // The first value whose magnitude is amax gives the sign.
    const __m256 target = _mm256_set1_ps(amax);
    float max = amax;
    for (int k = 0; k < 32; ++k) {
      const __m256 v = _mm256_loadu_ps(x + 8 * k);
      const int hits = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, v), target, _CMP_EQ_OQ));
      if (hits != 0) {
        max = x[8 * k + __builtin_ctz(static_cast<unsigned>(hits))];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const __m256 mul = _mm256_set1_ps(iscale);
    const __m256i top = _mm256_set1_epi32(127);
    for (int c = 0; c < 8; ++c) {  // 32 values per step
      __m256i q[4];
      for (int k = 0; k < 4; ++k) {
        const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + 32 * c + 8 * k), mul);
        q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)), top);
      }
      const __m256i p8 = _mm256_permutevar8x32_epi32(
          _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3])),
          _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 4 + 32 * c), p8);
      // bsums of values 32c..32c+15 and 32c+16..32c+31.
      const __m256i s01 = _mm256_add_epi32(q[0], q[1]), s23 = _mm256_add_epi32(q[2], q[3]);
      __m128i h = _mm_hadd_epi32(_mm_add_epi32(_mm256_castsi256_si128(s01), _mm256_extracti128_si256(s01, 1)),
                                 _mm_add_epi32(_mm256_castsi256_si128(s23), _mm256_extracti128_si256(s23, 1)));
      h = _mm_hadd_epi32(h, h);  // [sum01, sum23, sum01, sum23]
      const int16_t sums[2] = {static_cast<int16_t>(_mm_cvtsi128_si32(h)),
                               static_cast<int16_t>(_mm_extract_epi32(h, 1))};
      std::memcpy(dst + kQ8_KBsums + 4 * c, sums, 4);
    }
    const float d = 1.0f / iscale;
    std::memcpy(dst, &d, 4);
  }
}

#endif  // PEREGRINE_KERNELS_X86

}  // namespace peregrine::cpu::kernels
