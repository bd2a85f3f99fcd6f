#include "decode/generation_loop.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "decode/stop_strings.h"
#include "peregrine/error.h"
#include "peregrine/log.h"
#include "peregrine/sampler.h"

namespace peregrine {

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double rate(int64_t n, double ms) { return ms > 0.0 ? static_cast<double>(n) * 1000.0 / ms : 0.0; }

// Collects the ids of text not yet handed out, so each TokenText says which ids it came from.
class TextEmitter {
 public:
  explicit TextEmitter(const GenerationCallbacks& callbacks) : callbacks_(callbacks) { ids_.reserve(64); }
  void add_id(int32_t id) { ids_.push_back(id); }
  void emit(std::string text) {
    // Held-back text waits for the ids that decide it; ids alone are not worth an event.
    if (text.empty()) return;
    if (callbacks_.on_text) callbacks_.on_text(event::TokenText{std::move(text), std::move(ids_)});
    ids_.clear();
  }
  void finish(std::string text) {
    if (text.empty() && ids_.empty()) return;
    if (callbacks_.on_text) callbacks_.on_text(event::TokenText{std::move(text), std::move(ids_)});
    ids_.clear();
  }

 private:
  const GenerationCallbacks& callbacks_;
  std::vector<int32_t> ids_;
};

}  // namespace

GenerationLoop::GenerationLoop(Model& model, Sequence& sequence, std::vector<int32_t>& history,
                               const Tokenizer& tokenizer)
    : model_(model), sequence_(sequence), history_(history), tokenizer_(tokenizer) {}

void GenerationLoop::check_prompt(std::span<const int32_t> prompt) const {
  if (prompt.empty()) throw Error("generate: the prompt has no tokens");
  const int64_t n_vocab = model_.config().n_vocab;
  for (size_t i = 0; i < prompt.size(); ++i)
    if (prompt[i] < 0 || prompt[i] >= n_vocab)
      throw Error(fmt::format("generate: prompt token {} (id {}) is outside the model's vocabulary [0, {})", i,
                              prompt[i], n_vocab));
  const int64_t n_ctx = sequence_.context_length();
  if (static_cast<int64_t>(prompt.size()) >= n_ctx)
    throw Error(fmt::format("generate: the prompt has {} tokens, the context holds {} (one more is needed to "
                            "generate)", prompt.size(), n_ctx));
}

int64_t GenerationLoop::reusable_prefix(std::span<const int32_t> prompt, bool allowed) const {
  // Reusable only when the whole history is a strict prefix of the prompt: the delta-net state
  // cannot move backwards, and at least one new token must be evaluated to get logits.
  if (!allowed || history_.empty() || history_.size() >= prompt.size()) return 0;
  if (sequence_.n_past() != static_cast<int64_t>(history_.size())) return 0;
  if (!std::equal(history_.begin(), history_.end(), prompt.begin())) return 0;
  return static_cast<int64_t>(history_.size());
}

event::Done GenerationLoop::run(std::span<const int32_t> prompt, const request::Generate& request,
                                const GenerationCallbacks& callbacks) {
  try {
    check_prompt(prompt);
    request.sampling.validate();
    if (request.max_tokens < 0) throw Error(fmt::format("generate: max_tokens {} is negative", request.max_tokens));
    return run_unchecked(prompt, request, callbacks);
  } catch (...) {
    // A half-evaluated step leaves the state unknown: start the next request from scratch.
    sequence_.reset();
    history_.clear();
    throw;
  }
}

event::Done GenerationLoop::run_unchecked(std::span<const int32_t> prompt, const request::Generate& request,
                                          const GenerationCallbacks& callbacks) {
  const Clock::time_point t_start = Clock::now();
  event::Done done;
  done.prompt_tokens = static_cast<int64_t>(prompt.size());

  const int64_t reused = reusable_prefix(prompt, request.reuse_prefix);
  if (reused == 0) {
    sequence_.reset();
    history_.clear();
  }
  done.reused_prompt_tokens = reused;
  history_.reserve(prompt.size() + static_cast<size_t>(request.max_tokens));

  auto is_cancelled = [&] { return callbacks.cancelled && callbacks.cancelled(); };
  auto finish = [&](StopReason reason) {
    done.reason = reason;
    return done;
  };

  // Prefill in steps of max_batch so a cancel does not wait for a long prompt.
  const int64_t step = std::max<int64_t>(1, model_.options().max_batch);
  std::span<const float> logits;
  const Clock::time_point t_prefill = Clock::now();
  for (int64_t i = reused; i < static_cast<int64_t>(prompt.size()); i += step) {
    if (is_cancelled()) return finish(StopReason::Cancelled);
    const int64_t n = std::min<int64_t>(step, static_cast<int64_t>(prompt.size()) - i);
    auto chunk = prompt.subspan(static_cast<size_t>(i), static_cast<size_t>(n));
    logits = model_.evaluate(sequence_, chunk, sequence_.n_past(), false);
    history_.insert(history_.end(), chunk.begin(), chunk.end());
  }
  const Clock::time_point t_prefilled = Clock::now();
  done.prefill_ms = ms_between(t_prefill, t_prefilled);
  done.prefill_tok_s = rate(done.prompt_tokens - reused, done.prefill_ms);

  const int64_t n_vocab = model_.config().n_vocab;
  Sampler sampler(request.sampling, static_cast<int32_t>(n_vocab),
                  std::min<int32_t>(tokenizer_.vocab_size(), static_cast<int32_t>(n_vocab)));
  sampler.reset(prompt);
  StreamingDecoder decoder(tokenizer_);
  StopStringMatcher stops(request.stop_strings);
  TextEmitter emitter(callbacks);

  Clock::time_point t_first{}, t_last_stats = t_start, t_step = t_prefilled;
  StopReason reason = StopReason::MaxTokens;
  bool stopped_by_text = false;
  while (done.generated_tokens < request.max_tokens) {
    const int32_t id = sampler.sample(logits.last(static_cast<size_t>(n_vocab)));
    ++done.generated_tokens;
    const Clock::time_point now = Clock::now();
    if (done.generated_tokens == 1) {
      t_first = now;
      done.ttft_ms = ms_between(t_start, now);
    }
    if (!request.ignore_eos && tokenizer_.is_end_of_generation(id)) {
      reason = StopReason::EndOfGeneration;
      break;
    }
    sampler.accept(id);
    emitter.add_id(id);
    const StopStringMatcher::Result piece = stops.push(decoder.push(id));
    emitter.emit(piece.emit);
    if (piece.stopped) {
      reason = StopReason::StopString;
      stopped_by_text = true;
      break;
    }
    if (done.generated_tokens == request.max_tokens) break;  // the last id need not be evaluated
    if (sequence_.n_past() >= sequence_.context_length()) {
      reason = StopReason::ContextFull;
      break;
    }
    if (is_cancelled()) {
      reason = StopReason::Cancelled;
      break;
    }
    logits = model_.evaluate(sequence_, std::span<const int32_t>(&id, 1), sequence_.n_past(), false);
    history_.push_back(id);

    const Clock::time_point after = Clock::now();
    if (callbacks.on_stats && (request.stats_interval.count() == 0 || after - t_last_stats >= request.stats_interval)) {
      event::StepStats stats;
      stats.generated_tokens = done.generated_tokens;
      stats.n_past = sequence_.n_past();
      stats.last_step_ms = ms_between(t_step, after);
      stats.decode_tok_s = rate(done.generated_tokens - 1, ms_between(t_first, after));
      stats.elapsed_s = ms_between(t_start, after) / 1000.0;
      callbacks.on_stats(stats);
      t_last_stats = after;
    }
    t_step = after;
  }

  // Whatever the decoder and the stop matcher still hold is released, unless a stop string cut
  // the text there (then the rest belongs to or follows the stop string).
  if (!stopped_by_text) {
    std::string tail = stops.push(decoder.flush()).emit;
    if (!stops.stopped()) tail += stops.flush();
    else reason = StopReason::StopString;
    emitter.finish(std::move(tail));
  } else {
    emitter.finish({});
  }

  if (done.generated_tokens > 0) {
    done.decode_ms = ms_between(t_first, Clock::now());
    done.decode_tok_s = rate(done.generated_tokens - 1, done.decode_ms);
  }
  log::get("decode")->debug("generated {} tokens ({}), prompt {} ({} reused), prefill {:.1f} tok/s, decode {:.1f} tok/s",
                            done.generated_tokens, stop_reason_name(reason), done.prompt_tokens, reused,
                            done.prefill_tok_s, done.decode_tok_s);
  return finish(reason);
}

}  // namespace peregrine
