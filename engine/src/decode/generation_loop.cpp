#include "decode/generation_loop.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include <fmt/format.h>

#include "decode/stop_strings.h"
#include "peregrine/error.h"
#include "peregrine/log.h"
#include "peregrine/sampler.h"
#include "peregrine/sequence_logits.h"
#include "peregrine/speculative.h"

namespace peregrine {

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double rate(int64_t n, double ms) { return ms > 0.0 ? static_cast<double>(n) * 1000.0 / ms : 0.0; }

// MTP draft length of `auto` for sampled requests (reproducible per seed; docs/mtp.md).
constexpr int kAutoSampledDraftLength = 2;

void fill_mtp_stats(const SpeculativeStats& from, event::MtpStats& to) {
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
                               const Tokenizer& tokenizer, bool* no_mtp_logged)
    : model_(model), sequence_(sequence), history_(history), tokenizer_(tokenizer), no_mtp_logged_(no_mtp_logged) {}

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
    if (request.mtp.mode == MtpSetting::Mode::Fixed &&
        (request.mtp.draft_length < 1 || request.mtp.draft_length > kMaxMtpDraftLength))
      throw Error(fmt::format("generate: MTP draft length {} is outside 1..{}", request.mtp.draft_length,
                              kMaxMtpDraftLength));
    return run_unchecked(prompt, request, callbacks);
  } catch (...) {
    // A half-evaluated step leaves the state unknown: start the next request from scratch.
    sequence_.reset();
    history_.clear();
    throw;
  }
}

bool GenerationLoop::wants_drafts(const request::Generate& request) {
  if (request.mtp.mode == MtpSetting::Mode::Off) return false;
  if (model_.config().has_mtp()) return true;
  if (!no_mtp_logged_ || !*no_mtp_logged_)
    log::get("mtp")->info("the model has no MTP (nextn) block: decoding without speculative drafts");
  if (no_mtp_logged_) *no_mtp_logged_ = true;
  return false;
}

event::Done GenerationLoop::run_unchecked(std::span<const int32_t> prompt, const request::Generate& request,
                                          const GenerationCallbacks& callbacks) {
  const Clock::time_point t_start = Clock::now();
  event::Done done;
  done.prompt_tokens = static_cast<int64_t>(prompt.size());
  done.mtp.model_has_mtp = model_.config().has_mtp();
  const bool drafts = wants_drafts(request);

  int64_t reused = reusable_prefix(prompt, request.reuse_prefix);
  if (reused > 0 && drafts && sequence_.mtp_n_past() < reused) {
    // The prefix was decoded without the MTP head (e.g. `--mtp off`): its cache cannot be filled
    // afterwards, so re-evaluate the prompt rather than decode this request without drafts.
    log::get("mtp")->debug("the MTP head's cache ends at {} of {} reusable positions: not reusing the prefix",
                           sequence_.mtp_n_past(), reused);
    reused = 0;
  }
  if (reused == 0) {
    sequence_.reset();
    history_.clear();
  }
  done.reused_prompt_tokens = reused;
  history_.reserve(prompt.size() + static_cast<size_t>(request.max_tokens));

  // Made before the prompt is evaluated so the head's cache follows it (docs/mtp.md).
  std::optional<SpeculativeDecoder> spec;
  if (drafts) {
    SpeculativeOptions options;
    // Auto is adaptive for greedy requests (their output does not depend on k). Sampled output
    // does: the draws follow the steps, so an adaptive k (it depends on measured times) would
    // make a seed's output vary from run to run; auto then uses a fixed k.
    if (request.mtp.mode == MtpSetting::Mode::Fixed) options.draft_length = request.mtp.draft_length;
    else options.draft_length = request.sampling.is_greedy() ? 0 : kAutoSampledDraftLength;
    spec.emplace(model_, sequence_, options);
    if (!spec->mtp_active()) spec.reset();  // the decoder said why
  }
  done.mtp.active = spec.has_value();

  auto is_cancelled = [&] { return callbacks.cancelled && callbacks.cancelled(); };
  auto finish = [&](StopReason reason) {
    done.reason = reason;
    return done;
  };

  // Prefill in steps of max_batch so a cancel does not wait for a long prompt.
  const int64_t step = std::max<int64_t>(1, model_.options().max_batch);
  // The last row of the latest trunk call, read as candidates where the model keeps it.
  SequenceLogits logits(model_, sequence_, LogitRows::Trunk);
  const Clock::time_point t_prefill = Clock::now();
  for (int64_t i = reused; i < static_cast<int64_t>(prompt.size()); i += step) {
    if (is_cancelled()) return finish(StopReason::Cancelled);
    const int64_t n = std::min<int64_t>(step, static_cast<int64_t>(prompt.size()) - i);
    auto chunk = prompt.subspan(static_cast<size_t>(i), static_cast<size_t>(n));
    model_.evaluate_lazy(sequence_, chunk, sequence_.n_past(), LogitsFor::LastToken);
    logits.refresh(1);
    if (spec) spec->observe(chunk);
    history_.insert(history_.end(), chunk.begin(), chunk.end());
  }
  const Clock::time_point t_prefilled = Clock::now();
  done.prefill_ms = ms_between(t_prefill, t_prefilled);
  done.prefill_tok_s = rate(done.prompt_tokens - reused, done.prefill_ms);

  const int64_t n_vocab = model_.config().n_vocab;
  Sampler sampler(request.sampling, static_cast<int32_t>(n_vocab),
                  std::min<int32_t>(tokenizer_.vocab_size(), static_cast<int32_t>(n_vocab)));
  sampler.reset(prompt);
  std::optional<SamplerTarget> target;
  if (spec) target.emplace(sampler);
  StreamingDecoder decoder(tokenizer_);
  StopStringMatcher stops(request.stop_strings);
  TextEmitter emitter(callbacks);

  // With drafts, ids after the first come from decoder steps: `queue` holds the current step's
  // tokens (accepted drafts, then the trunk's token), `used` how many of them were taken. The
  // sequence then holds everything up to the step's last token, so the position plain decoding
  // would be at is n_past − (unused tokens).
  std::vector<int32_t> queue;
  size_t used = 0;
  auto plain_n_past = [&] { return sequence_.n_past() - static_cast<int64_t>(queue.size() - used); };

  Clock::time_point t_first{}, t_last_stats = t_start, t_step = t_prefilled;
  StopReason reason = StopReason::MaxTokens;
  bool stopped_by_text = false;
  while (done.generated_tokens < request.max_tokens) {
    const bool from_step = spec && done.generated_tokens > 0;
    const int32_t id = from_step ? queue[used++] : sampler.sample(logits);
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
    if (!from_step) sampler.accept(id);  // a step recorded its tokens itself
    emitter.add_id(id);
    const StopStringMatcher::Result piece = stops.push(decoder.push(id));
    emitter.emit(piece.emit);
    if (piece.stopped) {
      reason = StopReason::StopString;
      stopped_by_text = true;
      break;
    }
    if (done.generated_tokens == request.max_tokens) break;  // the last id need not be evaluated
    if (plain_n_past() >= sequence_.context_length()) {
      reason = StopReason::ContextFull;
      break;
    }
    if (is_cancelled()) {
      reason = StopReason::Cancelled;
      break;
    }
    if (!spec) {
      model_.evaluate_lazy(sequence_, std::span<const int32_t>(&id, 1), sequence_.n_past(), LogitsFor::LastToken);
      logits.refresh(1);
      history_.push_back(id);
    } else if (used == queue.size()) {
      SpeculativeStep s = spec->step(id, *target, callbacks.cancelled);
      if (s.cancelled) {  // nothing of this step was evaluated
        reason = StopReason::Cancelled;
        break;
      }
      history_.push_back(id);  // `id` and the accepted drafts were evaluated
      history_.insert(history_.end(), s.tokens.begin(), s.tokens.end() - 1);
      queue = std::move(s.tokens);
      used = 0;
    }

    const Clock::time_point after = Clock::now();
    if (callbacks.on_stats && (request.stats_interval.count() == 0 || after - t_last_stats >= request.stats_interval)) {
      event::StepStats stats;
      stats.generated_tokens = done.generated_tokens;
      // The position plain decoding is at after evaluating `id` (drafts past it do not count).
      stats.n_past = spec ? plain_n_past() + 1 : sequence_.n_past();
      stats.last_step_ms = ms_between(t_step, after);
      stats.decode_tok_s = rate(done.generated_tokens - 1, ms_between(t_first, after));
      stats.elapsed_s = ms_between(t_start, after) / 1000.0;
      if (spec) fill_mtp_stats(spec->stats(), stats.mtp);
      stats.mtp.model_has_mtp = done.mtp.model_has_mtp;
      stats.mtp.active = done.mtp.active;
      callbacks.on_stats(stats);
      t_last_stats = after;
    }
    t_step = after;
  }

  if (spec) {
    // Stopped inside a step: drop what plain decoding would not have evaluated (the stopping
    // token and the drafts after it), then write the head's pending rows so the sequence stays
    // reusable by the next request (prefix reuse, snapshots).
    if (used < queue.size()) {
      spec->keep(used);
      history_.resize(static_cast<size_t>(sequence_.n_past()));
    }
    spec->sync();
    fill_mtp_stats(spec->stats(), done.mtp);
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
  if (spec)
    log::get("mtp")->debug("{} drafts, {} accepted ({:.2f} per drafting step) in {} steps", done.mtp.drafted,
                           done.mtp.accepted, done.mtp.mean_accepted, done.mtp.steps);
  return finish(reason);
}

}  // namespace peregrine
