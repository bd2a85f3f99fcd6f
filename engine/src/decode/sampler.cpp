// Sampler: penalties, temperature, top-k / top-p / min-p filtering and the seeded draw.
#include "peregrine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "peregrine/error.h"

namespace peregrine {

namespace {

// Most likely first; equal logits: lower id first (so every result is deterministic).
// TokenProb::p holds the scaled logit until build_distribution() turns it into a probability.
bool better(const TokenProb& a, const TokenProb& b) {
  if (a.p != b.p) return a.p > b.p;
  return a.id < b.id;
}

// The Qwen 3.6 model card's profiles differ only in temperature, top-p and presence penalty
// (top-k 20, min-p 0 in all of them).
SamplingParams model_card_profile(float temperature, float top_p, float presence_penalty) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_p = top_p;
  p.top_k = 20;
  p.min_p = 0.0f;
  p.presence_penalty = presence_penalty;
  return p;
}

}  // namespace

SamplingParams SamplingParams::thinking_general() { return model_card_profile(1.0f, 0.95f, 1.5f); }
SamplingParams SamplingParams::thinking_coding() { return model_card_profile(0.6f, 0.95f, 0.0f); }
SamplingParams SamplingParams::instruct() { return model_card_profile(0.7f, 0.8f, 1.5f); }

std::optional<SamplingParams> SamplingParams::profile(std::string_view name) {
  if (name == "greedy") return greedy();
  if (name == "thinking") return thinking_general();
  if (name == "coding") return thinking_coding();
  if (name == "instruct") return instruct();
  return std::nullopt;
}

void SamplingParams::validate() const {
  auto fail = [](const std::string& what) { throw Error("sampling parameters: " + what); };
  if (!std::isfinite(temperature)) fail("temperature must be a finite number");
  if (top_k < 0) fail(fmt::format("top_k {} must be >= 0 (0 = off)", top_k));
  if (!(top_p > 0.0f && top_p <= 1.0f)) fail(fmt::format("top_p {} must be in (0, 1]", top_p));
  if (!(min_p >= 0.0f && min_p <= 1.0f)) fail(fmt::format("min_p {} must be in [0, 1]", min_p));
  if (!std::isfinite(presence_penalty)) fail("presence_penalty must be a finite number");
  if (!std::isfinite(frequency_penalty)) fail("frequency_penalty must be a finite number");
  if (!(repetition_penalty > 0.0f) || !std::isfinite(repetition_penalty))
    fail(fmt::format("repetition_penalty {} must be > 0 (1 = off)", repetition_penalty));
}

void LogitsSource::top_k(const LogitPenalties&, int64_t, int64_t, int32_t*, float*) {
  throw Error("sampler: this logits source has no candidate selection (only the whole row)");
}

Sampler::Sampler(const SamplingParams& params, int32_t n_logits, int32_t valid_vocab)
    : params_(params), n_logits_(n_logits), valid_vocab_(valid_vocab), rng_(params.seed) {
  params_.validate();
  if (n_logits <= 0 || valid_vocab <= 0 || valid_vocab > n_logits)
    throw Error(fmt::format("sampler: valid vocabulary {} must be in [1, logits per row {}]", valid_vocab, n_logits));
  work_.resize(static_cast<size_t>(valid_vocab));
  in_prompt_.assign(static_cast<size_t>(valid_vocab), 0);
  output_count_.assign(static_cast<size_t>(valid_vocab), 0);
  seen_ids_.reserve(static_cast<size_t>(valid_vocab));
  candidates_.resize(static_cast<size_t>(valid_vocab));
  penalty_ids_.reserve(static_cast<size_t>(valid_vocab));
  penalty_subtract_.reserve(static_cast<size_t>(valid_vocab));
  // Top-k below the vocabulary is a selection (build_distribution); greedy needs only the argmax.
  const bool top_k_selects = params_.top_k > 0 && params_.top_k < valid_vocab;
  if (params_.is_greedy()) candidates_needed_ = 1;
  else if (top_k_selects && params_.top_k <= kMaxLogitCandidates) candidates_needed_ = params_.top_k;
  const size_t top = top_k_selects ? static_cast<size_t>(params_.top_k) : 1;
  top_ids_.resize(top);
  top_values_.resize(top);
}

void Sampler::reset(std::span<const int32_t> prompt) {
  for (int32_t id : seen_ids_) {
    in_prompt_[id] = 0;
    output_count_[id] = 0;
  }
  seen_ids_.clear();
  rng_.seed(params_.seed);
  for (int32_t id : prompt) {
    // Prompt ids past the valid vocabulary cannot be penalised (they are never sampled).
    if (id < 0 || id >= valid_vocab_ || in_prompt_[id]) continue;
    if (output_count_[id] == 0) seen_ids_.push_back(id);
    in_prompt_[id] = 1;
  }
}

void Sampler::accept(int32_t id) {
  if (id < 0 || id >= valid_vocab_) return;
  if (!in_prompt_[id] && output_count_[id] == 0) seen_ids_.push_back(id);
  ++output_count_[id];
}

LogitPenalties Sampler::penalties() {
  penalty_ids_.clear();
  penalty_subtract_.clear();
  const float rep = params_.repetition_penalty;
  const float presence = params_.presence_penalty;
  const float frequency = params_.frequency_penalty;
  if (rep == 1.0f && presence == 0.0f && frequency == 0.0f) return {};
  for (int32_t id : seen_ids_) {
    const int32_t n = output_count_[id];
    if (rep == 1.0f && n == 0) continue;  // a prompt-only id: nothing changes it
    penalty_ids_.push_back(id);
    // x − 0 == x for every float, so ids without a count may subtract 0.
    penalty_subtract_.push_back(n > 0 ? presence + frequency * static_cast<float>(n) : 0.0f);
  }
  return {rep, penalty_ids_, penalty_subtract_};
}

void Sampler::apply_penalties(std::span<const float> logits) {
  if (static_cast<int64_t>(logits.size()) != n_logits_)
    throw Error(fmt::format("sampler: a logits row has {} values, expected {}", logits.size(), n_logits_));
  std::copy_n(logits.begin(), valid_vocab_, work_.begin());
  apply_logit_penalties(work_.data(), penalties());
}

int32_t Sampler::argmax() const {
  int32_t best = -1;
  float best_value = -std::numeric_limits<float>::infinity();
  for (int32_t i = 0; i < valid_vocab_; ++i) {
    // Strictly greater: ties keep the lower id; NaN never wins.
    if (work_[i] > best_value || (best < 0 && work_[i] == best_value)) {
      best = i;
      best_value = work_[i];
    }
  }
  if (best < 0 || (std::isinf(best_value) && best_value < 0))
    throw Error("sampler: every logit is -inf or NaN, nothing can be sampled");
  return best;
}

void Sampler::take_top(int64_t n) {
  // Scaled after choosing: T > 0 keeps the order.
  const double inv_t = 1.0 / static_cast<double>(params_.temperature);
  for (int64_t i = 0; i < n; ++i) candidates_[i] = {top_ids_[i], static_cast<double>(top_values_[i]) * inv_t};
  n_candidates_ = static_cast<size_t>(n);
}

void Sampler::build_distribution() {
  if (params_.top_k > 0 && params_.top_k < valid_vocab_) {
    // The same selection a candidate source runs (logit_select.h), here over the host row.
    take_top(select_top_k(work_.data(), valid_vocab_, params_.top_k, top_ids_.data(), top_values_.data()));
    finish_distribution(true);
    return;
  }
  const double inv_t = 1.0 / static_cast<double>(params_.temperature);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  n_candidates_ = 0;
  for (int32_t i = 0; i < valid_vocab_; ++i) {
    const float x = work_[i];
    if (!(x > neg_inf)) continue;  // -inf (masked) and NaN
    candidates_[n_candidates_++] = {i, static_cast<double>(x) * inv_t};
  }
  finish_distribution(false);
}

void Sampler::finish_distribution(bool sorted) {
  if (n_candidates_ == 0) throw Error("sampler: every logit is -inf or NaN, nothing can be sampled");
  double max_logit = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < n_candidates_; ++i) max_logit = std::max(max_logit, candidates_[i].p);

  if (params_.top_p < 1.0f) {
    double z = 0.0;
    for (size_t i = 0; i < n_candidates_; ++i) z += std::exp(candidates_[i].p - max_logit);
    const double target = static_cast<double>(params_.top_p) * z;
    // Sort only as far as needed: the nucleus is usually a tiny part of a large vocabulary.
    size_t m = sorted ? n_candidates_ : std::min<size_t>(n_candidates_, 64);
    for (;;) {
      if (!sorted) {
        auto first = candidates_.begin();
        auto mid = first + static_cast<std::ptrdiff_t>(m);
        std::nth_element(first, mid, first + static_cast<std::ptrdiff_t>(n_candidates_), better);
        std::sort(first, mid, better);
      }
      double cumulative = 0.0;
      size_t keep = 0;
      for (size_t i = 0; i < m; ++i) {
        cumulative += std::exp(candidates_[i].p - max_logit);
        if (cumulative >= target) {
          keep = i + 1;
          break;
        }
      }
      if (keep > 0) {
        n_candidates_ = keep;
        break;
      }
      if (m == n_candidates_) break;  // rounding: the whole set is the nucleus
      m = std::min(n_candidates_, m * 8);
    }
    sorted = true;
  }

  if (params_.min_p > 0.0f) {
    // p >= min_p * p_max  <=>  logit >= max_logit + log(min_p): independent of normalisation.
    const double threshold = max_logit + std::log(static_cast<double>(params_.min_p));
    size_t kept = 0;
    for (size_t i = 0; i < n_candidates_; ++i)
      if (candidates_[i].p >= threshold) candidates_[kept++] = candidates_[i];
    n_candidates_ = kept;  // never empty: the max itself passes
  }

  double z = 0.0;
  for (size_t i = 0; i < n_candidates_; ++i) {
    candidates_[i].p = std::exp(candidates_[i].p - max_logit);
    z += candidates_[i].p;
  }
  for (size_t i = 0; i < n_candidates_; ++i) candidates_[i].p /= z;
}

void Sampler::choose(LogitsSource& logits) {
  if (candidates_needed_ > 0 && logits.has_candidates()) {
    const int64_t k = candidates_needed_;
    logits.top_k(penalties(), valid_vocab_, k, top_ids_.data(), top_values_.data());
    int64_t n = 0;
    while (n < k && top_ids_[n] >= 0) ++n;
    if (n == 0) throw Error("sampler: every logit is -inf or NaN, nothing can be sampled");
    if (params_.is_greedy()) {
      candidates_[0] = {top_ids_[0], 1.0};
      n_candidates_ = 1;
      return;
    }
    take_top(n);
    finish_distribution(true);
    return;
  }
  apply_penalties(logits.row());
  if (params_.is_greedy()) {
    candidates_[0] = {argmax(), 1.0};
    n_candidates_ = 1;
    return;
  }
  build_distribution();
}

std::span<const TokenProb> Sampler::distribution(std::span<const float> logits) {
  HostLogits row(logits);
  return distribution(row);
}

std::span<const TokenProb> Sampler::distribution(LogitsSource& logits) {
  choose(logits);
  // Probabilities keep the logit order, so sorting by p equals sorting by logit.
  std::sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(n_candidates_), better);
  return {candidates_.data(), n_candidates_};
}

int32_t Sampler::sample(std::span<const float> logits) {
  HostLogits row(logits);
  return sample(row);
}

int32_t Sampler::sample(LogitsSource& logits) {
  choose(logits);
  if (params_.is_greedy()) return candidates_[0].id;
  // 53 random bits -> u in [0, 1): the same on every standard library (unlike the
  // std::uniform_real_distribution algorithms, which are implementation-defined).
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  double cumulative = 0.0;
  for (size_t i = 0; i < n_candidates_; ++i) {
    cumulative += candidates_[i].p;
    if (u < cumulative) return candidates_[i].id;
  }
  return candidates_[n_candidates_ - 1].id;
}

}  // namespace peregrine
