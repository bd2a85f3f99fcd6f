// Several independent scale searches run side by side (the sub-blocks of one super-block).
//
// A single search is a chain of dependent float operations on 16 or 32 values, repeated for 16 to
// 37 candidate scales, which makes the K-quant quantizers slow when run one group at a time.
// These versions put 4 groups in the 4 lanes of a vector (GCC/Clang vector extensions, so SSE2 on
// x86-64 and NEON on ARM without extra compiler flags) and step through all groups at once. Every
// lane performs exactly the operations of the single search in quant_search.h, in the same order,
// with IEEE single-precision vector arithmetic, so the bytes stay identical to llama.cpp's.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "format/quant_search.h"

namespace peregrine::quant::search {

namespace lanes {

using F4 = float __attribute__((vector_size(16)));
using I4 = int32_t __attribute__((vector_size(16)));

inline F4 splat(float v) { return F4{v, v, v, v}; }
inline I4 splat_i(int32_t v) { return I4{v, v, v, v}; }

// nearest_int on 4 lanes (same saturation; NaN gives 0).
inline I4 nearest_int4(F4 v) {
  const F4 limit = splat(4194303.f);
  v = v < -limit ? -limit : v;
  v = v > limit ? limit : v;
  const F4 shifted = v + splat(12582912.f);
  I4 bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  return (bits & splat_i(0x007FFFFF)) - splat_i(0x00400000);
}

inline I4 clamp4(I4 l, int lo, int hi) {
  l = l < splat_i(lo) ? splat_i(lo) : l;
  return l > splat_i(hi) ? splat_i(hi) : l;
}

inline F4 to_float(I4 v) { return __builtin_convertvector(v, F4); }
inline F4 abs4(F4 v) {
  I4 bits;
  std::memcpy(&bits, &v, sizeof bits);
  bits &= splat_i(0x7FFFFFFF);
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

}  // namespace lanes

// affine_scale (ggml make_qkx2_quants, or make_qkx3_quants with weights) on G groups of N values,
// G a multiple of 4. x, weights, L: G consecutive groups of N. Writes scales[G] and min_out[G].
// kUseMad: minimise absolute instead of squared error.
template <int G, int N, bool kUseMad>
void affine_scale_groups(int nmax, const float* x, const float* weights, uint8_t* L, float* scales, float* min_out,
                         float rmin, float rdelta, int nstep) {
  static_assert(G % 4 == 0, "groups are processed four at a time");
  using namespace lanes;
  constexpr int V = G / 4;
  F4 xt[N][V], wt[N][V];
  for (int g = 0; g < G; ++g)
    for (int i = 0; i < N; ++i) {
      xt[i][g / 4][g % 4] = x[g * N + i];
      wt[i][g / 4][g % 4] = weights[g * N + i];
    }
  F4 min[V], max[V], sum_w[V], sum_x[V], scale[V], best_error[V], iscale[V];
  I4 active[V], Lt[N][V], Lc[N][V];
  for (int v = 0; v < V; ++v) {
    min[v] = max[v] = xt[0][v];
    sum_w[v] = wt[0][v];
    sum_x[v] = sum_w[v] * xt[0][v];
  }
  for (int i = 1; i < N; ++i)
    #pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      min[v] = xt[i][v] < min[v] ? xt[i][v] : min[v];
      max[v] = xt[i][v] > max[v] ? xt[i][v] : max[v];
      sum_w[v] += wt[i][v];
      sum_x[v] += wt[i][v] * xt[i][v];
    }
  auto error_term = [](F4 diff) {
    if constexpr (kUseMad) return abs4(diff);
    else return diff * diff;
  };
  const F4 fnmax = splat(static_cast<float>(nmax));
  for (int v = 0; v < V; ++v) {
    min[v] = min[v] > splat(0.f) ? splat(0.f) : min[v];
    active[v] = max[v] != min[v];
    iscale[v] = fnmax / (active[v] ? max[v] - min[v] : splat(1.f));  // inactive lanes compute harmless dummies
    scale[v] = splat(1.f) / iscale[v];
    best_error[v] = splat(0.f);
  }
  for (int i = 0; i < N; ++i)
    #pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      const I4 l = clamp4(nearest_int4(iscale[v] * (xt[i][v] - min[v])), 0, nmax);
      Lt[i][v] = l;
      best_error[v] += wt[i][v] * error_term(scale[v] * to_float(l) + min[v] - xt[i][v]);
    }
  for (int step = 0; step < (nstep < 1 ? 0 : nstep + 1); ++step) {
    const F4 numerator = splat(rmin + rdelta * static_cast<float>(step) + static_cast<float>(nmax));
    F4 sum_l[V], sum_l2[V], sum_xl[V];
    for (int v = 0; v < V; ++v) {
      // ggml's search moves `min` to each accepted fit, so later steps use the updated range.
      iscale[v] = numerator / (active[v] ? max[v] - min[v] : splat(1.f));
      sum_l[v] = sum_l2[v] = sum_xl[v] = splat(0.f);
    }
    for (int i = 0; i < N; ++i)
      #pragma GCC unroll 4
      for (int v = 0; v < V; ++v) {
        const I4 l = clamp4(nearest_int4(iscale[v] * (xt[i][v] - min[v])), 0, nmax);
        Lc[i][v] = l;
        const F4 fl = to_float(l), w = wt[i][v];
        sum_l[v] += w * fl;
        sum_l2[v] += w * fl * fl;
        sum_xl[v] += w * fl * xt[i][v];
      }
    F4 this_scale[V], this_min[V], error[V];
    I4 solvable[V];
    for (int v = 0; v < V; ++v) {
      const F4 D = sum_w[v] * sum_l2[v] - sum_l[v] * sum_l[v];
      solvable[v] = D > splat(0.f);
      const F4 Dg = solvable[v] ? D : splat(1.f);
      const F4 fitted_scale = (sum_w[v] * sum_xl[v] - sum_x[v] * sum_l[v]) / Dg;
      const F4 fitted_min = (sum_l2[v] * sum_x[v] - sum_l[v] * sum_xl[v]) / Dg;
      // A positive min is not allowed: refit the scale alone. (When D > 0, sum_l2 > 0; other lanes
      // are discarded, so only 0/0 needs a guard.)
      const I4 positive_min = fitted_min > splat(0.f);
      const F4 refit = sum_xl[v] / (sum_l2[v] != splat(0.f) ? sum_l2[v] : splat(1.f));
      this_scale[v] = positive_min ? refit : fitted_scale;
      this_min[v] = positive_min ? splat(0.f) : fitted_min;
      error[v] = splat(0.f);
    }
    for (int i = 0; i < N; ++i)
      #pragma GCC unroll 4
      for (int v = 0; v < V; ++v)
        error[v] += wt[i][v] * error_term(this_scale[v] * to_float(Lc[i][v]) + this_min[v] - xt[i][v]);
    for (int v = 0; v < V; ++v) {
      const I4 take = active[v] & solvable[v] & (error[v] < best_error[v]);
      for (int i = 0; i < N; ++i) Lt[i][v] = take ? Lc[i][v] : Lt[i][v];
      best_error[v] = take ? error[v] : best_error[v];
      scale[v] = take ? this_scale[v] : scale[v];
      min[v] = take ? this_min[v] : min[v];
    }
  }
  for (int g = 0; g < G; ++g) {
    const int v = g / 4, k = g % 4;
    const bool on = active[v][k] != 0;
    min_out[g] = -min[v][k];
    scales[g] = on ? scale[v][k] : 0.f;
    for (int i = 0; i < N; ++i) L[g * N + i] = on ? static_cast<uint8_t>(Lt[i][v][k]) : 0;
  }
}

// symmetric_scale with rmse_type 1 (ggml make_qx_quants(..., 1, weights)) on G groups of N values,
// G a multiple of 4; weights are required (pass x*x for ggml's default). L gets levels offset by nmax.
template <int G, int N>
void symmetric_scale_groups(int nmax, const float* x, const float* weights, int8_t* L, float* scales) {
  static_assert(G % 4 == 0, "groups are processed four at a time");
  using namespace lanes;
  constexpr int V = G / 4;
  F4 xt[N][V], wt[N][V];
  for (int g = 0; g < G; ++g)
    for (int i = 0; i < N; ++i) {
      xt[i][g / 4][g % 4] = x[g * N + i];
      wt[i][g / 4][g % 4] = weights[g * N + i];
    }
  F4 max[V], scale[V], best[V];
  I4 active[V], Lt[N][V], Lc[N][V];
  for (int v = 0; v < V; ++v) {
    F4 amax = splat(0.f), m = splat(0.f);
    for (int i = 0; i < N; ++i) {
      const F4 ax = abs4(xt[i][v]);
      const I4 larger = ax > amax;
      amax = larger ? ax : amax;
      m = larger ? xt[i][v] : m;
    }
    active[v] = amax >= splat(kGroupMaxEps);
    max[v] = active[v] ? m : splat(1.f);  // dummy for all-zero groups, results discarded
  }
  const F4 fnmax = splat(static_cast<float>(nmax));
  for (int v = 0; v < V; ++v) {
    const F4 iscale = -fnmax / max[v];
    F4 sumlx = splat(0.f), suml2 = splat(0.f);
    for (int i = 0; i < N; ++i) {
      const I4 l = clamp4(nearest_int4(iscale * xt[i][v]), -nmax, nmax - 1);
      Lt[i][v] = l;
      const F4 fl = to_float(l), w = wt[i][v];
      sumlx += w * xt[i][v] * fl;
      suml2 += w * fl * fl;
    }
    scale[v] = suml2 != splat(0.f) ? sumlx / (suml2 != splat(0.f) ? suml2 : splat(1.f)) : splat(0.f);
    best[v] = scale[v] * sumlx;
  }
  for (int step = -9; step <= 9; ++step) {
    if (step == 0) continue;
    const F4 numerator = -(fnmax + splat(0.1f * static_cast<float>(step)));
    F4 iscale[V], sumlx[V], suml2[V];
    for (int v = 0; v < V; ++v) {
      iscale[v] = numerator / max[v];
      sumlx[v] = suml2[v] = splat(0.f);
    }
    for (int i = 0; i < N; ++i)
      #pragma GCC unroll 4
      for (int v = 0; v < V; ++v) {
        const I4 l = clamp4(nearest_int4(iscale[v] * xt[i][v]), -nmax, nmax - 1);
        Lc[i][v] = l;
        const F4 fl = to_float(l), w = wt[i][v];
        sumlx[v] += w * xt[i][v] * fl;
        suml2[v] += w * fl * fl;
      }
    for (int v = 0; v < V; ++v) {
      const I4 take = (suml2[v] > splat(0.f)) & (sumlx[v] * sumlx[v] > best[v] * suml2[v]);
      const F4 new_scale = sumlx[v] / (suml2[v] > splat(0.f) ? suml2[v] : splat(1.f));
      for (int i = 0; i < N; ++i) Lt[i][v] = take ? Lc[i][v] : Lt[i][v];
      scale[v] = take ? new_scale : scale[v];
      best[v] = take ? new_scale * sumlx[v] : best[v];
    }
  }
  for (int g = 0; g < G; ++g) {
    const int v = g / 4, k = g % 4;
    const bool on = active[v][k] != 0;
    scales[g] = on ? scale[v][k] : 0.f;
    for (int i = 0; i < N; ++i) L[g * N + i] = on ? static_cast<int8_t>(Lt[i][v][k] + nmax) : 0;
  }
}

}  // namespace peregrine::quant::search
