#include "decode/token_source.h"

#include <optional>

#include "peregrine/speculative.h"

namespace peregrine {
namespace {

class PlainTokens final : public TokenSource {
 public:
  explicit PlainTokens(const TokenSourceParts& parts) : p_(parts) {}

  int32_t next() override {
    const int32_t id = p_.sampler.sample(p_.logits);
    p_.sampler.accept(id);
    return id;
  }

  int64_t position() const override { return p_.sequence.n_past(); }

  bool advance(int32_t id) override {
    p_.model.evaluate_lazy(p_.sequence, std::span<const int32_t>(&id, 1), p_.sequence.n_past(), LogitsFor::LastToken);
    p_.logits.refresh(1);
    p_.history.push_back(id);
    return true;
  }

 private:
  TokenSourceParts p_;
};

// The first token is sampled from the prompt's logits; after that every token comes from a
// decoder step. `queue_` holds the current step's tokens (accepted drafts, then the trunk's token)
// and `used_` how many the loop took. The sequence holds everything up to the step's last token,
// so plain decoding would be at n_past − (tokens not taken yet).
class DraftedTokens final : public TokenSource {
 public:
  DraftedTokens(const TokenSourceParts& parts, std::unique_ptr<SpeculativeDecoder> decoder)
      : p_(parts), decoder_(std::move(decoder)), target_(parts.sampler) {}

  void observe_prompt(std::span<const int32_t> chunk) override { decoder_->observe(chunk); }

  int32_t next() override {
    if (!started_) {
      started_ = true;
      const int32_t id = p_.sampler.sample(p_.logits);
      p_.sampler.accept(id);
      return id;
    }
    return queue_[used_++];  // a step recorded its tokens itself
  }

  int64_t position() const override {
    return p_.sequence.n_past() - static_cast<int64_t>(queue_.size() - used_);
  }

  bool advance(int32_t id) override {
    if (used_ < queue_.size()) return true;  // already evaluated by the last step
    SpeculativeStep step = decoder_->step(id, target_, p_.cancelled);
    if (step.cancelled) return false;  // nothing of this step was evaluated
    // `id` and the accepted drafts were evaluated; the trunk's token is the next `id`.
    p_.history.push_back(id);
    p_.history.insert(p_.history.end(), step.tokens.begin(), step.tokens.end() - 1);
    queue_ = std::move(step.tokens);
    used_ = 0;
    return true;
  }

  void finish() override {
    // Stopped inside a step: drop what plain decoding would not have evaluated (the stopping
    // token and the drafts after it), then write the head's pending rows so the sequence stays
    // reusable by the next request (prefix reuse, snapshots).
    if (used_ < queue_.size()) {
      decoder_->keep(used_);
      p_.history.resize(static_cast<size_t>(p_.sequence.n_past()));
    }
    decoder_->sync();
  }

  void fill_mtp_stats(MtpStats& to) const override {
    const SpeculativeStats& from = decoder_->stats();
    to.steps = from.steps;
    to.drafted = from.drafted;
    to.accepted = from.accepted;
    to.drafted_at.assign(from.drafted_at.begin(), from.drafted_at.end());
    to.accepted_at.assign(from.accepted_at.begin(), from.accepted_at.end());
    to.mean_accepted = from.mean_accepted();
    to.acceptance_rate = from.acceptance_rate();
    to.draft_ms = from.draft_ms;
    to.verify_ms = from.verify_ms;
    to.sample_ms = from.sample_ms;
  }

 private:
  TokenSourceParts p_;
  std::unique_ptr<SpeculativeDecoder> decoder_;
  SamplerTarget target_;
  bool started_ = false;
  std::vector<int32_t> queue_;
  size_t used_ = 0;
};

}  // namespace

std::unique_ptr<TokenSource> make_plain_tokens(const TokenSourceParts& parts) {
  return std::make_unique<PlainTokens>(parts);
}

std::unique_ptr<TokenSource> make_drafted_tokens(const TokenSourceParts& parts, int draft_length) {
  SpeculativeOptions options;
  options.draft_length = draft_length;
  auto decoder = std::make_unique<SpeculativeDecoder>(parts.model, parts.sequence, options);
  if (!decoder->mtp_active()) return nullptr;
  return std::make_unique<DraftedTokens>(parts, std::move(decoder));
}

}  // namespace peregrine
