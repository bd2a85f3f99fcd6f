// K-quant super-blocks of 256 values split into 8 sub-blocks of 32, each with a 6-bit scale and a
// 6-bit minimum (Q4_K, Q5_K).
//
//   Q4_K  d | dmin | scales[12] | qs[128]            value = d*sc * q - dmin*m, q in 0..15
//   Q5_K  d | dmin | scales[12] | qh[32] | qs[128]   value = d*sc * q - dmin*m, q in 0..31
//
// scales[12] packs 8 (sc, m) pairs of 6 bits: for j < 4 sc_j = bytes[j] & 63, m_j = bytes[j+4] & 63;
// for j >= 4 the low nibbles sit in bytes[j+4] (sc low, m high) and the top two bits in the top
// bits of bytes[j-4] (sc) and bytes[j] (m). Each 64-value chunk stores its first 32 values in the
// low nibbles of 32 bytes and the next 32 in the high nibbles; Q5_K's fifth bit of value l of
// chunk c is bit 2c (first half) or 2c+1 (second half) of qh[l].
#include <algorithm>
#include <cmath>
#include <cstring>

#include "format/quant_kernels.h"
#include "format/quant_search.h"
#include "format/quant_search_groups.h"
#include "peregrine/quant.h"

namespace peregrine::quant::kernels {
namespace {

constexpr int kSuper = 256;
constexpr int kSub = 32;
constexpr int kSubBlocks = kSuper / kSub;

struct BlockQ4K { uint8_t d[2]; uint8_t dmin[2]; uint8_t scales[12]; uint8_t qs[128]; };
struct BlockQ5K { uint8_t d[2]; uint8_t dmin[2]; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; };
static_assert(sizeof(BlockQ4K) == 144 && sizeof(BlockQ5K) == 176);

float half_at(const uint8_t* p) { return fp16_to_fp32(load_u16(p)); }
void set_half(uint8_t* p, float v) { store_u16(p, fp32_to_fp16(v)); }

using search::nearest_int;

void unpack_scale_min(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

void pack_scale_mins(const uint8_t* ls, const uint8_t* lm, uint8_t* q) {
  for (int j = 0; j < kSubBlocks; ++j) {
    if (j < 4) {
      q[j] = ls[j];
      q[j + 4] = lm[j];
    } else {
      q[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
      q[j - 4] = static_cast<uint8_t>(q[j - 4] | ((ls[j] >> 4) << 6));
      q[j] = static_cast<uint8_t>(q[j] | ((lm[j] >> 4) << 6));
    }
  }
}

// Shared by Q4_K (nmax 15) and Q5_K (nmax 31): the sub-block fits, the 6-bit scale quantization,
// and the final levels re-derived from the stored scales (written to L, one per value).
// d/dmin/scales are the block's header fields.
template <int kNmax>
void fit_block(const float* x, const float* importance, uint8_t* d_field, uint8_t* dmin_field, uint8_t* scale_bytes,
               uint8_t* L) {
  uint8_t ls[kSubBlocks], lm[kSubBlocks];
  float mins[kSubBlocks], scales[kSubBlocks];
  if (!importance) {
    float all_weights[kSuper];
    for (int j = 0; j < kSubBlocks; ++j) {
      const float* xs = x + kSub * j;
      float sum_x2 = 0;
      for (int l = 0; l < kSub; ++l) sum_x2 += xs[l] * xs[l];
      const float av_x = std::sqrt(sum_x2 / kSub);
      for (int l = 0; l < kSub; ++l) all_weights[kSub * j + l] = av_x + std::fabs(xs[l]);
    }
    if constexpr (kNmax == 15)
      search::affine_scale_groups<kSubBlocks, kSub, false>(kNmax, x, all_weights, L, scales, mins, -1.f, 0.1f, 20);
    else
      search::affine_scale_groups<kSubBlocks, kSub, false>(kNmax, x, all_weights, L, scales, mins, -0.5f, 0.1f, 15);
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < kSubBlocks; ++j) {
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < kSubBlocks; ++j) {
      // ggml narrows to uint8 before capping at 63.
      ls[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
      lm[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
    }
    set_half(d_field, max_scale / 63.f);
    set_half(dmin_field, max_min / 63.f);
  } else {
    float sw[kSubBlocks], all_weights[kSuper];
    float sum_x2 = 0;
    for (int l = 0; l < kSuper; ++l) sum_x2 += x[l] * x[l];
    const float sigma2 = 2 * sum_x2 / kSuper;
    for (int j = 0; j < kSubBlocks; ++j) {
      const float* xs = x + kSub * j;
      const float* qw = importance + kSub * j;
      float* weights = all_weights + kSub * j;
      for (int l = 0; l < kSub; ++l) weights[l] = qw[l] * std::sqrt(sigma2 + xs[l] * xs[l]);
      float sumw = 0;
      for (int l = 0; l < kSub; ++l) sumw += weights[l];
      sw[j] = sumw;
    }
    search::affine_scale_groups<kSubBlocks, kSub, false>(kNmax, x, all_weights, L, scales, mins, -0.9f, 0.05f, 36);
    const float d_block = search::positive_scale(kSubBlocks, 63, scales, ls, sw);
    const float m_block = search::positive_scale(kSubBlocks, 63, mins, lm, sw);
    for (int j = 0; j < kSubBlocks; ++j) {
      ls[j] = std::min<uint8_t>(63, ls[j]);
      lm[j] = std::min<uint8_t>(63, lm[j]);
    }
    set_half(d_field, d_block);
    set_half(dmin_field, m_block);
  }
  std::memset(scale_bytes, 0, 12);
  pack_scale_mins(ls, lm, scale_bytes);

  const float d_all = half_at(d_field), m_all = half_at(dmin_field);
  for (int j = 0; j < kSubBlocks; ++j) {
    int sc, m;
    unpack_scale_min(j, scale_bytes, &sc, &m);
    const float d = d_all * static_cast<float>(sc);
    if (d == 0.f) continue;
    const float dm = m_all * static_cast<float>(m);
    for (int i = 0; i < kSub; ++i)
      L[kSub * j + i] = static_cast<uint8_t>(std::clamp(nearest_int((x[kSub * j + i] + dm) / d), 0, kNmax));
  }
}

}  // namespace

void dequantize_q4_k(const uint8_t* src, float* y, int64_t n_blocks) {
  const auto* b = reinterpret_cast<const BlockQ4K*>(src);
  for (int64_t i = 0; i < n_blocks; ++i, ++b) {
    const float d = half_at(b->d), min = half_at(b->dmin);
    const uint8_t* q = b->qs;
    for (int j = 0; j < kSubBlocks; j += 2, q += 32) {
      int sc, m;
      unpack_scale_min(j, b->scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc), m1 = min * static_cast<float>(m);
      unpack_scale_min(j + 1, b->scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc), m2 = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void dequantize_q5_k(const uint8_t* src, float* y, int64_t n_blocks) {
  const auto* b = reinterpret_cast<const BlockQ5K*>(src);
  for (int64_t i = 0; i < n_blocks; ++i, ++b) {
    const float d = half_at(b->d), min = half_at(b->dmin);
    const uint8_t* ql = b->qs;
    unsigned u1 = 1, u2 = 2;
    for (int j = 0; j < kSubBlocks; j += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
      int sc, m;
      unpack_scale_min(j, b->scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc), m1 = min * static_cast<float>(m);
      unpack_scale_min(j + 1, b->scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc), m2 = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0xF) + ((b->qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((b->qh[l] & u2) ? 16 : 0)) - m2;
    }
  }
}

void quantize_q4_k(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  auto* b = reinterpret_cast<BlockQ4K*>(dst);
  uint8_t L[kSuper];
  for (int64_t i = 0; i < n / kSuper; ++i, x += kSuper) {
    fit_block<15>(x, importance ? importance + kSuper * i : nullptr, b[i].d, b[i].dmin, b[i].scales, L);
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) b[i].qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + l + 32] << 4));
  }
}

void quantize_q5_k(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  auto* b = reinterpret_cast<BlockQ5K*>(dst);
  uint8_t L[kSuper];
  for (int64_t i = 0; i < n / kSuper; ++i, x += kSuper) {
    fit_block<31>(x, importance ? importance + kSuper * i : nullptr, b[i].d, b[i].dmin, b[i].scales, L);
    std::memset(b[i].qh, 0, sizeof b[i].qh);
    for (int c = 0; c < 4; ++c) {
      const auto bit_lo = static_cast<uint8_t>(1u << (2 * c)), bit_hi = static_cast<uint8_t>(2u << (2 * c));
      for (int l = 0; l < 32; ++l) {
        int l1 = L[64 * c + l], l2 = L[64 * c + l + 32];
        if (l1 > 15) {
          l1 -= 16;
          b[i].qh[l] |= bit_lo;
        }
        if (l2 > 15) {
          l2 -= 16;
          b[i].qh[l] |= bit_hi;
        }
        b[i].qs[32 * c + l] = static_cast<uint8_t>(l1 | (l2 << 4));
      }
    }
  }
}

}  // namespace peregrine::quant::kernels
