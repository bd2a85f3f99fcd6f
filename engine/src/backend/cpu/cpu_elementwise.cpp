// Norms, elementwise helpers and MoE routing.
#include <algorithm>
#include <cmath>

#include "backend/cpu/cpu_backend.h"

namespace peregrine::cpu {
namespace {

// 1 / sqrt(mean(x²) + eps); the sum in double as ggml does.
float rms_scale(const float* x, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  return 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps);
}

}  // namespace

void CpuBackend::rmsnorm(const float* x, const float* w, float* y, int64_t n_rows, int64_t n, float eps) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    const float s = rms_scale(xr, n, eps);
    if (w)
      for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * s * w[i];
    else
      for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * s;
  }
}

void CpuBackend::rmsnorm_heads(const HeadView& x, const float* w, float eps) {
  for (int64_t t = 0; t < x.n_tokens; ++t)
    for (int64_t h = 0; h < x.n_heads; ++h) {
      float* v = x.head(t, h);
      const float s = rms_scale(v, x.head_dim, eps);
      for (int64_t i = 0; i < x.head_dim; ++i) v[i] = v[i] * s * w[i];
    }
}

void CpuBackend::l2norm_heads(const HeadView& x, float eps, float scale) {
  for (int64_t t = 0; t < x.n_tokens; ++t)
    for (int64_t h = 0; h < x.n_heads; ++h) {
      float* v = x.head(t, h);
      double sum = 0.0;
      for (int64_t i = 0; i < x.head_dim; ++i) sum += static_cast<double>(v[i]) * v[i];
      const float s = scale / std::sqrt(static_cast<float>(sum) + eps);
      for (int64_t i = 0; i < x.head_dim; ++i) v[i] *= s;
    }
}

void CpuBackend::add(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void CpuBackend::swiglu(const float* gate, const float* up, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = silu(gate[i]) * up[i];
}

void CpuBackend::mul_sigmoid_heads(const HeadView& x, const HeadView& gate) {
  for (int64_t t = 0; t < x.n_tokens; ++t)
    for (int64_t h = 0; h < x.n_heads; ++h) {
      float* v = x.head(t, h);
      const float* g = gate.head(t, h);
      for (int64_t i = 0; i < x.head_dim; ++i) v[i] *= sigmoid(g[i]);
    }
}

void CpuBackend::gated_rmsnorm_heads(const HeadView& x, const HeadView& z, const float* w, float eps) {
  for (int64_t t = 0; t < x.n_tokens; ++t)
    for (int64_t h = 0; h < x.n_heads; ++h) {
      float* v = x.head(t, h);
      const float* zv = z.head(t, h);
      const float s = rms_scale(v, x.head_dim, eps);
      for (int64_t i = 0; i < x.head_dim; ++i) v[i] = v[i] * s * w[i] * silu(zv[i]);
    }
}

void CpuBackend::moe_route(const float* logits, int64_t n_tokens, int64_t n_expert, int64_t k,
                           int32_t* expert_ids, float* weights) {
  float* probs = grow(route_scratch_, n_expert);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* r = logits + t * n_expert;
    // Softmax over all experts.
    const float mx = *std::max_element(r, r + n_expert);
    float sum = 0.0f;
    for (int64_t e = 0; e < n_expert; ++e) sum += (probs[e] = std::exp(r[e] - mx));
    for (int64_t e = 0; e < n_expert; ++e) probs[e] /= sum;
    // Top-k by repeated selection: best first, ties to the lower id.
    int32_t* ids = expert_ids + t * k;
    float* wt = weights + t * k;
    float selected = 0.0f;
    for (int64_t j = 0; j < k; ++j) {
      int32_t best = -1;
      for (int64_t e = 0; e < n_expert; ++e) {
        if (std::find(ids, ids + j, static_cast<int32_t>(e)) != ids + j) continue;
        if (best < 0 || probs[e] > probs[best]) best = static_cast<int32_t>(e);
      }
      ids[j] = best;
      wt[j] = probs[best];
      selected += probs[best];
    }
    for (int64_t j = 0; j < k; ++j) wt[j] /= selected;
  }
}

void CpuBackend::gather_rows(const float* x, std::span<const int32_t> rows, int64_t n, float* out) {
  for (size_t i = 0; i < rows.size(); ++i) std::copy_n(x + rows[i] * n, n, out + static_cast<int64_t>(i) * n);
}

void CpuBackend::scatter_add_rows(const float* x, std::span<const int32_t> rows, std::span<const float> scale, int64_t n,
                                  float* y) {
  for (size_t i = 0; i < rows.size(); ++i) {
    const float* xr = x + static_cast<int64_t>(i) * n;
    float* yr = y + rows[i] * n;
    for (int64_t j = 0; j < n; ++j) yr[j] += scale[i] * xr[j];
  }
}

void CpuBackend::scale_rows_sigmoid(float* x, const float* gate_logit, int64_t n_tokens, int64_t n) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float s = sigmoid(gate_logit[t]);
    for (int64_t j = 0; j < n; ++j) x[t * n + j] *= s;
  }
}

void CpuBackend::copy_2d(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t n_rows,
                         int64_t n) {
  for (int64_t r = 0; r < n_rows; ++r) std::copy_n(src + r * src_stride, n, dst + r * dst_stride);
}

}  // namespace peregrine::cpu
