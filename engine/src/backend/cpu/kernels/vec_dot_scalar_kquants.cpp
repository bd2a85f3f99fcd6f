// Portable dot products of the 256-value super-block formats (Q2_K..Q6_K, IQ4_XS) with Q8_K
// activations. Each block is unpacked to its integer values, the integer dot product of every
// sub-block is weighted by its integer scale, and only then converted to float — so the result
// differs from the exact dot product of the dequantized rows only by the per-block float rounding.
#include "backend/cpu/kernels/vec_dot_impl.h"
#include "peregrine/quant.h"

namespace peregrine::cpu::kernels {
namespace {

inline float f16(const uint8_t* p) { return quant::fp16_to_fp32(load_u16(p)); }

// Σ_s scale[s] * Σ_{values of sub-block s} q * a for `n_sub` sub-blocks of 256 / n_sub values.
inline int scaled_dot(const int8_t* q, const int8_t* a, const int* scale, int n_sub) {
  const int len = 256 / n_sub;
  int total = 0;
  for (int s = 0; s < n_sub; ++s) {
    int sum = 0;
    for (int j = 0; j < len; ++j) sum += q[s * len + j] * a[s * len + j];
    total += scale[s] * sum;
  }
  return total;
}

struct Q8K {
  float d;
  const int8_t* q;
  int bsum(int g) const { return load_i16(reinterpret_cast<const uint8_t*>(q) + 256 + 2 * g); }
};
inline Q8K q8k(const uint8_t* a) { return {load_f32(a), reinterpret_cast<const int8_t*>(a + 4)}; }

// Runs `block_dot(weight_block, activation) -> float` over the row and sums in float.
template <int kBytes, typename BlockDot>
float over_blocks(int64_t n, const void* wv, const void* av, BlockDot block_dot) {
  const auto* w = static_cast<const uint8_t*>(wv);
  const auto* a = static_cast<const uint8_t*>(av);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / 256; ++b, w += kBytes, a += kQ8_KBytes) sum += block_dot(w, q8k(a));
  return sum;
}

}  // namespace

float vec_dot_q2_k_scalar(int64_t n, const void* w, const void* a) {
  return over_blocks<kQ2_KBytes>(n, w, a, [](const uint8_t* blk, const Q8K& y) {
    const uint8_t* scales = blk;
    const uint8_t* qs = blk + 16;
    int8_t q[256];
    for (int h = 0; h < 2; ++h)
      for (int j = 0; j < 4; ++j)
        for (int l = 0; l < 32; ++l) q[128 * h + 32 * j + l] = static_cast<int8_t>((qs[32 * h + l] >> (2 * j)) & 3);
    int sc[16];
    int mins = 0;
    for (int s = 0; s < 16; ++s) {
      sc[s] = scales[s] & 0xF;
      mins += (scales[s] >> 4) * y.bsum(s);
    }
    const float dall = y.d * f16(blk + 80);
    const float dmin = y.d * f16(blk + 82);
    return dall * static_cast<float>(scaled_dot(q, y.q, sc, 16)) - dmin * static_cast<float>(mins);
  });
}

float vec_dot_q3_k_scalar(int64_t n, const void* w, const void* a) {
  return over_blocks<kQ3_KBytes>(n, w, a, [](const uint8_t* blk, const Q8K& y) {
    const uint8_t* hmask = blk;
    const uint8_t* qs = blk + 32;
    int8_t q[256];
    for (int h = 0; h < 2; ++h)
      for (int j = 0; j < 4; ++j)
        for (int l = 0; l < 32; ++l) {
          const int low = (qs[32 * h + l] >> (2 * j)) & 3;
          const int high = (hmask[l] >> (4 * h + j)) & 1;
          q[128 * h + 32 * j + l] = static_cast<int8_t>(low - (high ? 0 : 4));
        }
    int8_t sc8[16];
    q3k_scales(blk + 96, sc8);
    int sc[16];
    for (int s = 0; s < 16; ++s) sc[s] = sc8[s];
    return (y.d * f16(blk + 108)) * static_cast<float>(scaled_dot(q, y.q, sc, 16));
  });
}

float vec_dot_q4_k_scalar(int64_t n, const void* w, const void* a) {
  return over_blocks<kQ4_KBytes>(n, w, a, [](const uint8_t* blk, const Q8K& y) {
    const uint8_t* qs = blk + 16;
    int8_t q[256];
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        q[64 * c + l] = static_cast<int8_t>(qs[32 * c + l] & 0xF);
        q[64 * c + 32 + l] = static_cast<int8_t>(qs[32 * c + l] >> 4);
      }
    int sc[8];
    int mins = 0;
    for (int s = 0; s < 8; ++s) {
      uint8_t d6, m6;
      k4_scale_min(s, blk + 4, d6, m6);
      sc[s] = d6;
      mins += m6 * (y.bsum(2 * s) + y.bsum(2 * s + 1));
    }
    const float d = y.d * f16(blk);
    const float dmin = y.d * f16(blk + 2);
    return d * static_cast<float>(scaled_dot(q, y.q, sc, 8)) - dmin * static_cast<float>(mins);
  });
}

float vec_dot_q5_k_scalar(int64_t n, const void* w, const void* a) {
  return over_blocks<kQ5_KBytes>(n, w, a, [](const uint8_t* blk, const Q8K& y) {
    const uint8_t* qh = blk + 16;
    const uint8_t* qs = blk + 48;
    int8_t q[256];
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        const int h0 = (qh[l] >> (2 * c)) & 1;
        const int h1 = (qh[l] >> (2 * c + 1)) & 1;
        q[64 * c + l] = static_cast<int8_t>((qs[32 * c + l] & 0xF) | (h0 << 4));
        q[64 * c + 32 + l] = static_cast<int8_t>((qs[32 * c + l] >> 4) | (h1 << 4));
      }
    int sc[8];
    int mins = 0;
    for (int s = 0; s < 8; ++s) {
      uint8_t d6, m6;
      k4_scale_min(s, blk + 4, d6, m6);
      sc[s] = d6;
      mins += m6 * (y.bsum(2 * s) + y.bsum(2 * s + 1));
    }
    const float d = y.d * f16(blk);
    const float dmin = y.d * f16(blk + 2);
    return d * static_cast<float>(scaled_dot(q, y.q, sc, 8)) - dmin * static_cast<float>(mins);
  });
}

float vec_dot_q6_k_scalar(int64_t n, const void* w, const void* a) {
  return over_blocks<kQ6_KBytes>(n, w, a, [](const uint8_t* blk, const Q8K& y) {
    int8_t q[256];
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = blk + 64 * h;
      const uint8_t* qh = blk + 128 + 32 * h;
      int8_t* out = q + 128 * h;
      for (int l = 0; l < 32; ++l) {
        out[l] = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        out[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        out[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        out[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
    }
    int sc[16];
    for (int s = 0; s < 16; ++s) sc[s] = static_cast<int8_t>(blk[192 + s]);
    return (y.d * f16(blk + 208)) * static_cast<float>(scaled_dot(q, y.q, sc, 16));
  });
}

float vec_dot_iq4_xs_scalar(int64_t n, const void* w, const void* a) {
  return over_blocks<kIQ4XSBytes>(n, w, a, [](const uint8_t* blk, const Q8K& y) {
    const uint8_t* qs = blk + 8;
    int8_t q[256];
    int sc[8];
    for (int s = 0; s < 8; ++s) {
      for (int j = 0; j < 16; ++j) {
        q[32 * s + j] = kIq4Grid[qs[16 * s + j] & 0xF];
        q[32 * s + j + 16] = kIq4Grid[qs[16 * s + j] >> 4];
      }
      sc[s] = iq4xs_scale(blk, s);
    }
    return (y.d * f16(blk)) * static_cast<float>(scaled_dot(q, y.q, sc, 8));
  });
}

}  // namespace peregrine::cpu::kernels
