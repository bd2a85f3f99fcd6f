// One generation on the calling thread: prefill, then sample / stream / stop / evaluate until a
// stop condition. The Engine runs it on its worker thread; tests and tools may run it directly.
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "peregrine/engine.h"
#include "peregrine/model.h"
#include "peregrine/tokenizer.h"

namespace peregrine {

struct GenerationCallbacks {
  std::function<bool()> cancelled;                      // polled before every forward step
  std::function<void(event::TokenText&&)> on_text;      // may be empty
  std::function<void(const event::StepStats&)> on_stats;  // may be empty
};

class GenerationLoop {
 public:
  // `history` is the list of ids evaluated into `sequence` so far (kept in step with it, so a
  // later prompt that extends it can skip the shared prefix).
  // `no_mtp_logged` (optional) makes "the model has no MTP block" a once-per-model message: the
  // loop logs it only while the flag is false and then sets it.
  GenerationLoop(Model& model, Sequence& sequence, std::vector<int32_t>& history, const Tokenizer& tokenizer,
                 bool* no_mtp_logged = nullptr);

  // Throws peregrine::Error for a prompt that is empty, has ids outside the model's vocabulary
  // or does not fit the context; the sequence is then reset. Any other exception from the
  // model also leaves the sequence reset.
  event::Done run(std::span<const int32_t> prompt, const request::Generate& request,
                  const GenerationCallbacks& callbacks);

 private:
  event::Done run_unchecked(std::span<const int32_t> prompt, const request::Generate& request,
                            const GenerationCallbacks& callbacks);
  void check_prompt(std::span<const int32_t> prompt) const;
  int64_t reusable_prefix(std::span<const int32_t> prompt, bool allowed) const;
  bool wants_drafts(const request::Generate& request);

  Model& model_;
  Sequence& sequence_;
  std::vector<int32_t>& history_;
  const Tokenizer& tokenizer_;
  bool* no_mtp_logged_;
};

}  // namespace peregrine
