// AVX2 dot products for float weights and the 32-value block formats. One block of 32 values is
// one 256-bit register: the weights are expanded to signed (or, with a min, unsigned) bytes, the
// byte products summed to 8 int32 lanes, and those lanes scaled by d_w*d_a into float accumulators.
#include "backend/cpu/kernels/vec_dot_impl.h"

#if PEREGRINE_KERNELS_X86
#include "backend/cpu/kernels/avx2_util.h"

namespace peregrine::cpu::kernels {
namespace {

using namespace avx2;

// Load8(w, i) gives weights i..i+7 as floats, LoadOne(w, i) weight i.
template <auto Load8, auto LoadOne>
PEREGRINE_AVX2 inline float float_dot(int64_t n, const uint8_t* w, const float* a) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(Load8(w, i), _mm256_loadu_ps(a + i), acc0);
    acc1 = _mm256_fmadd_ps(Load8(w, i + 8), _mm256_loadu_ps(a + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(Load8(w, i + 16), _mm256_loadu_ps(a + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(Load8(w, i + 24), _mm256_loadu_ps(a + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(Load8(w, i), _mm256_loadu_ps(a + i), acc0);
  float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; i < n; ++i) sum += LoadOne(w, i) * a[i];
  return sum;
}

// Signed weight bytes × Q8_0 for NA activation rows: y[j] = Σ_blocks (d_w d_a) Σ q_w q_a, with
// `Expand(block)` giving the 32 signed weight values (computed once per block for all rows).
template <int kBytes, auto Expand, int NA>
PEREGRINE_AVX2 inline void dot_x_q8_0(int64_t n, const uint8_t* w, const uint8_t* a, size_t stride, float* y) {
  __m256 acc0[NA], acc1[NA];
  #pragma GCC unroll 4
  for (int j = 0; j < NA; ++j) acc0[j] = acc1[j] = _mm256_setzero_ps();
  const int64_t nb = n / 32;
  int64_t b = 0;
  // Two blocks per iteration on independent accumulators hide the FMA latency.
  for (; b + 2 <= nb; b += 2, w += 2 * kBytes) {
    const __m256i x0 = Expand(w), x1 = Expand(w + kBytes);
    const float d0 = f16(w), d1 = f16(w + kBytes);
    #pragma GCC unroll 4
    for (int j = 0; j < NA; ++j) {
      const uint8_t* aj = a + j * stride + b * kQ8_0Bytes;
      const __m256i p0 = pair_sums(dot_i8_i8_16(x0, load256(aj + 2)));
      const __m256i p1 = pair_sums(dot_i8_i8_16(x1, load256(aj + kQ8_0Bytes + 2)));
      acc0[j] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * f16(aj)), _mm256_cvtepi32_ps(p0), acc0[j]);
      acc1[j] = _mm256_fmadd_ps(_mm256_set1_ps(d1 * f16(aj + kQ8_0Bytes)), _mm256_cvtepi32_ps(p1), acc1[j]);
    }
  }
  if (b < nb) {
    const __m256i x0 = Expand(w);
    const float d0 = f16(w);
    #pragma GCC unroll 4
    for (int j = 0; j < NA; ++j) {
      const uint8_t* aj = a + j * stride + b * kQ8_0Bytes;
      const __m256i p0 = pair_sums(dot_i8_i8_16(x0, load256(aj + 2)));
      acc0[j] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * f16(aj)), _mm256_cvtepi32_ps(p0), acc0[j]);
    }
  }
  #pragma GCC unroll 4
  for (int j = 0; j < NA; ++j) y[j] = hsum(_mm256_add_ps(acc0[j], acc1[j]));
}

// Unsigned weight bytes with a min × Q8_1 for NA rows: y[j] = Σ (d_w d_a) Σ q_w q_a + m_w s_a.
template <int kBytes, auto Expand, int NA>
PEREGRINE_AVX2 inline void dot_x_q8_1(int64_t n, const uint8_t* w, const uint8_t* a, size_t stride, float* y) {
  __m256 acc[NA];
  float mins[NA];
  #pragma GCC unroll 4
  for (int j = 0; j < NA; ++j) acc[j] = _mm256_setzero_ps(), mins[j] = 0.0f;
  for (int64_t b = 0; b < n / 32; ++b, w += kBytes) {
    const __m256i x = Expand(w);
    const float d = f16(w), m = f16(w + 2);
    #pragma GCC unroll 4
    for (int j = 0; j < NA; ++j) {
      const uint8_t* aj = a + j * stride + b * kQ8_1Bytes;
      const __m256i p = pair_sums(dot_u8_i8_16(x, load256(aj + 4)));
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(d * f16(aj)), _mm256_cvtepi32_ps(p), acc[j]);
      mins[j] += m * f16(aj + 2);
    }
  }
  #pragma GCC unroll 4
  for (int j = 0; j < NA; ++j) y[j] = hsum(acc[j]) + mins[j];
}

PEREGRINE_AVX2 inline __m256i fifth_bits(const uint8_t* qh) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  return _mm256_and_si256(bits_to_bytes(bits), _mm256_set1_epi8(0x10));
}

// Weight expanders: one block → 32 bytes (signed for the Q8_0 pairings, unsigned for Q8_1).
PEREGRINE_AVX2 inline __m256i expand_q8_0(const uint8_t* blk) { return load256(blk + 2); }
PEREGRINE_AVX2 inline __m256i expand_q4_0(const uint8_t* blk) {
  return _mm256_sub_epi8(nibbles32(blk + 2), _mm256_set1_epi8(8));
}
PEREGRINE_AVX2 inline __m256i expand_q5_0(const uint8_t* blk) {
  return _mm256_sub_epi8(_mm256_or_si256(nibbles32(blk + 6), fifth_bits(blk + 2)), _mm256_set1_epi8(16));
}
PEREGRINE_AVX2 inline __m256i expand_iq4_nl(const uint8_t* blk) {
  return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(load128(kIq4Grid)), nibbles32(blk + 2));
}
PEREGRINE_AVX2 inline __m256i expand_q4_1(const uint8_t* blk) { return nibbles32(blk + 4); }
PEREGRINE_AVX2 inline __m256i expand_q5_1(const uint8_t* blk) {
  return _mm256_or_si256(nibbles32(blk + 8), fifth_bits(blk + 4));
}

PEREGRINE_AVX2 inline __m256 load8_f32(const uint8_t* w, int64_t i) {
  return _mm256_loadu_ps(reinterpret_cast<const float*>(w) + i);
}
PEREGRINE_AVX2 inline float load1_f32(const uint8_t* w, int64_t i) { return load_f32(w + 4 * i); }
PEREGRINE_AVX2 inline __m256 load8_f16(const uint8_t* w, int64_t i) { return _mm256_cvtph_ps(load128(w + 2 * i)); }
PEREGRINE_AVX2 inline float load1_f16(const uint8_t* w, int64_t i) { return f16(w + 2 * i); }
PEREGRINE_AVX2 inline __m256 load8_bf16(const uint8_t* w, int64_t i) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load128(w + 2 * i)), 16));
}
PEREGRINE_AVX2 inline float load1_bf16(const uint8_t* w, int64_t i) {
  const uint32_t bits = static_cast<uint32_t>(load_u16(w + 2 * i)) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace

PEREGRINE_AVX2 float vec_dot_f32_avx2(int64_t n, const void* w, const void* a) {
  return float_dot<load8_f32, load1_f32>(n, static_cast<const uint8_t*>(w), static_cast<const float*>(a));
}
PEREGRINE_AVX2 float vec_dot_f16_avx2(int64_t n, const void* w, const void* a) {
  return float_dot<load8_f16, load1_f16>(n, static_cast<const uint8_t*>(w), static_cast<const float*>(a));
}
PEREGRINE_AVX2 float vec_dot_bf16_avx2(int64_t n, const void* w, const void* a) {
  return float_dot<load8_bf16, load1_bf16>(n, static_cast<const uint8_t*>(w), static_cast<const float*>(a));
}

namespace {

template <int NA>
PEREGRINE_AVX2 inline void q8_0_kernel(int64_t n, const uint8_t* w, const uint8_t* a, size_t stride, float* y) {
  dot_x_q8_0<kQ8_0Bytes, expand_q8_0, NA>(n, w, a, stride, y);
}
template <int NA>
PEREGRINE_AVX2 inline void q4_0_kernel(int64_t n, const uint8_t* w, const uint8_t* a, size_t stride, float* y) {
  dot_x_q8_0<kQ4_0Bytes, expand_q4_0, NA>(n, w, a, stride, y);
}
template <int NA>
PEREGRINE_AVX2 inline void q5_0_kernel(int64_t n, const uint8_t* w, const uint8_t* a, size_t stride, float* y) {
  dot_x_q8_0<kQ5_0Bytes, expand_q5_0, NA>(n, w, a, stride, y);
}
template <int NA>
PEREGRINE_AVX2 inline void iq4_nl_kernel(int64_t n, const uint8_t* w, const uint8_t* a, size_t stride, float* y) {
  dot_x_q8_0<kIQ4NLBytes, expand_iq4_nl, NA>(n, w, a, stride, y);
}
template <int NA>
PEREGRINE_AVX2 inline void q4_1_kernel(int64_t n, const uint8_t* w, const uint8_t* a, size_t stride, float* y) {
  dot_x_q8_1<kQ4_1Bytes, expand_q4_1, NA>(n, w, a, stride, y);
}
template <int NA>
PEREGRINE_AVX2 inline void q5_1_kernel(int64_t n, const uint8_t* w, const uint8_t* a, size_t stride, float* y) {
  dot_x_q8_1<kQ5_1Bytes, expand_q5_1, NA>(n, w, a, stride, y);
}

}  // namespace

PEREGRINE_AVX2_SINGLE_AND_MULTI(q8_0, q8_0_kernel)
PEREGRINE_AVX2_SINGLE_AND_MULTI(q4_0, q4_0_kernel)
PEREGRINE_AVX2_SINGLE_AND_MULTI(q5_0, q5_0_kernel)
PEREGRINE_AVX2_SINGLE_AND_MULTI(iq4_nl, iq4_nl_kernel)
PEREGRINE_AVX2_SINGLE_AND_MULTI(q4_1, q4_1_kernel)
PEREGRINE_AVX2_SINGLE_AND_MULTI(q5_1, q5_1_kernel)

}  // namespace peregrine::cpu::kernels

#endif  // PEREGRINE_KERNELS_X86
