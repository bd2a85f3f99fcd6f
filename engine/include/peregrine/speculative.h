// MTP speculative decoding: the model's own NextN head drafts k tokens, one batched trunk pass
// verifies them, and the delta-net layers roll back to the accepted length from checkpoints kept
// during that pass (no second forward pass). Lossless: greedy output equals plain greedy decoding
// token for token, and with sampling the standard speculative-sampling rule keeps the output
// distributed exactly as plain sampling. Backend independent (only Model calls). docs/mtp.md.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <vector>

#include "peregrine/model.h"
#include "peregrine/mtp_limits.h"
#include "peregrine/sampler.h"
#include "peregrine/sequence_logits.h"

namespace peregrine {

struct SpeculativeOptions {
  int draft_length = 0;  // fixed k in 1..kMaxMtpDraftLength; 0 = adaptive (chooses 0..kMaxMtpDraftLength per step)
};

struct SpeculativeStats {
  int64_t steps = 0;                 // verify steps (plain steps included)
  int64_t drafted = 0;               // draft tokens proposed
  int64_t accepted = 0;              // draft tokens accepted
  std::array<int64_t, kMaxMtpDraftLength> drafted_at{};   // drafts proposed at position i (0-based)
  std::array<int64_t, kMaxMtpDraftLength> accepted_at{};  // drafts accepted at position i
  double draft_ms = 0, verify_ms = 0, sample_ms = 0;    // MTP head / trunk / acceptance+sampling
  // Accepted drafts per step that drafted (the mean accepted length).
  double mean_accepted() const;
  double acceptance_rate() const { return drafted ? double(accepted) / double(drafted) : 0.0; }
};

// The target side of the acceptance rule: the distribution plain sampling would draw the next
// token from, given the tokens recorded so far. `SamplerTarget` adapts peregrine::Sampler.
class TargetDistribution {
 public:
  virtual ~TargetDistribution() = default;
  virtual bool greedy() const = 0;
  // Most likely first, summing to 1 (greedy: the argmax with p = 1). Valid until the next call.
  virtual std::span<const TokenProb> distribution(LogitsSource& logits) = 0;
  std::span<const TokenProb> distribution(std::span<const float> logits) {
    HostLogits row(logits);
    return distribution(row);
  }
  virtual void record(int32_t id) = 0;  // the token became part of the output (penalties)
  virtual double uniform() = 0;         // a draw from [0, 1)
};

// Sampler::distribution gives the filtered distribution (steps 1–7 of sampler.h); the random
// draws come from this adapter's own generator (seeded from the sampling seed), because the
// Sampler does not expose its own.
class SamplerTarget final : public TargetDistribution {
 public:
  explicit SamplerTarget(Sampler& sampler);
  bool greedy() const override { return sampler_.params().is_greedy(); }
  using TargetDistribution::distribution;
  std::span<const TokenProb> distribution(LogitsSource& logits) override { return sampler_.distribution(logits); }
  void record(int32_t id) override { sampler_.accept(id); }
  double uniform() override { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

 private:
  Sampler& sampler_;
  std::mt19937_64 rng_;
};

// Result of one SpeculativeDecoder::step.
struct SpeculativeStep {
  // Output tokens in order: the accepted drafts, then one token chosen from the trunk (the
  // correction or the bonus token). Empty only when cancelled.
  std::vector<int32_t> tokens;
  int drafted = 0;   // k of this step
  int accepted = 0;  // accepted drafts (tokens.size() − 1)
  bool cancelled = false;
};

// Drives one sequence. Protocol (docs/mtp.md "Integration"):
//   1. every trunk call made outside step() — the prompt chunks — is reported with
//      observe(tokens) right after Model::evaluate (the head's cache follows the trunk);
//   2. the caller samples the first token from the prompt's logits as usual, then calls
//      step(last) with the last token chosen but not yet evaluated; step returns the next
//      tokens, the last of which is the next `last`;
//   3. if the caller uses only the first m tokens of a step (EOS, stop string, token limit),
//      it calls keep(m): the sequence then holds exactly what plain decoding would have
//      evaluated (everything but the m-th token);
//   4. sync() before the decoder goes if the sequence is kept for a later request.
// A decoder made for a sequence that already holds positions drafts only if the head's cache
// covers them (seq.mtp_n_past() >= seq.n_past(), e.g. after sync()); otherwise it decodes plainly.
// step() records every returned token in the TargetDistribution (the caller must not record
// them again). Without an MTP block step() is a plain decode step.
class SpeculativeDecoder {
 public:
  SpeculativeDecoder(Model& model, Sequence& sequence, const SpeculativeOptions& options);

  bool mtp_active() const { return active_; }  // false: no MTP block, or its cache misses positions
  const SpeculativeStats& stats() const { return stats_; }
  int next_draft_length() const;  // the k the next step will use

  void observe(std::span<const int32_t> tokens);
  SpeculativeStep step(int32_t last, TargetDistribution& target, const std::function<bool()>& cancelled = {});
  void keep(size_t m);
  // Writes the head rows still pending (accepted drafts, plain steps) into its cache, so that the
  // cache covers every evaluated position. Call before dropping a decoder whose sequence lives
  // on (a later decoder on the same sequence then drafts at full strength).
  void sync() { flush_mtp(-1); }

 private:
  void flush_mtp(int32_t last);
  int draft(int32_t last, int k, TargetDistribution& target, const std::function<bool()>& cancelled);
  void update_costs(int k, int accepted, double draft_ms, double verify_ms);
  double verify_cost(int k) const;  // the linear cost model

  Model& model_;
  Sequence& seq_;
  SpeculativeOptions options_;
  bool active_ = false;
  int64_t n_embd_ = 0, n_vocab_ = 0;
  SpeculativeStats stats_;

  // Tokens whose MTP rows are not yet written with trunk hidden rows: pending_tokens_[i] at
  // position mtp_fill_ + i, with the trunk hidden row of the position before it.
  int64_t mtp_fill_ = 0;
  std::vector<int32_t> pending_tokens_;
  std::vector<float> pending_hidden_;
  std::vector<float> h_last_;  // trunk hidden row of position n_past − 1 (zeros at 0)
  std::vector<float> chain_hidden_;  // the head's previous row while chaining drafts

  // The current step's drafts, their draft distributions q (dense over the vocabulary for
  // sampling), and the verify batch.
  std::vector<int32_t> drafts_, batch_;
  std::vector<std::vector<TokenProb>> q_;
  std::vector<double> residual_;  // scratch of judge_draft
  // The verify pass's rows and the head's draft row, read as candidates where the model keeps them.
  SequenceLogits trunk_rows_, mtp_rows_;
  int64_t step_start_ = 0;   // position of `last` in the last step
  int step_evaluated_ = 0;   // tokens of the last step that were evaluated (1 + accepted)

  // Adaptive k: per-position acceptance estimates and measured costs.
  std::array<double, kMaxMtpDraftLength> accept_rate_{};
  double draft_cost_ms_ = 0;                 // one chained head step
  // Verify pass of k + 1 positions ≈ verify_base_ms_ + verify_per_draft_ms_ · k, both updated by
  // every step (so one noisy measurement cannot stick to a length that is no longer chosen).
  double verify_base_ms_ = 0, verify_per_draft_ms_ = 0;
  int64_t steps_since_probe_ = 0;
  int next_k_ = 1;
};

}  // namespace peregrine
