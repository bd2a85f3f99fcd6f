// Non-linear 4-bit formats: each 4-bit code indexes a fixed 16-entry grid (denser near zero).
//
//   IQ4_NL  d | qs[16]                                value = d * grid[q]            (32 values)
//   IQ4_XS  d | scales_h (u16) | scales_l[4] | qs[128]  value = d*(ls - 32) * grid[q]  (256 values,
//           8 sub-blocks of 32 with 6-bit scales ls: low nibble in scales_l[j/2] (odd j high
//           nibble), top two bits in scales_h bits 2j..2j+1)
//
// Within each 32 values, byte l holds value l (low nibble) and value l+16 (high nibble).
// Quantization follows llama.cpp's quantize_iq4_nl / quantize_iq4_xs (the search llama-quantize
// runs, 7 scale trials either side), so the bytes match those files.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "format/quant_kernels.h"
#include "format/quant_search.h"
#include "format/quant_search_groups.h"
#include "peregrine/quant.h"

namespace peregrine::quant::kernels {
namespace {

constexpr int kSub = 32;
constexpr int kTrials = 7;
constexpr int8_t kGrid[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

struct BlockIQ4NL { uint8_t d[2]; uint8_t qs[16]; };
struct BlockIQ4XS { uint8_t d[2]; uint8_t scales_h[2]; uint8_t scales_l[4]; uint8_t qs[128]; };
static_assert(sizeof(BlockIQ4NL) == 18 && sizeof(BlockIQ4XS) == 136);

float half_at(const uint8_t* p) { return fp16_to_fp32(load_u16(p)); }

int grid_index(float x) { return search::nearest_table_index(16, kGrid, x); }

// The grid value nearest to x for 4 lanes at once: the number of midpoints between neighbouring
// grid values that x reaches selects the entry (ties go up, as in the table search above). The
// midpoints and the sum of the integer steps are exact in float, and ggml's comparison
// x - lo < hi - x is exact wherever x is close enough to a midpoint for rounding to matter, so
// this picks the same entry as nearest_table_index for every non-NaN input.
search::lanes::F4 grid_value4(search::lanes::F4 x) {
  using namespace search::lanes;
  F4 q = splat(static_cast<float>(kGrid[0]));
  for (int k = 0; k < 15; ++k) {
    const float mid = 0.5f * static_cast<float>(kGrid[k] + kGrid[k + 1]);
    const F4 step = splat(static_cast<float>(kGrid[k + 1] - kGrid[k]));
    q += x >= splat(mid) ? step : splat(0.f);
  }
  return q;
}

// Best scale of each of 4*V sub-blocks of 32 values (0 for an all-zero one): the search of
// llama.cpp's quantize_row_iq4_nl_impl with 7 trials either side, 4 sub-blocks per vector.
// Start with the extreme value on the grid's extreme (-127), refit, then try nearby scales.
template <int V>
void fit_sub_blocks(const float* x, const float* weight, float* scales) {
  using namespace search::lanes;
  F4 xt[kSub][V], wt[kSub][V];
  for (int g = 0; g < 4 * V; ++g)
    for (int j = 0; j < kSub; ++j) {
      xt[j][g / 4][g % 4] = x[g * kSub + j];
      wt[j][g / 4][g % 4] = weight[g * kSub + j];
    }
  F4 max[V], d[V], best[V], id[V], sumqx[V], sumq2[V];
  I4 active[V];
  for (int v = 0; v < V; ++v) {
    F4 amax = splat(0.f), m = splat(0.f);
    for (int j = 0; j < kSub; ++j) {
      const F4 ax = abs4(xt[j][v]);
      const I4 larger = ax > amax;
      amax = larger ? ax : amax;
      m = larger ? xt[j][v] : m;
    }
    active[v] = amax >= splat(search::kGroupMaxEps);
    max[v] = active[v] ? m : splat(1.f);  // dummy for all-zero sub-blocks, result discarded
    id[v] = splat(1.f) / (-max[v] / splat(static_cast<float>(kGrid[0])));
    sumqx[v] = sumq2[v] = splat(0.f);
  }
  for (int j = 0; j < kSub; ++j)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      const F4 q = grid_value4(id[v] * xt[j][v]);
      sumqx[v] += wt[j][v] * q * xt[j][v];
      sumq2[v] += wt[j][v] * q * q;
    }
  for (int v = 0; v < V; ++v) {
    d[v] = sumq2[v] > splat(0.f) ? sumqx[v] / (sumq2[v] > splat(0.f) ? sumq2[v] : splat(1.f)) : splat(0.f);
    best[v] = d[v] * sumqx[v];
  }
  for (int trial = -kTrials; trial <= kTrials; ++trial) {
    for (int v = 0; v < V; ++v) {
      id[v] = splat(static_cast<float>(trial + kGrid[0])) / max[v];
      sumqx[v] = sumq2[v] = splat(0.f);
    }
    for (int j = 0; j < kSub; ++j)
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) {
        const F4 q = grid_value4(id[v] * xt[j][v]);
        sumqx[v] += wt[j][v] * q * xt[j][v];
        sumq2[v] += wt[j][v] * q * q;
      }
    for (int v = 0; v < V; ++v) {
      const I4 take = (sumq2[v] > splat(0.f)) & (sumqx[v] * sumqx[v] > best[v] * sumq2[v]);
      const F4 new_d = sumqx[v] / (sumq2[v] > splat(0.f) ? sumq2[v] : splat(1.f));
      d[v] = take ? new_d : d[v];
      best[v] = take ? new_d * sumqx[v] : best[v];
    }
  }
  for (int g = 0; g < 4 * V; ++g) scales[g] = active[g / 4][g % 4] ? d[g / 4][g % 4] : 0.f;
}

// Weights of one sub-block: x^2, or importance * sqrt(sigma2 + x^2) like llama.cpp's imatrix path.
void sub_block_weights(const float* x, const float* importance, float sigma2, float* weight) {
  if (importance)
    for (int j = 0; j < kSub; ++j) weight[j] = importance[j] * std::sqrt(sigma2 + x[j] * x[j]);
  else
    for (int j = 0; j < kSub; ++j) weight[j] = x[j] * x[j];
}

float sigma2_of(const float* x, int n) {
  float s = 0;
  for (int j = 0; j < n; ++j) s += x[j] * x[j];
  return s * (2.f / static_cast<float>(n));
}

void pack_nibbles(const uint8_t* L, uint8_t* qs, int n) {
  for (int i = 0; i < n / 32; ++i)
    for (int j = 0; j < 16; ++j) qs[16 * i + j] = static_cast<uint8_t>(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

}  // namespace

void dequantize_iq4_nl(const uint8_t* src, float* y, int64_t n_blocks) {
  const auto* b = reinterpret_cast<const BlockIQ4NL*>(src);
  for (int64_t i = 0; i < n_blocks; ++i, ++b, y += kSub) {
    const float d = half_at(b->d);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * static_cast<float>(kGrid[b->qs[j] & 0xF]);
      y[j + 16] = d * static_cast<float>(kGrid[b->qs[j] >> 4]);
    }
  }
}

void dequantize_iq4_xs(const uint8_t* src, float* y, int64_t n_blocks) {
  const auto* b = reinterpret_cast<const BlockIQ4XS*>(src);
  for (int64_t i = 0; i < n_blocks; ++i, ++b) {
    const float d = half_at(b->d);
    const uint16_t scales_h = load_u16(b->scales_h);
    const uint8_t* qs = b->qs;
    for (int ib = 0; ib < 8; ++ib, y += kSub, qs += 16) {
      const int ls = ((b->scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((scales_h >> (2 * ib)) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * static_cast<float>(kGrid[qs[j] & 0xF]);
        y[j + 16] = dl * static_cast<float>(kGrid[qs[j] >> 4]);
      }
    }
  }
}

void quantize_iq4_nl(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  constexpr int kBatch = 8;  // blocks fitted together (independent, see fit_sub_blocks)
  auto* b = reinterpret_cast<BlockIQ4NL*>(dst);
  float weight[kBatch * kSub], scales[kBatch];
  uint8_t L[kSub];
  const int64_t n_blocks = n / kSub;
  for (int64_t first = 0; first < n_blocks; first += kBatch) {
    const int count = static_cast<int>(std::min<int64_t>(kBatch, n_blocks - first));
    const float* xb = x + first * kSub;
    // llama.cpp computes sigma2 over the 32-value block itself for IQ4_NL.
    for (int k = 0; k < count; ++k)
      sub_block_weights(xb + k * kSub, importance ? importance + (first + k) * kSub : nullptr, sigma2_of(xb + k * kSub, kSub),
                        weight + k * kSub);
    if (count == kBatch) {
      fit_sub_blocks<kBatch / 4>(xb, weight, scales);
    } else {
      // Tail of the row: pad with all-zero blocks (fitted as scale 0 and ignored).
      float padded[kBatch * kSub] = {};
      std::copy(xb, xb + count * kSub, padded);
      std::fill(weight + count * kSub, weight + kBatch * kSub, 0.f);
      fit_sub_blocks<kBatch / 4>(padded, weight, scales);
    }
    for (int k = 0; k < count; ++k) {
      const float d = scales[k];
      BlockIQ4NL& out = b[first + k];
      store_u16(out.d, fp32_to_fp16(d));
      // Final indices against the unrounded scale (as llama.cpp does for single-block formats).
      const float id = d != 0.f ? 1 / d : 0.f;
      for (int j = 0; j < kSub; ++j) L[j] = static_cast<uint8_t>(grid_index(id * xb[k * kSub + j]));
      pack_nibbles(L, out.qs, kSub);
    }
  }
}

void quantize_iq4_xs(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  constexpr int kSuper = 256, kSubBlocks = kSuper / kSub;
  auto* b = reinterpret_cast<BlockIQ4XS*>(dst);
  float weight[kSuper], scales[kSubBlocks];
  uint8_t L[kSuper];
  for (int64_t i = 0; i < n / kSuper; ++i, x += kSuper) {
    const float sigma2 = sigma2_of(x, kSuper);
    for (int ib = 0; ib < kSubBlocks; ++ib)
      sub_block_weights(x + kSub * ib, importance ? importance + kSuper * i + kSub * ib : nullptr, sigma2,
                        weight + kSub * ib);
    fit_sub_blocks<kSubBlocks / 4>(x, weight, scales);
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < kSubBlocks; ++ib) {
      if (std::fabs(scales[ib]) > amax_scale) {
        amax_scale = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    // Sub-block scales become 6-bit multiples (-32..31) of d = -max_scale / 32.
    const float d = -max_scale / 32;
    store_u16(b[i].d, fp32_to_fp16(d));
    const float id = d != 0.f ? 1 / d : 0.f;
    uint16_t scales_h = 0;
    std::memset(b[i].scales_l, 0, sizeof b[i].scales_l);
    for (int ib = 0; ib < kSubBlocks; ++ib) {
      int l = std::clamp(search::nearest_int(id * scales[ib]), -32, 31);
      const float dl = d * static_cast<float>(l);
      const float idl = dl != 0.f ? 1 / dl : 0.f;
      for (int j = 0; j < kSub; ++j) L[kSub * ib + j] = static_cast<uint8_t>(grid_index(idl * x[kSub * ib + j]));
      l += 32;
      b[i].scales_l[ib / 2] = static_cast<uint8_t>(b[i].scales_l[ib / 2] | ((l & 0xF) << (4 * (ib % 2))));
      scales_h = static_cast<uint16_t>(scales_h | ((l >> 4) << (2 * ib)));
    }
    store_u16(b[i].scales_h, scales_h);
    pack_nibbles(L, b[i].qs, kSuper);
  }
}

}  // namespace peregrine::quant::kernels
