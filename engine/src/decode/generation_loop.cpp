#include "decode/generation_loop.h"

#include <algorithm>

#include <fmt/format.h>

#include "decode/answer_text.h"
#include "decode/token_source.h"
#include "peregrine/error.h"
#include "peregrine/log.h"
#include "peregrine/sampler.h"
#include "peregrine/sequence_logits.h"

namespace peregrine {

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double rate(int64_t n, double ms) { return ms > 0.0 ? static_cast<double>(n) * 1000.0 / ms : 0.0; }

// MTP draft length of `auto` for sampled requests (reproducible per seed; docs/mtp.md).
constexpr int kAutoSampledDraftLength = 2;

}  // namespace

GenerationLoop::GenerationLoop(Model& model, Sequence& sequence, std::vector<int32_t>& history,
                               const Tokenizer& tokenizer)
    : model_(model), sequence_(sequence), history_(history), tokenizer_(tokenizer) {}

void GenerationLoop::check_request(std::span<const int32_t> prompt, const request::Generate& request) const {
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
  request.sampling.validate();
  if (request.max_tokens < 0) throw Error(fmt::format("generate: max_tokens {} is negative", request.max_tokens));
  if (request.mtp.mode == MtpSetting::Mode::Fixed &&
      (request.mtp.draft_length < 1 || request.mtp.draft_length > kMaxMtpDraftLength))
    throw Error(fmt::format("generate: MTP draft length {} is outside 1..{}", request.mtp.draft_length,
                            kMaxMtpDraftLength));
}

GenerationStats GenerationLoop::run(std::span<const int32_t> prompt, const request::Generate& request,
                                    const GenerationCallbacks& callbacks, ThinkSplit split) {
  try {
    check_request(prompt, request);
    t_start_ = Clock::now();
    GenerationStats stats;
    stats.prompt_tokens = static_cast<int64_t>(prompt.size());
    stats.mtp.model_has_mtp = model_.config().has_mtp();
    // A model without an MTP block decodes plainly whatever the setting (the engine says so once
    // per model when it loads).
    const bool drafts = request.mtp.mode != MtpSetting::Mode::Off && stats.mtp.model_has_mtp;
    stats.reused_prompt_tokens = prepare_sequence(prompt, request, drafts);

    const int64_t n_vocab = model_.config().n_vocab;
    Sampler sampler(request.sampling, static_cast<int32_t>(n_vocab),
                    std::min<int32_t>(tokenizer_.vocab_size(), static_cast<int32_t>(n_vocab)));
    sampler.reset(prompt);
    // The last row of the latest trunk call, read as candidates where the model keeps it.
    SequenceLogits logits(model_, sequence_, LogitRows::Trunk);
    // Made before the prompt is evaluated so the MTP head's cache follows it (docs/mtp.md).
    std::unique_ptr<TokenSource> tokens = make_token_source(request, drafts, logits, sampler, callbacks);
    stats.mtp.active = drafts && tokens;
    if (!tokens) tokens = make_plain_tokens({model_, sequence_, history_, logits, sampler, callbacks.cancelled});

    const Clock::time_point t_prefill = Clock::now();
    if (!prefill(prompt, stats.reused_prompt_tokens, *tokens, logits, callbacks)) {
      stats.stop_reason = StopReason::Cancelled;
      return stats;
    }
    stats.prefill_ms = ms_between(t_prefill, Clock::now());
    stats.prefill_tok_s = rate(stats.prompt_tokens - stats.reused_prompt_tokens, stats.prefill_ms);

    AnswerText text(tokenizer_, request.stop_strings, split, callbacks.on_text);
    StopReason reason = decode(*tokens, text, request, callbacks, stats);
    tokens->finish();
    tokens->fill_mtp_stats(stats.mtp);
    // Whatever the decoder and the stop matcher still hold is released now; its tail may
    // complete a stop string.
    if (text.finish()) reason = StopReason::StopString;
    stats.stop_reason = reason;
    stats.n_past = sequence_.n_past();
    stats.elapsed_s = ms_between(t_start_, Clock::now()) / 1000.0;

    log::get("decode")->debug("generated {} tokens ({}), prompt {} ({} reused), prefill {:.1f} tok/s, decode {:.1f} tok/s",
                              stats.generated_tokens, stop_reason_name(reason), stats.prompt_tokens,
                              stats.reused_prompt_tokens, stats.prefill_tok_s, stats.decode_tok_s);
    if (stats.mtp.active)
      log::get("mtp")->debug("{} drafts, {} accepted ({:.2f} per drafting step) in {} steps", stats.mtp.drafted,
                             stats.mtp.accepted, stats.mtp.mean_accepted, stats.mtp.steps);
    return stats;
  } catch (...) {
    // A half-evaluated step leaves the state unknown: start the next request from scratch.
    sequence_.reset();
    history_.clear();
    throw;
  }
}

int64_t GenerationLoop::prepare_sequence(std::span<const int32_t> prompt, const request::Generate& request,
                                         bool drafts) {
  // Reusable only when the whole history is a strict prefix of the prompt: the delta-net state
  // cannot move backwards, and at least one new token must be evaluated to get logits.
  int64_t reused = 0;
  if (request.reuse_prefix && !history_.empty() && history_.size() < prompt.size() &&
      sequence_.n_past() == static_cast<int64_t>(history_.size()) &&
      std::equal(history_.begin(), history_.end(), prompt.begin()))
    reused = static_cast<int64_t>(history_.size());
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
  history_.reserve(prompt.size() + static_cast<size_t>(request.max_tokens));
  return reused;
}

std::unique_ptr<TokenSource> GenerationLoop::make_token_source(const request::Generate& request, bool drafts,
                                                               SequenceLogits& logits, Sampler& sampler,
                                                               const GenerationCallbacks& callbacks) {
  if (!drafts) return nullptr;
  // Auto is adaptive for greedy requests (their output does not depend on k). Sampled output
  // does: the draws follow the steps, so an adaptive k (it depends on measured times) would make
  // a seed's output vary from run to run; auto then uses a fixed k.
  int draft_length = request.sampling.is_greedy() ? 0 : kAutoSampledDraftLength;
  if (request.mtp.mode == MtpSetting::Mode::Fixed) draft_length = request.mtp.draft_length;
  return make_drafted_tokens({model_, sequence_, history_, logits, sampler, callbacks.cancelled}, draft_length);
}

bool GenerationLoop::prefill(std::span<const int32_t> prompt, int64_t from, TokenSource& tokens,
                             SequenceLogits& logits, const GenerationCallbacks& callbacks) {
  // Chunks of max_batch, so a cancel does not wait for a long prompt.
  const int64_t step = std::max<int64_t>(1, model_.options().max_batch);
  for (int64_t i = from; i < static_cast<int64_t>(prompt.size()); i += step) {
    if (callbacks.cancelled && callbacks.cancelled()) return false;
    const int64_t n = std::min<int64_t>(step, static_cast<int64_t>(prompt.size()) - i);
    const auto chunk = prompt.subspan(static_cast<size_t>(i), static_cast<size_t>(n));
    model_.evaluate_lazy(sequence_, chunk, sequence_.n_past(), LogitsFor::LastToken);
    logits.refresh(1);
    tokens.observe_prompt(chunk);
    history_.insert(history_.end(), chunk.begin(), chunk.end());
  }
  return true;
}

StopReason GenerationLoop::decode(TokenSource& tokens, AnswerText& text, const request::Generate& request,
                                  const GenerationCallbacks& callbacks, GenerationStats& stats) {
  const auto is_cancelled = [&] { return callbacks.cancelled && callbacks.cancelled(); };
  Clock::time_point t_first{}, t_last_stats = t_start_, t_step = Clock::now();
  while (stats.generated_tokens < request.max_tokens) {
    const int32_t id = tokens.next();
    ++stats.generated_tokens;
    const Clock::time_point now = Clock::now();
    if (stats.generated_tokens == 1) {
      t_first = now;
      stats.ttft_ms = ms_between(t_start_, now);
    }
    stats.decode_ms = ms_between(t_first, now);
    stats.decode_tok_s = rate(stats.generated_tokens - 1, stats.decode_ms);
    if (!request.ignore_eos && tokenizer_.is_end_of_generation(id)) return StopReason::EndOfGeneration;
    if (text.push(id)) return StopReason::StopString;
    if (stats.generated_tokens == request.max_tokens) break;  // the last id need not be evaluated
    const int64_t position = tokens.position();
    if (position >= sequence_.context_length()) return StopReason::ContextFull;
    if (is_cancelled() || !tokens.advance(id)) return StopReason::Cancelled;

    const Clock::time_point after = Clock::now();
    stats.last_step_ms = ms_between(t_step, after);
    t_step = after;
    if (callbacks.on_stats &&
        (request.stats_interval.count() == 0 || after - t_last_stats >= request.stats_interval)) {
      stats.n_past = position + 1;  // plain decoding's position after `id` (drafts past it do not count)
      stats.elapsed_s = ms_between(t_start_, after) / 1000.0;
      tokens.fill_mtp_stats(stats.mtp);
      callbacks.on_stats(event::StepStats{stats});
      t_last_stats = after;
    }
  }
  return StopReason::MaxTokens;
}

}  // namespace peregrine
