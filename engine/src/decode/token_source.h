// TokenSource — where a generation's next tokens come from, behind one interface so the
// generation loop reads the same for both ways of decoding:
//   - PlainTokens samples one token per forward step;
//   - DraftedTokens (MTP speculative decoding, docs/mtp.md) gets several per step: the accepted
//     drafts and one token from the trunk.
// Protocol: after the prompt is evaluated (each chunk reported with observe_prompt), the loop
// repeats next() → [decides whether to go on] → advance(id); finish() once at the end.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "peregrine/generation_stats.h"
#include "peregrine/model.h"
#include "peregrine/sampler.h"
#include "peregrine/sequence_logits.h"

namespace peregrine {

class TokenSource {
 public:
  virtual ~TokenSource() = default;

  // A prompt chunk the loop has just evaluated into the sequence.
  virtual void observe_prompt(std::span<const int32_t> chunk) { (void)chunk; }
  // The next output token, recorded in the sampler (penalties).
  virtual int32_t next() = 0;
  // The position plain decoding is at: positions evaluated before the token next() returned last.
  virtual int64_t position() const = 0;
  // Makes `id` (the token next() returned last) part of the sequence, evaluating what that takes.
  // False: cancelled before anything was evaluated.
  virtual bool advance(int32_t id) = 0;
  // The loop stopped: leaves the sequence (and its id history) exactly as plain decoding would, so
  // the next request can reuse it.
  virtual void finish() {}
  // Drafting statistics so far (zero for plain decoding).
  virtual void fill_mtp_stats(MtpStats& stats) const { (void)stats; }
};

// What every source works on. `history` lists the ids evaluated into `sequence` and is kept in
// step with it; `logits` holds the row the next token is sampled from.
struct TokenSourceParts {
  Model& model;
  Sequence& sequence;
  std::vector<int32_t>& history;
  SequenceLogits& logits;
  Sampler& sampler;
  std::function<bool()> cancelled;  // polled inside a speculative step (may be empty)
};

std::unique_ptr<TokenSource> make_plain_tokens(const TokenSourceParts& parts);
// draft_length: a fixed k, or 0 for adaptive. Nullptr when the decoder cannot draft on this
// sequence (it says why in the log); the caller then decodes plainly.
std::unique_ptr<TokenSource> make_drafted_tokens(const TokenSourceParts& parts, int draft_length);

}  // namespace peregrine
