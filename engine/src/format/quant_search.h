// Scale searches shared by the K-quant, legacy (weighted) and IQ4 quantizers.
//
// To produce the same bytes as llama.cpp's reference quantizers these follow ggml-quants.c's
// search semantics exactly, down to the order of float operations (each product and sum is
// rounded to float in the same sequence; no fused multiply-add). The ggml function each one
// corresponds to is named in its comment so the two can be compared.
//
// The hot K-quant/IQ4/legacy-weighted paths run several groups at once through
// quant_search_groups.h; the one-group versions here are the readable definition, the oracle the
// grouped versions are tested against (test_quant_search.cpp), and are used where only one group
// is searched (Q3_K's reference quantizer, the Q3_K block scale).
#pragma once

#include <cstdint>
#include <cstring>

namespace peregrine::quant::search {

// Values below this are treated as an all-zero group (ggml's GROUP_MAX_EPS).
inline constexpr float kGroupMaxEps = 1e-15f;

// Round to nearest, ties to even, for |v| < 2^22 (ggml's nearest_int: adds 1.5 * 2^23 so the FPU's
// rounding does the work). Larger magnitudes saturate at +-(2^22 - 1); NaN gives 0. Branch-free so
// that loops calling it can be vectorized.
inline int nearest_int(float v) {
  constexpr float kLimit = 4194303.f;
  v = v < -kLimit ? -kLimit : v;
  v = v > kLimit ? kLimit : v;
  const float shifted = v + 12582912.f;
  int32_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  return (bits & 0x007FFFFF) - 0x00400000;
}

// Symmetric scale for n values with levels -nmax..nmax-1 (stored in L offset by nmax).
// rmse_type 0: plain max-based scale; 1: weights x^2 (or `weights` if given) and a 19-step
// search around nmax; negative: one weighted refit, averaged with the max-based scale.
// (ggml make_qx_quants)
float symmetric_scale(int n, int nmax, const float* x, int8_t* L, int rmse_type, const float* weights);

// Symmetric scale with x^2 weights refined by coordinate descent on single levels; L offset by
// nmax. (ggml make_q3_quants)
float symmetric_scale_descent(int n, int nmax, const float* x, int8_t* L, bool do_rmse);

// Affine fit x ~ scale * L - min_out (L in 0..nmax, min_out >= 0) minimising the weighted squared
// (or absolute, use_mad) error over nstep+1 candidate scales. `weights` is required.
// (ggml make_qkx2_quants)
float affine_scale(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* min_out,
                   uint8_t* L_scratch, float rmin, float rdelta, int nstep, bool use_mad);

// As affine_scale, but `weights` may be null (then x^2) and a degenerate range is max <= min.
// (ggml make_qkx3_quants)
float affine_scale_weighted(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* min_out,
                            uint8_t* L_scratch, float rmin, float rdelta, int nstep, bool use_mad);

// Scale for non-negative values with levels 0..nmax, weighted by `weights` (required).
// (ggml make_qp_quants)
float positive_scale(int n, int nmax, const float* x, uint8_t* L, const float* weights);

// Index of the value in the sorted table `values` (n entries) nearest to x; ties go up.
// (ggml best_index_int8)
inline int nearest_table_index(int n, const int8_t* values, float x) {
  if (x <= values[0]) return 0;
  if (x >= values[n - 1]) return n - 1;
  int lo = 0, hi = n - 1;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (x < values[mid]) hi = mid;
    else lo = mid;
  }
  return x - values[hi - 1] < values[hi] - x ? hi - 1 : hi;
}

}  // namespace peregrine::quant::search
