// Choosing the draft length, statistics, and the Sampler adapter.
//
// Adaptive k maximises expected output tokens per unit of step time: with a_i the running
// acceptance rate of draft position i (given that position i − 1 was accepted), a step with k
// drafts yields E(k) = 1 + Σ_{i<k} Π_{j≤i} a_j tokens and costs k·c_draft + c_verify(k), both
// costs measured on this machine (verify as a linear function of k). k = 0 (a plain step) wins when drafts are rarely accepted;
// every kProbeEvery steps one step drafts one more than the best, so that the estimates of the
// positions past the chosen k stay fresh.
#include <algorithm>
#include <cmath>

#include "decode/speculative_policy.h"

namespace peregrine {
namespace {

constexpr double kRateWeight = 0.1;  // EMA weight of one new observation
constexpr double kCostWeight = 0.2;
constexpr int64_t kProbeEvery = 16;

double ema(double old, double x, double w) { return old == 0 ? x : old + w * (x - old); }

}  // namespace

double SpeculativeStats::mean_accepted() const {
  const int64_t drafting_steps = drafted_at[0];
  return drafting_steps ? double(accepted) / double(drafting_steps) : 0.0;
}

SamplerTarget::SamplerTarget(Sampler& sampler)
    : sampler_(sampler), rng_(sampler.params().seed ^ 0x9e3779b97f4a7c15ull) {}

int best_draft_length(const std::array<double, kMaxMtpDraftLength>& accept_rates, double draft_cost,
                      const std::array<double, kMaxVerifyTokens>& verify_costs) {
  int best = 0;
  double best_rate = 0, expected = 1, reach = 1;
  for (int k = 0; k <= kMaxMtpDraftLength; ++k) {
    if (k > 0) {
      reach *= accept_rates[k - 1];
      expected += reach;
    }
    const double rate = expected / (k * draft_cost + verify_costs[k]);
    if (rate > best_rate * (1 + 1e-12)) {
      best_rate = rate;
      best = k;
    }
  }
  return best;
}

double SpeculativeDecoder::verify_cost(int k) const {
  if (verify_base_ms_ <= 0) return 1.0 + 0.1 * k;  // nothing measured yet: only ratios matter
  return verify_base_ms_ + verify_per_draft_ms_ * k;
}

int SpeculativeDecoder::next_draft_length() const {
  if (!active_) return 0;
  if (options_.draft_length > 0) return options_.draft_length;
  return next_k_;
}

void SpeculativeDecoder::update_costs(int k, int accepted, double draft_ms, double verify_ms) {
  for (int i = 0; i < k && i <= accepted; ++i)
    accept_rate_[i] = accept_rate_[i] + kRateWeight * ((i < accepted ? 1.0 : 0.0) - accept_rate_[i]);
  if (k > 0) draft_cost_ms_ = ema(draft_cost_ms_, draft_ms / k, kCostWeight);
  if (k == 0 || verify_base_ms_ <= 0) {
    verify_base_ms_ = ema(verify_base_ms_, std::max(1e-6, verify_ms - verify_per_draft_ms_ * k), kCostWeight);
  } else {
    const double per_draft = std::max(0.0, (verify_ms - verify_base_ms_) / k);
    verify_per_draft_ms_ = ema(verify_per_draft_ms_, per_draft, kCostWeight);
    verify_base_ms_ = ema(verify_base_ms_, std::max(1e-6, verify_ms - verify_per_draft_ms_ * k), kCostWeight);
  }

  std::array<double, kMaxVerifyTokens> verify{};
  for (int j = 0; j <= kMaxMtpDraftLength; ++j) verify[j] = verify_cost(j);
  int best = best_draft_length(accept_rate_, draft_cost_ms_ > 0 ? draft_cost_ms_ : 0.1 * verify[0], verify);
  if (++steps_since_probe_ >= kProbeEvery) {
    steps_since_probe_ = 0;
    best = std::min(best + 1, kMaxMtpDraftLength);
  }
  next_k_ = best;
}

}  // namespace peregrine
