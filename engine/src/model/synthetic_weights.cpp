#include "synthetic_weights.h"

#include <algorithm>
#include <cmath>

namespace peregrine::synthetic {
namespace {

bool ends_with(const std::string& s, const char* suffix) {
  const std::string_view sv(suffix);
  return s.size() >= sv.size() && s.compare(s.size() - sv.size(), sv.size(), sv) == 0;
}
bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// xoshiro256+ seeded from splitmix64: fast, and statistically fine for weights.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& s : s_) s = splitmix64(seed);
  }
  uint64_t next() {
    const uint64_t result = s_[0] + s_[3];
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = (s_[3] << 45) | (s_[3] >> 19);
    return result;
  }
  // Uniform in (0, 1).
  double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

 private:
  uint64_t s_[4];
};

}  // namespace

uint64_t hash_combine(uint64_t a, uint64_t b) {
  uint64_t state = a ^ (b + 0x9E3779B97F4A7C15ull + (a << 6) + (a >> 2));
  return splitmix64(state);
}

uint64_t hash_string(const std::string& s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
  return h;
}

WeightInit weight_init_for(const std::string& name, int64_t fan_in, int64_t n_trunk) {
  WeightInit w;
  if (ends_with(name, "norm.weight")) {
    w.kind = WeightInit::Kind::NormWeight;
  } else if (ends_with(name, "ssm_a")) {
    w.kind = WeightInit::Kind::SsmA;
  } else if (ends_with(name, "ssm_dt.bias")) {
    w.kind = WeightInit::Kind::DtBias;
  } else if (contains(name, "ssm_conv1d")) {
    w.scale = 0.5f;
  } else if (name == "token_embd.weight") {
    w.scale = 1.0f;
  } else if (name == "output.weight") {
    w.scale = 2.5f / std::sqrt(static_cast<float>(fan_in));
  } else {
    // Residual-branch outputs get gain 1/sqrt(2 L) so that the residual stream of a deep model
    // grows to about sqrt(2) of the embedding RMS instead of sqrt(2 L).
    const bool residual_out = contains(name, "ssm_out.") || contains(name, "attn_output.") ||
                              contains(name, "ffn_down");
    const float gain = residual_out ? std::min(1.0f, 1.0f / std::sqrt(2.0f * static_cast<float>(n_trunk))) : 1.0f;
    w.scale = gain / std::sqrt(static_cast<float>(fan_in));
  }
  return w;
}

void generate_row(const WeightInit& init, uint64_t key, int64_t row, int64_t n, float* out) {
  Rng rng(hash_combine(key, static_cast<uint64_t>(row)));
  switch (init.kind) {
    case WeightInit::Kind::Normal:
    case WeightInit::Kind::NormWeight: {
      const float scale = init.kind == WeightInit::Kind::Normal ? init.scale : 0.1f;
      const float offset = init.kind == WeightInit::Kind::Normal ? 0.0f : 1.0f;
      for (int64_t i = 0; i < n; i += 2) {  // Box-Muller, two values per pair of uniforms
        const double r = std::sqrt(-2.0 * std::log(rng.uniform()));
        const double a = 6.283185307179586 * rng.uniform();
        out[i] = offset + scale * static_cast<float>(r * std::cos(a));
        if (i + 1 < n) out[i + 1] = offset + scale * static_cast<float>(r * std::sin(a));
      }
      break;
    }
    case WeightInit::Kind::SsmA:  // -A with A uniform in [1, 16]: already -exp(A_log)
      for (int64_t i = 0; i < n; ++i) out[i] = -static_cast<float>(1.0 + 15.0 * rng.uniform());
      break;
    case WeightInit::Kind::DtBias:  // inverse softplus of dt, dt log-uniform in [1e-3, 1e-1]
      for (int64_t i = 0; i < n; ++i) {
        const double dt = std::exp(std::log(1e-3) + (std::log(1e-1) - std::log(1e-3)) * rng.uniform());
        out[i] = static_cast<float>(std::log(std::expm1(dt)));
      }
      break;
  }
}

}  // namespace peregrine::synthetic
