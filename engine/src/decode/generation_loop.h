// One generation on the calling thread: prefill, then sample / stream / stop / evaluate until a
// stop condition. The Engine runs it on its worker thread; tests and tools may run it directly.
//
//   prepare the sequence (reuse the evaluated prefix the prompt extends, else start over)
//   → choose the token source (plain, or MTP drafts: token_source.h)
//   → prefill the rest of the prompt in chunks
//   → decode: next token → text (answer_text.h) → stop? → advance, statistics every interval
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "decode/think_splitter.h"
#include "peregrine/engine.h"
#include "peregrine/model.h"
#include "peregrine/tokenizer.h"

namespace peregrine {

class AnswerText;
class SequenceLogits;
class TokenSource;

struct GenerationCallbacks {
  std::function<bool()> cancelled;                         // polled before every forward step
  std::function<void(event::TokenText&&)> on_text;         // may be empty
  std::function<void(const event::StepStats&)> on_stats;   // may be empty
};

class GenerationLoop {
 public:
  // `history` is the list of ids evaluated into `sequence` so far (kept in step with it, so a
  // later prompt that extends it can skip the shared prefix).
  GenerationLoop(Model& model, Sequence& sequence, std::vector<int32_t>& history, const Tokenizer& tokenizer);

  // Throws peregrine::Error for a prompt that is empty, has ids outside the model's vocabulary
  // or does not fit the context, and for invalid request values; the sequence is then reset.
  // Any other exception from the model also leaves the sequence reset. `split` says where the
  // generated text starts relative to the model's think block (the chat template decides).
  // Returns the final statistics (stop_reason set).
  GenerationStats run(std::span<const int32_t> prompt, const request::Generate& request,
                      const GenerationCallbacks& callbacks, ThinkSplit split = ThinkSplit::Off);

 private:
  using Clock = std::chrono::steady_clock;

  void check_request(std::span<const int32_t> prompt, const request::Generate& request) const;
  // Keeps the evaluated prefix the prompt extends (returns its length) or resets the sequence.
  int64_t prepare_sequence(std::span<const int32_t> prompt, const request::Generate& request, bool drafts);
  std::unique_ptr<TokenSource> make_token_source(const request::Generate& request, bool drafts,
                                                 SequenceLogits& logits, Sampler& sampler,
                                                 const GenerationCallbacks& callbacks);
  // Evaluates prompt[from..] in chunks of max_batch. False: cancelled between chunks.
  bool prefill(std::span<const int32_t> prompt, int64_t from, TokenSource& tokens, SequenceLogits& logits,
               const GenerationCallbacks& callbacks);
  StopReason decode(TokenSource& tokens, AnswerText& text, const request::Generate& request,
                    const GenerationCallbacks& callbacks, GenerationStats& stats);

  Model& model_;
  Sequence& sequence_;
  std::vector<int32_t>& history_;
  const Tokenizer& tokenizer_;
  Clock::time_point t_start_{};
};

}  // namespace peregrine
