// Rotary position embedding and causal grouped-query attention over an F32 KV cache.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "backend/cpu/cpu_backend.h"

namespace peregrine::cpu {
namespace {

// The position stream of rotary pair i under llama.cpp's interleaved multi-section rope
// (IMROPE). For text, time/height/width all carry the token position; the fourth stream is 0.
bool pair_uses_position(int64_t i, const std::vector<int32_t>& sec) {
  if (sec.size() < 3) return true;
  const int64_t total = std::accumulate(sec.begin(), sec.end(), int64_t{0});
  if (total <= 0) return true;
  const int64_t s = i % total;
  return (s % 3 == 0 && s < 3 * sec[0]) || (s % 3 == 1 && s < 3 * sec[1]) || (s % 3 == 2 && s < 3 * sec[2]);
}

}  // namespace

void CpuBackend::rope(const HeadView& x, std::span<const int32_t> positions, const RopeParams& p) {
  const int64_t half = p.n_rot / 2;
  float* cs = grow(rope_scratch_, 2 * half);
  // The angle of pair i is pos·base^(−2i/n_rot), built by repeated float multiplication the
  // way ggml does, so the angles agree with llama.cpp to the last bit or two.
  const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_rot));
  for (int64_t t = 0; t < x.n_tokens; ++t) {
    float theta = static_cast<float>(positions[t]);
    for (int64_t i = 0; i < half; ++i) {
      const float angle = pair_uses_position(i, p.sections) ? theta : 0.0f;
      cs[2 * i] = std::cos(angle);
      cs[2 * i + 1] = std::sin(angle);
      theta *= theta_scale;
    }
    for (int64_t h = 0; h < x.n_heads; ++h) {
      float* v = x.head(t, h);
      for (int64_t i = 0; i < half; ++i) {
        const float x0 = v[i], x1 = v[i + half];
        v[i] = x0 * cs[2 * i] - x1 * cs[2 * i + 1];
        v[i + half] = x0 * cs[2 * i + 1] + x1 * cs[2 * i];
      }
    }
  }
}

void CpuBackend::attention(const HeadView& q, const float* k_cache, const float* v_cache, int64_t n_kv_heads,
                           std::span<const int32_t> positions, float scale, float* out) {
  const int64_t hd = q.head_dim, n_head = q.n_heads;
  const int64_t group = n_head / n_kv_heads;
  const int64_t kv_row = n_kv_heads * hd;
  int64_t max_pos = 0;
  for (int32_t pos : positions) max_pos = std::max<int64_t>(max_pos, pos);
  reserve_workers(Buf::Scores, std::max<int64_t>(max_pos + 1, 4096));
  // Every (token, head) pair is independent; split them over the workers.
  pool_.parallel_for(q.n_tokens * n_head, [&](int64_t i0, int64_t i1, int worker) {
    float* scores = workers_[worker].scores.data();
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = i / n_head, h = i % n_head;
      const int64_t n_kv = positions[t] + 1;
      const float* qh = q.head(t, h);
      const int64_t kvh = h / group;
      float mx = -INFINITY;
      for (int64_t s = 0; s < n_kv; ++s) {
        scores[s] = scale * dot(qh, k_cache + s * kv_row + kvh * hd, hd);
        mx = std::max(mx, scores[s]);
      }
      double sum = 0.0;
      for (int64_t s = 0; s < n_kv; ++s) sum += (scores[s] = std::exp(scores[s] - mx));
      const float inv = static_cast<float>(1.0 / sum);
      float* o = out + (t * n_head + h) * hd;
      std::fill(o, o + hd, 0.0f);
      for (int64_t s = 0; s < n_kv; ++s) {
        const float p = scores[s] * inv;
        const float* vs = v_cache + s * kv_row + kvh * hd;
        for (int64_t c = 0; c < hd; ++c) o[c] += p * vs[c];
      }
    }
  });
}

}  // namespace peregrine::cpu
