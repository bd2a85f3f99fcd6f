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

void Sampler::apply_penalties(std::span<const float> logits) {
  if (static_cast<int64_t>(logits.size()) != n_logits_)
    throw Error(fmt::format("sampler: a logits row has {} values, expected {}", logits.size(), n_logits_));
  std::copy_n(logits.begin(), valid_vocab_, work_.begin());
  const float rep = params_.repetition_penalty;
  const float presence = params_.presence_penalty;
  const float frequency = params_.frequency_penalty;
  if (rep == 1.0f && presence == 0.0f && frequency == 0.0f) return;
  for (int32_t id : seen_ids_) {
    float& x = work_[id];
    if (rep != 1.0f) x = x > 0.0f ? x / rep : x * rep;
    if (const int32_t n = output_count_[id]; n > 0) x -= presence + frequency * static_cast<float>(n);
  }
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

void Sampler::build_distribution() {
  const double inv_t = 1.0 / static_cast<double>(params_.temperature);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  n_candidates_ = 0;
  bool sorted = false;
  if (params_.top_k > 0 && params_.top_k < valid_vocab_) {
    // One pass with a heap of the k best (worst on top): most ids lose against the top at once,
    // which is far cheaper than gathering and partitioning the whole vocabulary.
    const size_t k = static_cast<size_t>(params_.top_k);
    auto first = candidates_.begin();
    for (int32_t i = 0; i < valid_vocab_; ++i) {
      const float x = work_[i];
      if (!(x > neg_inf)) continue;  // -inf (masked) and NaN
      const TokenProb t{i, static_cast<double>(x)};
      if (n_candidates_ < k) {
        candidates_[n_candidates_++] = t;
        std::push_heap(first, first + static_cast<std::ptrdiff_t>(n_candidates_), better);
      } else if (better(t, candidates_[0])) {
        std::pop_heap(first, first + static_cast<std::ptrdiff_t>(k), better);
        candidates_[k - 1] = t;
        std::push_heap(first, first + static_cast<std::ptrdiff_t>(k), better);
      }
    }
    std::sort_heap(first, first + static_cast<std::ptrdiff_t>(n_candidates_), better);
    // sort_heap with `better` leaves the best first; scale after choosing (T > 0 keeps the order).
    for (size_t i = 0; i < n_candidates_; ++i) candidates_[i].p *= inv_t;
    sorted = true;
  } else {
    for (int32_t i = 0; i < valid_vocab_; ++i) {
      const float x = work_[i];
      if (!(x > neg_inf)) continue;
      candidates_[n_candidates_++] = {i, static_cast<double>(x) * inv_t};
    }
  }
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

std::span<const TokenProb> Sampler::distribution(std::span<const float> logits) {
  apply_penalties(logits);
  if (params_.is_greedy()) {
    candidates_[0] = {argmax(), 1.0};
    n_candidates_ = 1;
  } else {
    build_distribution();
    // Probabilities keep the logit order, so sorting by p equals sorting by logit.
    std::sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(n_candidates_), better);
  }
  return {candidates_.data(), n_candidates_};
}

int32_t Sampler::sample(std::span<const float> logits) {
  apply_penalties(logits);
  if (params_.is_greedy()) return argmax();
  build_distribution();
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
