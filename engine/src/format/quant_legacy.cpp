// The original ggml block formats: 32 values per block, one fp16 scale (and for the _1 formats an
// fp16 minimum).
//
//   Q4_0  d | qs[16]          value = d * (q - 8),      q in 0..15, low nibbles = values 0..15
//   Q4_1  d m | qs[16]        value = d * q + m,        q in 0..15
//   Q5_0  d | qh[4] | qs[16]  value = d * (q - 16),     q in 0..31, bit 4 of value j in qh bit j
//   Q5_1  d m | qh[4] | qs[16] value = d * q + m
//   Q8_0  d | qs[32] (int8)   value = d * q
//
// Dequantization evaluates exactly ggml's expressions (the products are exact, so the result does
// not depend on FMA contraction). Quantization without importance follows ggml's reference
// quantizers (truncating casts and all); with importance it follows ggml's weighted searches.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>

#include "format/quant_kernels.h"
#include "format/quant_search.h"
#include "format/quant_search_groups.h"
#include "peregrine/q8_0_block.h"
#include "peregrine/quant.h"

namespace peregrine::quant::kernels {
namespace {

constexpr int kBlock = 32;

struct BlockQ4_0 { uint8_t d[2]; uint8_t qs[16]; };
struct BlockQ4_1 { uint8_t d[2]; uint8_t m[2]; uint8_t qs[16]; };
struct BlockQ5_0 { uint8_t d[2]; uint8_t qh[4]; uint8_t qs[16]; };
struct BlockQ5_1 { uint8_t d[2]; uint8_t m[2]; uint8_t qh[4]; uint8_t qs[16]; };
struct BlockQ8_0 { uint8_t d[2]; int8_t qs[kQ8_0BlockValues]; };
static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == kQ8_0BlockBytes && kQ8_0BlockValues == kBlock);

float half_at(const uint8_t* p) { return fp16_to_fp32(load_u16(p)); }
void set_half(uint8_t* p, float v) { store_u16(p, fp32_to_fp16(v)); }

// ggml's float -> small-integer casts truncate toward zero. Within the int8 range this is the
// same; outside it (only reachable with non-finite inputs or scales that overflow) C++ leaves the
// conversion undefined, so clamp first and keep the result well defined.
int truncate_level(float v) {
  v = v < -128.f ? -128.f : v;
  v = v > 127.f ? 127.f : v;
  return static_cast<int>(v != v ? 0.f : v);
}

// Packs 32 five-bit levels: low nibbles into qs (value j and j+16 share a byte), bit 4 into qh.
void pack_5bit(const uint8_t* levels, uint8_t* qs, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const uint8_t lo = levels[j], hi = levels[j + 16];
    qs[j] = static_cast<uint8_t>((lo & 0x0F) | ((hi & 0x0F) << 4));
    qh |= static_cast<uint32_t>((lo & 0x10u) >> 4) << j;
    qh |= static_cast<uint32_t>((hi & 0x10u) >> 4) << (j + 16);
  }
  std::memcpy(qh_bytes, &qh, 4);
}

uint32_t high_bits(const uint8_t* qh_bytes) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  return qh;
}

// sigma^2 of a whole row: the weighted searches scale importance by sqrt(sigma^2 + x^2).
float row_mean_square(const float* x, int64_t n) {
  float sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += x[j] * x[j];
  return sum / static_cast<float>(n);
}

void importance_weights(const float* x, const float* importance, float sigma2, float* weight) {
  for (int j = 0; j < kBlock; ++j) weight[j] = importance[j] * std::sqrt(sigma2 + x[j] * x[j]);
}

// Importance-weighted quantization runs llama.cpp's per-block search on eight blocks at a time
// (quant_search_groups.h); the tail of a row is padded with all-zero blocks, which the searches
// leave at scale 0 and which are not written. fit(x, weights, first_block, count) gets 8 blocks.
constexpr int kBatch = 8;

template <class Fit>
void for_each_weighted_batch(const float* x, const float* importance, int64_t n, Fit fit) {
  const float sigma2 = row_mean_square(x, n);
  const int64_t n_blocks = n / kBlock;
  float xs[kBatch * kBlock], ws[kBatch * kBlock];
  for (int64_t first = 0; first < n_blocks; first += kBatch) {
    const int count = static_cast<int>(std::min<int64_t>(kBatch, n_blocks - first));
    std::fill(std::begin(xs), std::end(xs), 0.f);
    std::fill(std::begin(ws), std::end(ws), 0.f);
    for (int k = 0; k < count; ++k) {
      const float* xb = x + (first + k) * kBlock;
      std::copy(xb, xb + kBlock, xs + k * kBlock);
      importance_weights(xb, importance + (first + k) * kBlock, sigma2, ws + k * kBlock);
    }
    fit(xs, ws, first, count);
  }
}

// Value of largest magnitude in the block, sign kept (first one on ties).
float signed_absmax(const float* x) {
  float amax = 0, max = 0;
  for (int j = 0; j < kBlock; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

}  // namespace

void dequantize_q4_0(const uint8_t* src, float* dst, int64_t n_blocks) {
  const auto* b = reinterpret_cast<const BlockQ4_0*>(src);
  for (int64_t i = 0; i < n_blocks; ++i, ++b, dst += kBlock) {
    const float d = half_at(b->d);
    for (int j = 0; j < 16; ++j) {
      dst[j] = static_cast<float>((b->qs[j] & 0x0F) - 8) * d;
      dst[j + 16] = static_cast<float>((b->qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_q4_1(const uint8_t* src, float* dst, int64_t n_blocks) {
  const auto* b = reinterpret_cast<const BlockQ4_1*>(src);
  for (int64_t i = 0; i < n_blocks; ++i, ++b, dst += kBlock) {
    const float d = half_at(b->d), m = half_at(b->m);
    for (int j = 0; j < 16; ++j) {
      dst[j] = static_cast<float>(b->qs[j] & 0x0F) * d + m;
      dst[j + 16] = static_cast<float>(b->qs[j] >> 4) * d + m;
    }
  }
}

void dequantize_q5_0(const uint8_t* src, float* dst, int64_t n_blocks) {
  const auto* b = reinterpret_cast<const BlockQ5_0*>(src);
  for (int64_t i = 0; i < n_blocks; ++i, ++b, dst += kBlock) {
    const float d = half_at(b->d);
    const uint32_t qh = high_bits(b->qh);
    for (int j = 0; j < 16; ++j) {
      const int lo = (b->qs[j] & 0x0F) | static_cast<int>(((qh >> j) << 4) & 0x10);
      const int hi = (b->qs[j] >> 4) | static_cast<int>((qh >> (j + 12)) & 0x10);
      dst[j] = static_cast<float>(lo - 16) * d;
      dst[j + 16] = static_cast<float>(hi - 16) * d;
    }
  }
}

void dequantize_q5_1(const uint8_t* src, float* dst, int64_t n_blocks) {
  const auto* b = reinterpret_cast<const BlockQ5_1*>(src);
  for (int64_t i = 0; i < n_blocks; ++i, ++b, dst += kBlock) {
    const float d = half_at(b->d), m = half_at(b->m);
    const uint32_t qh = high_bits(b->qh);
    for (int j = 0; j < 16; ++j) {
      const int lo = (b->qs[j] & 0x0F) | static_cast<int>(((qh >> j) << 4) & 0x10);
      const int hi = (b->qs[j] >> 4) | static_cast<int>((qh >> (j + 12)) & 0x10);
      dst[j] = static_cast<float>(lo) * d + m;
      dst[j + 16] = static_cast<float>(hi) * d + m;
    }
  }
}

void dequantize_q8_0(const uint8_t* src, float* dst, int64_t n_blocks) {
  const auto* b = reinterpret_cast<const BlockQ8_0*>(src);
  for (int64_t i = 0; i < n_blocks; ++i, ++b, dst += kBlock) {
    const float d = half_at(b->d);
    for (int j = 0; j < kBlock; ++j) dst[j] = static_cast<float>(b->qs[j]) * d;
  }
}

void quantize_q4_0(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  auto* b = reinterpret_cast<BlockQ4_0*>(dst);
  const int64_t n_blocks = n / kBlock;
  if (importance) {
    for_each_weighted_batch(x, importance, n, [&](const float* xs, const float* ws, int64_t first, int count) {
      int8_t L[kBatch * kBlock];
      float scales[kBatch];
      search::symmetric_scale_groups<kBatch, kBlock>(8, xs, ws, L, scales);
      for (int k = 0; k < count; ++k) {
        set_half(b[first + k].d, scales[k]);
        const int8_t* Lk = L + k * kBlock;
        for (int j = 0; j < 16; ++j) b[first + k].qs[j] = static_cast<uint8_t>(Lk[j] | (Lk[j + 16] << 4));
      }
    });
    return;
  }
  for (int64_t i = 0; i < n_blocks; ++i, x += kBlock) {
    // The extreme value maps to level 0 exactly (scale = max / -8); levels are x/d + 8 truncated
    // after adding 0.5, i.e. rounded half up, and capped at 15.
    const float d = signed_absmax(x) / -8;
    const float id = d != 0.f ? 1.0f / d : 0.0f;
    set_half(b[i].d, d);
    for (int j = 0; j < 16; ++j) {
      const auto lo = static_cast<uint8_t>(std::min(15, truncate_level(x[j] * id + 8.5f)));
      const auto hi = static_cast<uint8_t>(std::min(15, truncate_level(x[j + 16] * id + 8.5f)));
      b[i].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void quantize_q4_1(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  auto* b = reinterpret_cast<BlockQ4_1*>(dst);
  const int64_t n_blocks = n / kBlock;
  if (importance) {
    for_each_weighted_batch(x, importance, n, [&](const float* xs, const float* ws, int64_t first, int count) {
      uint8_t L[kBatch * kBlock];
      float scales[kBatch], mins[kBatch];
      search::affine_scale_groups<kBatch, kBlock, false>(15, xs, ws, L, scales, mins, -0.9f, 0.05f, 36);
      for (int k = 0; k < count; ++k) {
        set_half(b[first + k].d, scales[k]);
        set_half(b[first + k].m, -mins[k]);
        const uint8_t* Lk = L + k * kBlock;
        for (int j = 0; j < 16; ++j) b[first + k].qs[j] = static_cast<uint8_t>(Lk[j] | (Lk[j + 16] << 4));
      }
    });
    return;
  }
  for (int64_t i = 0; i < n_blocks; ++i, x += kBlock) {
    float min = std::numeric_limits<float>::max(), max = -std::numeric_limits<float>::max();
    for (int j = 0; j < kBlock; ++j) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / 15;
    const float id = d != 0.f ? 1.0f / d : 0.0f;
    set_half(b[i].d, d);
    set_half(b[i].m, min);
    for (int j = 0; j < 16; ++j) {
      const auto lo = static_cast<uint8_t>(std::min(15, truncate_level((x[j] - min) * id + 0.5f)));
      const auto hi = static_cast<uint8_t>(std::min(15, truncate_level((x[j + 16] - min) * id + 0.5f)));
      b[i].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void quantize_q5_0(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  auto* b = reinterpret_cast<BlockQ5_0*>(dst);
  const int64_t n_blocks = n / kBlock;
  uint8_t levels[kBlock];
  if (importance) {
    for_each_weighted_batch(x, importance, n, [&](const float* xs, const float* ws, int64_t first, int count) {
      int8_t L[kBatch * kBlock];
      float scales[kBatch];
      search::symmetric_scale_groups<kBatch, kBlock>(16, xs, ws, L, scales);
      for (int k = 0; k < count; ++k) {
        set_half(b[first + k].d, scales[k]);
        for (int j = 0; j < kBlock; ++j) levels[j] = static_cast<uint8_t>(L[k * kBlock + j]);
        pack_5bit(levels, b[first + k].qs, b[first + k].qh);
      }
    });
    return;
  }
  for (int64_t i = 0; i < n_blocks; ++i, x += kBlock) {
    const float d = signed_absmax(x) / -16;
    const float id = d != 0.f ? 1.0f / d : 0.0f;
    set_half(b[i].d, d);
    for (int j = 0; j < kBlock; ++j)
      levels[j] = static_cast<uint8_t>(std::min(31, truncate_level(x[j] * id + 16.5f)));
    pack_5bit(levels, b[i].qs, b[i].qh);
  }
}

void quantize_q5_1(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  auto* b = reinterpret_cast<BlockQ5_1*>(dst);
  const int64_t n_blocks = n / kBlock;
  uint8_t levels[kBlock];
  if (importance) {
    for_each_weighted_batch(x, importance, n, [&](const float* xs, const float* ws, int64_t first, int count) {
      uint8_t L[kBatch * kBlock];
      float scales[kBatch], mins[kBatch];
      search::affine_scale_groups<kBatch, kBlock, false>(31, xs, ws, L, scales, mins, -0.9f, 0.05f, 36);
      for (int k = 0; k < count; ++k) {
        set_half(b[first + k].d, scales[k]);
        set_half(b[first + k].m, -mins[k]);
        pack_5bit(L + k * kBlock, b[first + k].qs, b[first + k].qh);
      }
    });
    return;
  }
  for (int64_t i = 0; i < n_blocks; ++i, x += kBlock) {
    float min = std::numeric_limits<float>::max(), max = -std::numeric_limits<float>::max();
    for (int j = 0; j < kBlock; ++j) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / 31;
    const float id = d != 0.f ? 1.0f / d : 0.0f;
    set_half(b[i].d, d);
    set_half(b[i].m, min);
    // ggml truncates without a cap here; (x - min) * id <= 31 up to rounding, so the value fits.
    for (int j = 0; j < kBlock; ++j) levels[j] = static_cast<uint8_t>(std::min(31, truncate_level((x[j] - min) * id + 0.5f)));
    pack_5bit(levels, b[i].qs, b[i].qh);
  }
}

void quantize_q8_0(const float* x, uint8_t* dst, int64_t n, const float*) {
  // Importance is ignored, as in llama.cpp: 8 bits leave nothing for a search to gain.
  auto* b = reinterpret_cast<BlockQ8_0*>(dst);
  const int64_t n_blocks = n / kBlock;
  for (int64_t i = 0; i < n_blocks; ++i, x += kBlock) {
    float amax = 0;
    for (int j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0.f ? 1.0f / d : 0.0f;
    set_half(b[i].d, d);
    for (int j = 0; j < kBlock; ++j) b[i].qs[j] = static_cast<int8_t>(truncate_level(std::round(x[j] * id)));
  }
}

}  // namespace peregrine::quant::kernels
