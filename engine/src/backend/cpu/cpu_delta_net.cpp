// Gated DeltaNet kernels: causal conv1d with rolling state, gates, and the delta rule in its
// recurrent (decode) and chunked (prefill) forms. State layout: S[v_head][key i][value j].
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/cpu_backend.h"

namespace peregrine::cpu {

void CpuBackend::conv1d_silu(const float* x, int64_t x_stride, int64_t n_tokens, int64_t channels,
                             const float* w, int64_t kernel, float* state, float* out) {
  const int64_t n_hist = kernel - 1;
  // Input row s (s < 0: from the state of the previous call).
  auto input = [&](int64_t s) { return s < 0 ? state + (n_hist + s) * channels : x + s * x_stride; };
  for (int64_t t = 0; t < n_tokens; ++t) {
    float* o = out + t * channels;
    std::fill(o, o + channels, 0.0f);
    for (int64_t j = 0; j < kernel; ++j) {
      const float* in = input(t - n_hist + j);
      for (int64_t c = 0; c < channels; ++c) o[c] += w[c * kernel + j] * in[c];
    }
    for (int64_t c = 0; c < channels; ++c) o[c] = silu(o[c]);
  }
  // New state row r = input row n_tokens - n_hist + r. Writing rows in increasing order only
  // reads old state rows at or after r, which are still intact.
  for (int64_t r = 0; r < n_hist; ++r) {
    const float* src = input(n_tokens - n_hist + r);
    float* dst = state + r * channels;
    if (src != dst) std::memmove(dst, src, sizeof(float) * channels);
  }
}

void CpuBackend::delta_gates(const float* a, int64_t a_stride, const float* b, int64_t b_stride,
                             const float* dt_bias, const float* a_neg, int64_t n_tokens, int64_t n_v_heads,
                             float* g, float* beta) {
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t j = 0; j < n_v_heads; ++j) {
      beta[t * n_v_heads + j] = sigmoid(b[t * b_stride + j]);
      g[t * n_v_heads + j] = a_neg[j] * softplus(a[t * a_stride + j] + dt_bias[j]);
    }
}

void CpuBackend::delta_rule_recurrent(const DeltaNetDims& dims, const HeadView& q, const HeadView& k,
                                      const HeadView& v, const float* g, const float* beta, float* state,
                                      const HeadView& out) {
  const int64_t d = dims.head_dim, hv = dims.n_v_heads, hk = dims.n_k_heads;
  reserve_workers(Buf::Delta, d);
  // Value heads are independent; each worker steps its heads through all tokens.
  pool_.parallel_for(hv, [&](int64_t j0, int64_t j1, int worker) {
    float* u = workers_[worker].delta.data();
    for (int64_t j = j0; j < j1; ++j)
      for (int64_t t = 0; t < q.n_tokens; ++t) {
        const float* qt = q.head(t, j % hk);
        const float* kt = k.head(t, j % hk);
        const float* vt = v.head(t, j);
        float* S = state + j * d * d;
        const float decay = std::exp(g[t * hv + j]);
        const float b = beta[t * hv + j];
        // S ← e^g·S; u = β(v − Sᵀk)
        for (int64_t i = 0; i < d * d; ++i) S[i] *= decay;
        std::fill(u, u + d, 0.0f);
        for (int64_t i = 0; i < d; ++i)
          for (int64_t c = 0; c < d; ++c) u[c] += S[i * d + c] * kt[i];
        for (int64_t c = 0; c < d; ++c) u[c] = b * (vt[c] - u[c]);
        // S ← S + k uᵀ; o = Sᵀq
        float* o = out.head(t, j);
        std::fill(o, o + d, 0.0f);
        for (int64_t i = 0; i < d; ++i) {
          float* Si = S + i * d;
          for (int64_t c = 0; c < d; ++c) {
            Si[c] += kt[i] * u[c];
            o[c] += Si[c] * qt[i];
          }
        }
      }
  });
}

// Per value head and chunk of n tokens with incoming state S (γ = cumulative g in the chunk):
//   L = strictly_lower(diag(β) K Kᵀ ⊙ e^{γ_i − γ_j}),   (I + L) U = diag(β) V,
//   (I + L) W = diag(β e^γ) K,   V' = U − W S,
//   O = diag(e^γ) Q S + ((Q Kᵀ) ⊙ e^{γ_i − γ_j}, j ≤ i) V',
//   S ← e^{γ_last} S + Σ_i e^{γ_last − γ_i} k_i V'_iᵀ.
// This equals n recurrent steps exactly in real arithmetic (see docs/forward.md).
void CpuBackend::delta_rule_chunked(const DeltaNetDims& dims, const HeadView& q, const HeadView& k,
                                    const HeadView& v, const float* g, const float* beta, float* state,
                                    const HeadView& out, int64_t chunk) {
  const int64_t d = dims.head_dim, C = std::max<int64_t>(1, chunk);
  reserve_workers(Buf::Delta, C + C * C + 3 * C * d);
  pool_.parallel_for(dims.n_v_heads, [&](int64_t j0, int64_t j1, int worker) {
    chunked_heads(dims, q, k, v, g, beta, state, out, C, j0, j1, workers_[worker].delta.data());
  });
}

void CpuBackend::chunked_heads(const DeltaNetDims& dims, const HeadView& q, const HeadView& k, const HeadView& v,
                               const float* g, const float* beta, float* state, const HeadView& out, int64_t C,
                               int64_t j0, int64_t j1, float* buf) {
  const int64_t d = dims.head_dim, hv = dims.n_v_heads, hk = dims.n_k_heads;
  float* gamma = buf;            // [C]
  float* L = gamma + C;          // [C][C]
  float* U = L + C * C;          // [C][d]  becomes V'
  float* W = U + C * d;          // [C][d]
  float* tmp = W + C * d;        // [C][d]
  for (int64_t j = j0; j < j1; ++j) {
    float* S = state + j * d * d;
    const int64_t kh = j % hk;
    for (int64_t c0 = 0; c0 < q.n_tokens; c0 += C) {
      const int64_t n = std::min(C, q.n_tokens - c0);
      auto key = [&](int64_t i) { return k.head(c0 + i, kh); };
      auto gt = [&](int64_t i) { return g[(c0 + i) * hv + j]; };
      auto bt = [&](int64_t i) { return beta[(c0 + i) * hv + j]; };
      float acc = 0.0f;
      for (int64_t i = 0; i < n; ++i) gamma[i] = (acc += gt(i));
      // L and the two forward substitutions.
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t m = 0; m < i; ++m)
          L[i * C + m] = bt(i) * dot(key(i), key(m), d) * std::exp(gamma[i] - gamma[m]);
        const float* vi = v.head(c0 + i, j);
        const float* ki = key(i);
        const float wscale = bt(i) * std::exp(gamma[i]);
        float* Ui = U + i * d;
        float* Wi = W + i * d;
        for (int64_t c = 0; c < d; ++c) {
          Ui[c] = bt(i) * vi[c];
          Wi[c] = wscale * ki[c];
        }
        for (int64_t m = 0; m < i; ++m) {
          const float l = L[i * C + m];
          for (int64_t c = 0; c < d; ++c) {
            Ui[c] -= l * U[m * d + c];
            Wi[c] -= l * W[m * d + c];
          }
        }
      }
      // V' = U − W S (in place in U); tmp = diag(e^γ) Q S (the inter-chunk part of O).
      for (int64_t i = 0; i < n; ++i) {
        float* Ui = U + i * d;
        const float* Wi = W + i * d;
        const float* qi = q.head(c0 + i, kh);
        float* Ti = tmp + i * d;
        std::fill(Ti, Ti + d, 0.0f);
        const float eg = std::exp(gamma[i]);
        for (int64_t a = 0; a < d; ++a) {
          const float* Sa = S + a * d;
          const float wa = Wi[a], qa = eg * qi[a];
          for (int64_t c = 0; c < d; ++c) {
            Ui[c] -= wa * Sa[c];
            Ti[c] += qa * Sa[c];
          }
        }
      }
      // O = tmp + Σ_{m ≤ i} (q_i·k_m) e^{γ_i − γ_m} V'_m
      for (int64_t i = 0; i < n; ++i) {
        float* o = out.head(c0 + i, j);
        const float* qi = q.head(c0 + i, kh);
        std::copy_n(tmp + i * d, d, o);
        for (int64_t m = 0; m <= i; ++m) {
          const float s = dot(qi, key(m), d) * std::exp(gamma[i] - gamma[m]);
          const float* Vm = U + m * d;
          for (int64_t c = 0; c < d; ++c) o[c] += s * Vm[c];
        }
      }
      // State update.
      const float glast = gamma[n - 1];
      const float elast = std::exp(glast);
      for (int64_t i = 0; i < d * d; ++i) S[i] *= elast;
      for (int64_t m = 0; m < n; ++m) {
        const float* km = key(m);
        const float* Vm = U + m * d;
        const float e = std::exp(glast - gamma[m]);
        for (int64_t a = 0; a < d; ++a) {
          const float ka = e * km[a];
          float* Sa = S + a * d;
          for (int64_t c = 0; c < d; ++c) Sa[c] += ka * Vm[c];
        }
      }
    }
  }
}

}  // namespace peregrine::cpu
