// K-quant super-blocks of 256 values split into 16 sub-blocks of 16 (Q2_K, Q3_K, Q6_K) and the
// 8-bit activation format Q8_K.
//
//   Q2_K  scales[16] | qs[64] | d | dmin    value = d*(sc & 15) * q - dmin*(sc >> 4), q in 0..3
//   Q3_K  hmask[32] | qs[64] | scales[12] | d   value = d*(sc - 32) * (q - 4), q in 0..7, 6-bit sc
//   Q6_K  ql[128] | qh[64] | scales[16] (int8) | d   value = d * sc * (q - 32), q in 0..63
//   Q8_K  d (float32) | qs[256] (int8) | bsums[16] (int16)   value = d * q
//
// 2-bit fields are packed four values to a byte: byte l of each 32-byte chunk holds values l,
// l+32, l+64, l+96 of its 128 values, lowest bits first. Dequantization evaluates exactly ggml's
// expressions; quantization follows ggml's reference searches (see quant_search.h).
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
constexpr int kSub = 16;
constexpr int kSubBlocks = kSuper / kSub;

struct BlockQ2K { uint8_t scales[16]; uint8_t qs[64]; uint8_t d[2]; uint8_t dmin[2]; };
struct BlockQ3K { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint8_t d[2]; };
struct BlockQ6K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint8_t d[2]; };
struct BlockQ8K { uint8_t d[4]; int8_t qs[256]; uint8_t bsums[32]; };
static_assert(sizeof(BlockQ2K) == 84 && sizeof(BlockQ3K) == 110 && sizeof(BlockQ6K) == 210 && sizeof(BlockQ8K) == 292);

float half_at(const uint8_t* p) { return fp16_to_fp32(load_u16(p)); }
void set_half(uint8_t* p, float v) { store_u16(p, fp32_to_fp16(v)); }

using search::nearest_int;

// Packs 256 two-bit levels (only the low 2 bits of each are used).
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < kSuper; j += 128)
    for (int l = 0; l < 32; ++l)
      qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

// ---- Q2_K ----

// Final levels from the stored (rounded) scales, as ggml re-derives them.
void q2k_requantize(const float* x, const BlockQ2K& b, uint8_t* L) {
  const float d_all = half_at(b.d), m_all = half_at(b.dmin);
  for (int j = 0; j < kSubBlocks; ++j) {
    const float d = d_all * static_cast<float>(b.scales[j] & 0xF);
    if (d == 0.f) continue;
    const float m = m_all * static_cast<float>(b.scales[j] >> 4);
    for (int i = 0; i < kSub; ++i)
      L[kSub * j + i] = static_cast<uint8_t>(std::clamp(nearest_int((x[kSub * j + i] + m) / d), 0, 3));
  }
}

void q2k_block_reference(const float* x, BlockQ2K& b) {
  uint8_t L[kSuper];
  float weights[kSuper], mins[kSubBlocks], scales[kSubBlocks];
  for (int i = 0; i < kSuper; ++i) weights[i] = std::fabs(x[i]);
  search::affine_scale_groups<kSubBlocks, kSub, true>(3, x, weights, L, scales, mins, -0.5f, 0.1f, 15);
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < kSubBlocks; ++j) {
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  if (max_scale > 0) {
    const float iscale = 15.f / max_scale;
    for (int j = 0; j < kSubBlocks; ++j) b.scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
    set_half(b.d, max_scale / 15.f);
  } else {
    std::memset(b.scales, 0, sizeof b.scales);
    set_half(b.d, 0.f);
  }
  if (max_min > 0) {
    const float iscale = 15.f / max_min;
    for (int j = 0; j < kSubBlocks; ++j) b.scales[j] = static_cast<uint8_t>(b.scales[j] | (nearest_int(iscale * mins[j]) << 4));
    set_half(b.dmin, max_min / 15.f);
  } else {
    set_half(b.dmin, 0.f);
  }
  q2k_requantize(x, b, L);
  pack_2bit(L, b.qs);
}

void q2k_block_weighted(const float* x, const float* importance, BlockQ2K& b) {
  uint8_t L[kSuper], Ls[kSubBlocks], Lm[kSubBlocks];
  float weight[kSuper], sw[kSubBlocks], mins[kSubBlocks], scales[kSubBlocks];
  float sumx2 = 0;
  for (int j = 0; j < kSuper; ++j) sumx2 += x[j] * x[j];
  const float sigma2 = sumx2 / kSuper;
  for (int j = 0; j < kSubBlocks; ++j) {
    const float* qw = importance + kSub * j;
    float* w = weight + kSub * j;
    for (int l = 0; l < kSub; ++l) w[l] = qw[l] * std::sqrt(sigma2 + x[kSub * j + l] * x[kSub * j + l]);
    sw[j] = 0;
    for (int l = 0; l < kSub; ++l) sw[j] += w[l];
  }
  search::affine_scale_groups<kSubBlocks, kSub, false>(3, x, weight, L, scales, mins, -0.9f, 0.05f, 36);
  set_half(b.d, search::positive_scale(kSubBlocks, 15, scales, Ls, sw));
  set_half(b.dmin, search::positive_scale(kSubBlocks, 15, mins, Lm, sw));
  for (int j = 0; j < kSubBlocks; ++j) b.scales[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
  q2k_requantize(x, b, L);
  pack_2bit(L, b.qs);
}

// ---- Q3_K ----

// 16 six-bit scales in 12 bytes: low nibbles in bytes 0..7 (sub-blocks 8..15 in the high nibble),
// the top two bits in bytes 8..11 (sub-block j at byte 8 + j%4, bit 2*(j/4)).
void q3k_pack_scales(const int* levels, uint8_t* packed) {
  std::memset(packed, 0, 12);
  for (int j = 0; j < kSubBlocks; ++j) {
    const int l = levels[j];
    if (j < 8) packed[j] = static_cast<uint8_t>(l & 0xF);
    else packed[j - 8] = static_cast<uint8_t>(packed[j - 8] | ((l & 0xF) << 4));
    packed[8 + j % 4] = static_cast<uint8_t>(packed[8 + j % 4] | ((l >> 4) << (2 * (j / 4))));
  }
}

int q3k_scale(const uint8_t* packed, int j) {
  const int low = j < 8 ? packed[j] & 0xF : packed[j - 8] >> 4;
  const int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// Final levels from the stored scales, then the high bits into hmask and the low bits into qs.
void q3k_finish(const float* x, int8_t* L, BlockQ3K& b) {
  const float d_all = half_at(b.d);
  for (int j = 0; j < kSubBlocks; ++j) {
    const float d = d_all * static_cast<float>(static_cast<int8_t>(q3k_scale(b.scales, j)));
    if (d == 0.f) continue;
    for (int i = 0; i < kSub; ++i)
      L[kSub * j + i] = static_cast<int8_t>(std::clamp(nearest_int(x[kSub * j + i] / d), -4, 3) + 4);
  }
  std::memset(b.hmask, 0, sizeof b.hmask);
  uint8_t low[kSuper];
  for (int j = 0; j < kSuper; ++j) {
    int l = L[j];
    if (l > 3) {
      b.hmask[j % 32] = static_cast<uint8_t>(b.hmask[j % 32] | (1u << (j / 32)));
      l -= 4;
    }
    low[j] = static_cast<uint8_t>(l);
  }
  pack_2bit(low, b.qs);
}

void q3k_block_reference(const float* x, BlockQ3K& b) {
  int8_t L[kSuper];
  float scales[kSubBlocks];
  float max_scale = 0, amax = 0;
  for (int j = 0; j < kSubBlocks; ++j) {
    scales[j] = search::symmetric_scale_descent(kSub, 4, x + kSub * j, L + kSub * j, true);
    const float scale = std::fabs(scales[j]);
    if (scale > amax) {
      amax = scale;
      max_scale = scales[j];
    }
  }
  if (max_scale != 0.f) {
    const float iscale = -32.f / max_scale;
    int levels[kSubBlocks];
    for (int j = 0; j < kSubBlocks; ++j) {
      // ggml stores the rounded value in an int8 before clamping; |iscale * scale| <= 32 keeps it in range.
      const int l = static_cast<int8_t>(nearest_int(iscale * scales[j]));
      levels[j] = std::clamp(l, -32, 31) + 32;
    }
    q3k_pack_scales(levels, b.scales);
    set_half(b.d, 1 / iscale);
  } else {
    std::memset(b.scales, 0, sizeof b.scales);
    set_half(b.d, 0.f);
  }
  q3k_finish(x, L, b);
}

void q3k_block_weighted(const float* x, const float* importance, BlockQ3K& b) {
  int8_t L[kSuper], Ls[kSubBlocks];
  float scales[kSubBlocks], weight[kSuper], sw[kSubBlocks];
  float sumx2 = 0;
  for (int j = 0; j < kSuper; ++j) sumx2 += x[j] * x[j];
  const float sigma2 = 2 * sumx2 / kSuper;
  for (int j = 0; j < kSubBlocks; ++j) {
    const float* qw = importance + kSub * j;
    float* w = weight + kSub * j;
    for (int l = 0; l < kSub; ++l) w[l] = qw[l] * std::sqrt(sigma2 + x[kSub * j + l] * x[kSub * j + l]);
    float sumw = 0;
    for (int l = 0; l < kSub; ++l) sumw += w[l];
    sw[j] = sumw;
  }
  search::symmetric_scale_groups<kSubBlocks, kSub>(4, x, weight, L, scales);
  const float d_block = search::symmetric_scale(kSubBlocks, 32, scales, Ls, 1, sw);
  int levels[kSubBlocks];
  for (int j = 0; j < kSubBlocks; ++j) levels[j] = Ls[j];
  q3k_pack_scales(levels, b.scales);
  set_half(b.d, d_block);
  q3k_finish(x, L, b);
}

// ---- Q6_K ----

void q6k_block(const float* x, const float* importance, BlockQ6K& b) {
  int8_t L[kSuper];
  float scales[kSubBlocks], weights[kSuper];
  // With importance ggml uses the raw importance as the weights (no sigma term) for Q6_K.
  for (int i = 0; i < kSuper; ++i) weights[i] = importance ? importance[i] : x[i] * x[i];
  search::symmetric_scale_groups<kSubBlocks, kSub>(32, x, weights, L, scales);
  float max_scale = 0, max_abs_scale = 0;
  for (int j = 0; j < kSubBlocks; ++j) {
    const float abs_scale = std::fabs(scales[j]);
    if (abs_scale > max_abs_scale) {
      max_abs_scale = abs_scale;
      max_scale = scales[j];
    }
  }
  if (max_abs_scale < search::kGroupMaxEps) {
    std::memset(&b, 0, sizeof b);
    return;
  }
  const float iscale = -128.f / max_scale;
  set_half(b.d, 1 / iscale);
  for (int j = 0; j < kSubBlocks; ++j) b.scales[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[j])));
  const float d_all = half_at(b.d);
  for (int j = 0; j < kSubBlocks; ++j) {
    const float d = d_all * static_cast<float>(b.scales[j]);
    if (d == 0.f) continue;
    for (int i = 0; i < kSub; ++i)
      L[kSub * j + i] = static_cast<int8_t>(std::clamp(nearest_int(x[kSub * j + i] / d), -32, 31) + 32);
  }
  // Per 128 values: ql[l] = low nibbles of l and l+64, ql[l+32] = of l+32 and l+96; qh[l] = the
  // four 2-bit high parts of l, l+32, l+64, l+96.
  for (int half = 0; half < 2; ++half) {
    const int8_t* Lh = L + 128 * half;
    uint8_t* ql = b.ql + 64 * half;
    uint8_t* qh = b.qh + 32 * half;
    for (int l = 0; l < 32; ++l) {
      ql[l] = static_cast<uint8_t>((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
      ql[l + 32] = static_cast<uint8_t>((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
      qh[l] = static_cast<uint8_t>((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
    }
  }
}

}  // namespace

void dequantize_q2_k(const uint8_t* src, float* y, int64_t n_blocks) {
  const auto* b = reinterpret_cast<const BlockQ2K*>(src);
  for (int64_t i = 0; i < n_blocks; ++i, ++b) {
    const float d = half_at(b->d), min = half_at(b->dmin);
    const uint8_t* q = b->qs;
    int is = 0;
    for (int n = 0; n < kSuper; n += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int part = 0; part < 2; ++part) {
          const uint8_t sc = b->scales[is++];
          const float dl = d * static_cast<float>(sc & 0xF), ml = min * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + 16 * part] >> shift) & 3) - ml;
        }
      }
    }
  }
}

void dequantize_q3_k(const uint8_t* src, float* y, int64_t n_blocks) {
  const auto* b = reinterpret_cast<const BlockQ3K*>(src);
  for (int64_t i = 0; i < n_blocks; ++i, ++b) {
    const float d_all = half_at(b->d);
    const uint8_t* q = b->qs;
    int is = 0;
    unsigned mask = 1;
    for (int n = 0; n < kSuper; n += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, mask <<= 1) {
        for (int part = 0; part < 2; ++part) {
          const float dl = d_all * static_cast<float>(q3k_scale(b->scales, is++));
          for (int l = 0; l < 16; ++l) {
            const int k = l + 16 * part;
            const int level = ((q[k] >> shift) & 3) - ((b->hmask[k] & mask) ? 0 : 4);
            *y++ = dl * static_cast<float>(level);
          }
        }
      }
    }
  }
}

void dequantize_q6_k(const uint8_t* src, float* y, int64_t n_blocks) {
  const auto* b = reinterpret_cast<const BlockQ6K*>(src);
  for (int64_t i = 0; i < n_blocks; ++i, ++b) {
    const float d = half_at(b->d);
    for (int half = 0; half < 2; ++half, y += 128) {
      const uint8_t* ql = b->ql + 64 * half;
      const uint8_t* qh = b->qh + 32 * half;
      const int8_t* sc = b->scales + 8 * half;
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

void dequantize_q8_k(const uint8_t* src, float* y, int64_t n_blocks) {
  const auto* b = reinterpret_cast<const BlockQ8K*>(src);
  for (int64_t i = 0; i < n_blocks; ++i, ++b) {
    const float d = load_f32(b->d);
    for (int j = 0; j < kSuper; ++j) *y++ = d * static_cast<float>(b->qs[j]);
  }
}

void quantize_q2_k(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  auto* b = reinterpret_cast<BlockQ2K*>(dst);
  for (int64_t i = 0; i < n / kSuper; ++i, x += kSuper) {
    if (importance) q2k_block_weighted(x, importance + kSuper * i, b[i]);
    else q2k_block_reference(x, b[i]);
  }
}

void quantize_q3_k(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  auto* b = reinterpret_cast<BlockQ3K*>(dst);
  for (int64_t i = 0; i < n / kSuper; ++i, x += kSuper) {
    if (importance) q3k_block_weighted(x, importance + kSuper * i, b[i]);
    else q3k_block_reference(x, b[i]);
  }
}

void quantize_q6_k(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  auto* b = reinterpret_cast<BlockQ6K*>(dst);
  for (int64_t i = 0; i < n / kSuper; ++i, x += kSuper) q6k_block(x, importance ? importance + kSuper * i : nullptr, b[i]);
}

void quantize_q8_k(const float* x, uint8_t* dst, int64_t n, const float*) {
  // Scale = the value of largest magnitude (sign kept) / -127, so that value maps to -127 exactly;
  // bsums hold the sums of each 16 quants (used by dot products).
  auto* b = reinterpret_cast<BlockQ8K*>(dst);
  for (int64_t i = 0; i < n / kSuper; ++i, x += kSuper) {
    float max = 0, amax = 0;
    for (int j = 0; j < kSuper; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0.f) {
      std::memset(&b[i], 0, sizeof b[i]);
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < kSuper; ++j) b[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    for (int j = 0; j < kSubBlocks; ++j) {
      int sum = 0;
      for (int l = 0; l < kSub; ++l) sum += b[i].qs[kSub * j + l];
      store_u16(b[i].bsums + 2 * j, static_cast<uint16_t>(static_cast<int16_t>(sum)));
    }
    store_f32(b[i].d, 1 / iscale);
  }
}

}  // namespace peregrine::quant::kernels
