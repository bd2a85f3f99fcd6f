// Rotary position embedding, KV-cache writes and causal grouped-query attention over an F32,
// F16 or Q8_0 KV cache.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>

#include "backend/cpu/cpu_backend.h"
#include "peregrine/error.h"
#include "peregrine/q8_0_block.h"
#include "peregrine/quant.h"

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

constexpr int64_t kQ8Block = kQ8_0BlockValues;        // values per Q8_0 block
constexpr int64_t kQ8BlockBytes = kQ8_0BlockBytes;    // fp16 scale + kQ8Block int8

// Every half-precision value as float, so reading an F16 cache row is a table lookup.
const std::array<float, 65536>& fp16_table() {
  static const std::array<float, 65536> table = [] {
    std::array<float, 65536> t{};
    for (uint32_t h = 0; h < 65536; ++h) t[h] = quant::fp16_to_fp32(static_cast<uint16_t>(h));
    return t;
  }();
  return table;
}

void check_kv_type(TensorType type, int64_t head_dim) {
  if (type == TensorType::F32 || type == TensorType::F16) return;
  if (type == TensorType::Q8_0) {
    if (head_dim % kQ8Block != 0)
      throw Error("KV cache q8_0: head dim " + std::to_string(head_dim) + " is not a multiple of " +
                  std::to_string(kQ8Block));
    return;
  }
  throw Error("KV cache type " + std::string(tensor_type_info(type).name) + " is not supported (f32, f16, q8_0)");
}

// Head `kvh` of cache row `s` as hd floats: a pointer into the cache for F32, otherwise
// converted into `buf` (the rounding was done once, when the row was stored).
const float* kv_head_row(const KvView& kv, const uint8_t* base, int64_t s, int64_t kvh, int64_t hd, float* buf) {
  const uint8_t* row = base + static_cast<uint64_t>(s) * kv.row_bytes;
  switch (kv.type) {
    case TensorType::F32:
      return reinterpret_cast<const float*>(row) + kvh * hd;
    case TensorType::F16: {
      const auto& table = fp16_table();
      const uint8_t* h = row + kvh * hd * 2;
      for (int64_t c = 0; c < hd; ++c) {
        uint16_t bits;
        std::memcpy(&bits, h + 2 * c, 2);
        buf[c] = table[bits];
      }
      return buf;
    }
    default: {  // Q8_0, checked by check_kv_type
      const auto& table = fp16_table();
      const uint8_t* block = row + kvh * (hd / kQ8Block) * kQ8BlockBytes;
      for (int64_t b = 0; b < hd / kQ8Block; ++b, block += kQ8BlockBytes) {
        uint16_t bits;
        std::memcpy(&bits, block, 2);
        const float d = table[bits];
        const auto* qs = reinterpret_cast<const int8_t*>(block + 2);
        for (int64_t i = 0; i < kQ8Block; ++i) buf[b * kQ8Block + i] = d * static_cast<float>(qs[i]);
      }
      return buf;
    }
  }
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

void CpuBackend::kv_store(TensorType type, const float* src, int64_t n_rows, int64_t n, uint8_t* dst) {
  check_kv_type(type, type == TensorType::Q8_0 ? n : 1);
  switch (type) {
    case TensorType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n_rows * n) * sizeof(float));
      break;
    case TensorType::F16:
      for (int64_t i = 0; i < n_rows * n; ++i) {
        const uint16_t h = quant::fp32_to_fp16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      break;
    default:
      quant::quantize(TensorType::Q8_0, src, dst, n_rows, n);
      break;
  }
}

void CpuBackend::attention(const HeadView& q, const KvView& kv, std::span<const int32_t> positions, float scale,
                           float* out) {
  const int64_t hd = q.head_dim, n_head = q.n_heads;
  const int64_t group = n_head / kv.n_kv_heads;
  check_kv_type(kv.type, hd);
  int64_t max_pos = 0;
  for (int32_t pos : positions) max_pos = std::max<int64_t>(max_pos, pos);
  // A work unit is one token and a run of query heads sharing one KV head: each cache row is
  // read (and, for F16 / Q8_0, converted) once per unit instead of once per head. The group is
  // split further only when there would be fewer units than threads. Each head sees the same
  // sequence of float operations either way, so results do not depend on the split or on the
  // thread count.
  int64_t heads_per_unit = group;
  while (heads_per_unit % 2 == 0 && q.n_tokens * (n_head / heads_per_unit) < pool_.size()) heads_per_unit /= 2;
  const int64_t units_per_token = n_head / heads_per_unit;
  const int64_t n_ctx_seen = max_pos + 1;
  reserve_workers(Buf::Scores, std::max<int64_t>(heads_per_unit * n_ctx_seen, 4096));
  reserve_workers(Buf::Row, 2 * hd);
  pool_.parallel_for(q.n_tokens * units_per_token, [&](int64_t u0, int64_t u1, int worker) {
    float* scores_all = workers_[worker].scores.data();
    float* k_buf = workers_[worker].row.data();
    float* v_buf = k_buf + hd;
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t t = u / units_per_token, h0 = (u % units_per_token) * heads_per_unit;
      const int64_t kvh = h0 / group;
      const int64_t n_kv = positions[t] + 1;
      for (int64_t s = 0; s < n_kv; ++s) {
        const float* ks = kv_head_row(kv, kv.k, s, kvh, hd, k_buf);
        for (int64_t g = 0; g < heads_per_unit; ++g)
          scores_all[g * n_ctx_seen + s] = scale * dot(q.head(t, h0 + g), ks, hd);
      }
      for (int64_t g = 0; g < heads_per_unit; ++g) {
        float* scores = scores_all + g * n_ctx_seen;
        float mx = -INFINITY;
        for (int64_t s = 0; s < n_kv; ++s) mx = std::max(mx, scores[s]);
        double sum = 0.0;
        for (int64_t s = 0; s < n_kv; ++s) sum += (scores[s] = std::exp(scores[s] - mx));
        const float inv = static_cast<float>(1.0 / sum);
        for (int64_t s = 0; s < n_kv; ++s) scores[s] *= inv;
        float* o = out + (t * n_head + h0 + g) * hd;
        std::fill(o, o + hd, 0.0f);
      }
      for (int64_t s = 0; s < n_kv; ++s) {
        const float* vs = kv_head_row(kv, kv.v, s, kvh, hd, v_buf);
        for (int64_t g = 0; g < heads_per_unit; ++g) {
          const float p = scores_all[g * n_ctx_seen + s];
          float* o = out + (t * n_head + h0 + g) * hd;
          for (int64_t c = 0; c < hd; ++c) o[c] += p * vs[c];
        }
      }
    }
  });
}

}  // namespace peregrine::cpu
