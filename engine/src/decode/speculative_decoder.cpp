// SpeculativeDecoder: chain drafting with the MTP head, one batched verify pass, rollback.
// Positions: `last` (chosen, not yet evaluated) sits at P = seq.n_past(). The head's row p takes
// (token p, trunk hidden row p − 1); drafting at P needs rows [0, P) in its cache, and writes row
// P correctly (it is fed the trunk row), while chained rows P+1.. are fed the head's own rows and
// are rewritten with trunk rows once the trunk has verified their tokens.
#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "decode/speculative_accept.h"
#include "peregrine/error.h"
#include "peregrine/log.h"
#include "peregrine/speculative.h"

namespace peregrine {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

constexpr size_t kMaxPending = 64;  // flush the head's cache after this many plain steps

}  // namespace

SpeculativeDecoder::SpeculativeDecoder(Model& model, Sequence& sequence, const SpeculativeOptions& options)
    : model_(model),
      seq_(sequence),
      options_(options),
      trunk_rows_(model, sequence, LogitRows::Trunk),
      mtp_rows_(model, sequence, LogitRows::Mtp) {
  const ModelConfig& c = model.config();
  n_embd_ = c.n_embd;
  n_vocab_ = c.n_vocab;
  if (options.draft_length < 0 || options.draft_length > kMaxMtpDraftLength)
    throw Error(fmt::format("speculative: draft length {} outside 0 (adaptive) .. {}", options.draft_length,
                            kMaxMtpDraftLength));
  auto log = log::get("mtp");
  active_ = c.has_mtp();
  if (!active_) log->debug("the model has no MTP (nextn) block: plain decoding steps");
  h_last_.assign(n_embd_, 0.0f);
  mtp_fill_ = seq_.n_past();
  if (active_ && seq_.n_past() > 0) {
    // Positions evaluated before this decoder existed: the head's cache can only be trusted if
    // it was kept up to that point, and the hidden row of the last position must be known.
    if (seq_.mtp_n_past() < seq_.n_past() || seq_.hidden().size() < static_cast<size_t>(n_embd_)) {
      log->warn("sequence at position {} was evaluated without the MTP head (its cache is at {}): drafting off",
                seq_.n_past(), seq_.mtp_n_past());
      active_ = false;
    } else {
      std::copy(seq_.hidden().end() - n_embd_, seq_.hidden().end(), h_last_.begin());
    }
  }
  if (active_) {
    seq_.set_delta_checkpoints(kMaxVerifyTokens);
    drafts_.reserve(kMaxMtpDraftLength);
    batch_.reserve(kMaxVerifyTokens);
    q_.resize(kMaxMtpDraftLength);
    for (auto& q : q_) q.reserve(64);
    residual_.assign(n_vocab_, 0.0);
    accept_rate_.fill(0.6);  // optimistic start so every position gets tried
    next_k_ = options.draft_length > 0 ? options.draft_length : 2;
    log->debug("MTP speculative decoding on: draft length {}", options.draft_length > 0
                                                                  ? std::to_string(options.draft_length)
                                                                  : std::string("adaptive"));
  }
}

// A prompt chunk the caller just evaluated: its head rows are (token, previous trunk row).
void SpeculativeDecoder::observe(std::span<const int32_t> tokens) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) return;
  const std::span<const float> hidden = seq_.hidden();
  if (static_cast<int64_t>(hidden.size()) != n * n_embd_)
    throw Error(fmt::format("speculative observe: the last evaluate returned {} hidden rows for {} tokens",
                            hidden.size() / std::max<int64_t>(1, n_embd_), n));
  step_evaluated_ = 0;
  if (active_) {
    pending_tokens_.insert(pending_tokens_.end(), tokens.begin(), tokens.end());
    pending_hidden_.insert(pending_hidden_.end(), h_last_.begin(), h_last_.end());
    pending_hidden_.insert(pending_hidden_.end(), hidden.begin(), hidden.end() - n_embd_);
    flush_mtp(-1);
  }
  std::copy(hidden.end() - n_embd_, hidden.end(), h_last_.begin());
}

// Writes the pending rows into the head's cache; with `last` >= 0 also the row of `last` at
// the current position, whose logits are then the first draft's.
void SpeculativeDecoder::flush_mtp(int32_t last) {
  if (last >= 0) {
    pending_tokens_.push_back(last);
    pending_hidden_.insert(pending_hidden_.end(), h_last_.begin(), h_last_.end());
  }
  if (pending_tokens_.empty()) return;
  model_.evaluate_mtp_lazy(seq_, pending_tokens_, pending_hidden_, mtp_fill_, LogitsFor::LastToken);
  mtp_rows_.refresh(1);
  mtp_fill_ += static_cast<int64_t>(pending_tokens_.size());
  pending_tokens_.clear();
  pending_hidden_.clear();
}

// Chains k drafts from `last`; returns how many were made (fewer when cancelled).
int SpeculativeDecoder::draft(int32_t last, int k, TargetDistribution& target,
                              const std::function<bool()>& cancelled) {
  const int64_t P = seq_.n_past();
  drafts_.clear();
  flush_mtp(last);  // row P: (last, trunk row P − 1) → the first draft's logits
  for (int i = 0; i < k; ++i) {
    if (i > 0) {
      if (cancelled && cancelled()) break;
      // The head's own row of the previous draft (the last row: the first call also wrote the
      // pending rows) is the next input.
      const std::span<const float> prev = seq_.mtp_hidden().last(static_cast<size_t>(n_embd_));
      chain_hidden_.assign(prev.begin(), prev.end());
      model_.evaluate_mtp_lazy(seq_, std::span<const int32_t>(&drafts_.back(), 1), chain_hidden_, P + i,
                               LogitsFor::LastToken);
      mtp_rows_.refresh(1);
    }
    const auto q = target.distribution(mtp_rows_);
    q_[i].assign(q.begin(), q.end());
    drafts_.push_back(target.greedy() ? q.front().id : draw(q, target.uniform()));
  }
  return static_cast<int>(drafts_.size());
}

SpeculativeStep SpeculativeDecoder::step(int32_t last, TargetDistribution& target,
                                         const std::function<bool()>& cancelled) {
  SpeculativeStep result;
  const int64_t P = seq_.n_past();
  if (P >= seq_.context_length())
    throw Error(fmt::format("speculative step: the sequence is full ({} positions)", P));
  if (cancelled && cancelled()) {
    result.cancelled = true;
    return result;
  }
  int k = active_ ? std::min<int64_t>(next_draft_length(), seq_.context_length() - P - 1) : 0;

  // Draft.
  const Clock::time_point t_draft = Clock::now();
  if (k > 0) {
    const int made = draft(last, k, target, cancelled);
    if (made < k || (cancelled && cancelled())) {
      // The trunk is untouched; the head's row P is rewritten by the next draft.
      mtp_fill_ = P;
      result.cancelled = true;
      return result;
    }
  } else if (active_) {
    pending_tokens_.push_back(last);
    pending_hidden_.insert(pending_hidden_.end(), h_last_.begin(), h_last_.end());
    if (pending_tokens_.size() >= kMaxPending) flush_mtp(-1);
  }
  const double draft_ms = ms_since(t_draft);

  // Verify [last, d1..dk] in one trunk pass (checkpoints kept for the rollback).
  const Clock::time_point t_verify = Clock::now();
  batch_.assign(1, last);
  batch_.insert(batch_.end(), drafts_.begin(), drafts_.begin() + k);
  model_.evaluate_lazy(seq_, batch_, P, k > 0 ? LogitsFor::EveryToken : LogitsFor::LastToken);
  trunk_rows_.refresh(k > 0 ? k + 1 : 1);
  const double verify_ms = ms_since(t_verify);

  // Accept.
  const Clock::time_point t_sample = Clock::now();
  int a = 0;
  for (; a < k; ++a) {
    trunk_rows_.select(a);
    const auto p = target.distribution(trunk_rows_);
    const DraftVerdict v = target.greedy()
                               ? judge_draft_greedy(p, drafts_[a])
                               : judge_draft(p, q_[a], drafts_[a], target.uniform(), target.uniform(), residual_);
    result.tokens.push_back(v.token);
    target.record(v.token);
    if (!v.accepted) break;
  }
  if (a == k) {  // every draft accepted: the bonus token from the last row
    trunk_rows_.select(k);
    const auto p = target.distribution(trunk_rows_);
    const int32_t id = target.greedy() ? p.front().id : draw(p, target.uniform());
    result.tokens.push_back(id);
    target.record(id);
  }
  const double sample_ms = ms_since(t_sample);

  // The head's pending rows for the accepted drafts (trunk rows 0..a−1 of this pass), the new
  // last hidden row, then the trunk back to P + a + 1.
  const std::span<const float> hidden = seq_.hidden();
  if (active_ && k > 0) {
    pending_tokens_.insert(pending_tokens_.end(), drafts_.begin(), drafts_.begin() + a);
    pending_hidden_.insert(pending_hidden_.end(), hidden.begin(), hidden.begin() + a * n_embd_);
  }
  std::copy(hidden.begin() + a * n_embd_, hidden.begin() + (a + 1) * n_embd_, h_last_.begin());
  if (a < k) model_.rollback(seq_, P + a + 1);
  step_start_ = P;
  step_evaluated_ = a + 1;

  result.drafted = k;
  result.accepted = a;
  ++stats_.steps;
  stats_.drafted += k;
  stats_.accepted += a;
  for (int i = 0; i < k; ++i) ++stats_.drafted_at[i];
  for (int i = 0; i < a; ++i) ++stats_.accepted_at[i];
  stats_.draft_ms += draft_ms;
  stats_.verify_ms += verify_ms;
  stats_.sample_ms += sample_ms;
  if (active_) update_costs(k, a, draft_ms, verify_ms);
  return result;
}

void SpeculativeDecoder::keep(size_t m) {
  if (m == 0 || static_cast<int>(m) > step_evaluated_)
    throw Error(fmt::format("speculative keep: {} tokens of a step that returned {}", m, step_evaluated_));
  const int64_t target = step_start_ + static_cast<int64_t>(m);
  if (target == seq_.n_past()) return;
  model_.rollback(seq_, target);
  // Pending head rows beyond the kept positions go; the last kept trunk row becomes h_last.
  const size_t keep_rows = static_cast<size_t>(std::max<int64_t>(0, target - mtp_fill_));
  pending_tokens_.resize(std::min(pending_tokens_.size(), keep_rows));
  pending_hidden_.resize(pending_tokens_.size() * n_embd_);
  const std::span<const float> hidden = seq_.hidden();
  std::copy(hidden.end() - n_embd_, hidden.end(), h_last_.begin());
  step_evaluated_ = static_cast<int>(m);
}

}  // namespace peregrine
