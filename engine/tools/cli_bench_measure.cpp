#include "cli_bench_measure.h"

#include <algorithm>
#include <chrono>

#include "peregrine/backend.h"
#include "peregrine/sequence_logits.h"

namespace peregrine::cli {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// Evaluates the context from an empty sequence in max_batch chunks (untimed), reporting each chunk
// to the speculative decoder when there is one (its head's cache follows the trunk).
void fill_context(Model& model, Sequence& seq, std::span<const int32_t> context, SpeculativeDecoder* spec) {
  seq.reset();
  const int64_t chunk = std::max<int64_t>(1, model.options().max_batch);
  const int64_t n = static_cast<int64_t>(context.size());
  for (int64_t at = 0; at < n; at += chunk) {
    const auto part = context.subspan(static_cast<size_t>(at), static_cast<size_t>(std::min(chunk, n - at)));
    model.evaluate(seq, part, at, LogitsFor::LastToken);
    if (spec) spec->observe(part);
  }
}

void fill_context(const BenchSetup& s, SpeculativeDecoder* spec) { fill_context(s.model, s.seq, s.context, spec); }

// Untimed decode steps before the profiled one: a device backend may grow scratch or pick
// kernels on its first steps.
constexpr int64_t kOpProfileWarmupSteps = 2;

}  // namespace

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

std::vector<double> measure_prefill(const BenchSetup& s, std::span<const int32_t> prompt) {
  std::vector<double> runs;
  for (int64_t r = 0; r < s.repetitions && !prompt.empty(); ++r) {
    s.seq.reset();
    const auto t0 = Clock::now();
    s.model.evaluate(s.seq, prompt, 0, LogitsFor::LastToken);
    runs.push_back(static_cast<double>(prompt.size()) * 1000.0 / ms_since(t0));
  }
  return runs;
}

std::vector<double> measure_decode(const BenchSetup& s, int64_t n_gen) {
  std::vector<double> runs;
  for (int64_t r = 0; r < s.repetitions && n_gen > 0; ++r) {
    fill_context(s, nullptr);
    const int64_t start = s.seq.n_past();
    int32_t token = s.first_token;
    // As the generation loop decodes: logits stay where the backend computed them and the
    // sampler reads candidates (the argmax) from there.
    SequenceLogits logits(s.model, s.seq, LogitRows::Trunk);
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < n_gen; ++i) {
      s.model.evaluate_lazy(s.seq, std::span<const int32_t>(&token, 1), start + i, LogitsFor::LastToken);
      logits.refresh(1);
      token = s.argmax.sample(logits);
    }
    runs.push_back(static_cast<double>(n_gen) * 1000.0 / ms_since(t0));
  }
  return runs;
}

void MtpBench::project(double plain_step_ms) {
  // E(k) = 1 + sum_i prod_{j<=i} a_j (positions beyond the profile accept nothing).
  double chain = 1.0;
  expected_tokens = 1.0;
  for (int i = 0; i < draft_length; ++i) {
    chain *= i < static_cast<int>(acceptance.size()) ? acceptance[static_cast<size_t>(i)] : 0.0;
    expected_tokens += chain;
  }
  step_ms = draft_length * draft_ms + verify_ms + sample_ms;
  projected_tok_s = step_ms > 0 ? 1000.0 * expected_tokens / step_ms : 0.0;
  projected_speedup = plain_step_ms > 0 ? projected_tok_s * plain_step_ms / 1000.0 : 0.0;
}

void measure_mtp(const BenchSetup& s, int64_t n_gen, MtpBench& mtp) {
  SpeculativeOptions options;
  options.draft_length = mtp.draft_length;
  SamplerTarget target(s.argmax);
  for (int64_t r = 0; r < s.repetitions; ++r) {
    s.seq.reset();
    SpeculativeDecoder spec(s.model, s.seq, options);
    fill_context(s, &spec);
    int32_t last = s.first_token;  // chosen, not yet evaluated: each step's input
    int64_t produced = 0;
    const auto t0 = Clock::now();
    while (produced < n_gen) {
      const SpeculativeStep step = spec.step(last, target);
      produced += static_cast<int64_t>(step.tokens.size());
      last = step.tokens.back();
    }
    mtp.runs_tok_s.push_back(static_cast<double>(produced) * 1000.0 / ms_since(t0));
    mtp.stats = spec.stats();
  }
  const SpeculativeStats& st = mtp.stats;
  mtp.draft_ms = st.drafted ? st.draft_ms / static_cast<double>(st.drafted) : 0.0;
  mtp.verify_ms = st.steps ? st.verify_ms / static_cast<double>(st.steps) : 0.0;
  mtp.sample_ms = st.steps ? st.sample_ms / static_cast<double>(st.steps) : 0.0;
}

int64_t verify_widths_positions(int max_width, int64_t passes_per_width) {
  // Each pass (the warm-up included) keeps one position; the widest pass holds max_width at once.
  return static_cast<int64_t>(max_width) * (passes_per_width + 1) + max_width;
}

VerifyWidths measure_verify_widths(const BenchSetup& s, int max_width, int64_t passes_per_width) {
  VerifyWidths out;
  out.passes_per_width = passes_per_width;
  const bool has_mtp = s.model.config().has_mtp();
  {
    // With an MTP block the decoder fills the head's cache over the context too, so the draft
    // pass below attends over the same depth as the trunk.
    s.seq.reset();
    std::optional<SpeculativeDecoder> spec;
    if (has_mtp) spec.emplace(s.model, s.seq, SpeculativeOptions{});
    fill_context(s, spec ? &*spec : nullptr);
  }
  s.seq.set_delta_checkpoints(max_width);
  std::vector<int32_t> batch(static_cast<size_t>(max_width));
  for (size_t i = 0; i < batch.size(); ++i) batch[i] = s.context.empty() ? s.first_token : s.context[i % s.context.size()];
  batch[0] = s.first_token;

  // A pass is what the speculative decoder does with it: evaluate the rows, leave the logits on
  // the backend, take every row's argmax (one candidate call), roll back.
  SequenceLogits logits(s.model, s.seq, LogitRows::Trunk);
  auto choose_all = [&](int64_t rows) {
    logits.refresh(rows);
    for (int64_t r = 0; r < rows; ++r) {
      logits.select(r);
      s.argmax.sample(logits);
    }
  };
  for (int w = 1; w <= max_width; ++w) {
    const std::span<const int32_t> tokens(batch.data(), static_cast<size_t>(w));
    std::vector<double> samples;
    for (int64_t pass = 0; pass <= passes_per_width; ++pass) {  // pass 0: warm-up (a GPU may capture a graph)
      const int64_t at = s.seq.n_past();
      const auto t0 = Clock::now();
      s.model.evaluate_lazy(s.seq, tokens, at, w > 1 ? LogitsFor::EveryToken : LogitsFor::LastToken);
      choose_all(w);
      if (w > 1) s.model.rollback(s.seq, at + 1);
      const double ms = ms_since(t0);
      if (pass > 0) samples.push_back(ms);
    }
    out.ms_per_pass.push_back(median(samples));
  }
  s.seq.set_delta_checkpoints(0);

  if (has_mtp) {
    const int64_t n_embd = s.model.config().n_embd;
    const std::span<const float> hidden = s.seq.hidden();
    std::vector<float> row(hidden.end() - n_embd, hidden.end());
    const int64_t at = s.seq.mtp_n_past();  // rewritten by every pass: same depth each time
    std::vector<double> samples;
    SequenceLogits draft_logits(s.model, s.seq, LogitRows::Mtp);
    for (int64_t pass = 0; pass <= passes_per_width; ++pass) {
      const auto t0 = Clock::now();
      s.model.evaluate_mtp_lazy(s.seq, std::span<const int32_t>(&s.first_token, 1), row, at, LogitsFor::LastToken);
      draft_logits.refresh(1);
      s.argmax.sample(draft_logits);
      const double ms = ms_since(t0);
      if (pass > 0) samples.push_back(ms);
    }
    out.draft_ms_per_pass = median(samples);
  }
  return out;
}

int64_t op_profile_positions(int verify_width) {
  // Warm-up steps and the profiled step; then a warm-up and a profiled verify pass, each rolled
  // back to one position (a 1-position pass keeps its position).
  return kOpProfileWarmupSteps + 1 + (verify_width > 0 ? 1 + verify_width : 0);
}

OpProfileRun measure_op_profile(const GgufFile& file, const GgufFile* mtp_file, const ModelOptions& options,
                                std::span<const int32_t> context, int32_t first_token, int verify_width) {
  auto owned = std::make_unique<ProfilingBackend>(make_backend({.kind = options.backend,
                                                                .n_threads = options.n_threads,
                                                                .activations = options.activations,
                                                                .cuda_device = options.cuda_device}));
  ProfilingBackend& profiler = *owned;
  auto model = Model::load(file, options, mtp_file, std::move(owned));
  Sequence seq = model->new_sequence();
  fill_context(*model, seq, context, nullptr);

  // The input tokens do not change the cost of a step: every step feeds first_token.
  const std::span<const int32_t> one(&first_token, 1);
  auto profiled = [&](int64_t positions, auto&& step) {
    profiler.clear();
    profiler.set_enabled(true);
    const auto t0 = Clock::now();
    step();
    const double wall = ms_since(t0);
    profiler.set_enabled(false);
    return OpProfileStep{positions, wall, profiler.report()};
  };

  OpProfileRun run;
  // Steps as decoding runs them: logits left on the backend, the argmax selected there.
  Sampler argmax(SamplingParams::greedy(), static_cast<int32_t>(model->config().n_vocab),
                 static_cast<int32_t>(model->config().n_vocab));
  SequenceLogits logits(*model, seq, LogitRows::Trunk);
  auto decode_step = [&] {
    model->evaluate_lazy(seq, one, seq.n_past(), LogitsFor::LastToken);
    logits.refresh(1);
    argmax.sample(logits);
  };
  for (int64_t i = 0; i < kOpProfileWarmupSteps; ++i) decode_step();
  run.decode = profiled(1, decode_step);

  if (verify_width > 0) {
    seq.set_delta_checkpoints(verify_width);
    const std::vector<int32_t> tokens(static_cast<size_t>(verify_width), first_token);
    auto verify_pass = [&] {
      const int64_t at = seq.n_past();
      model->evaluate_lazy(seq, tokens, at, verify_width > 1 ? LogitsFor::EveryToken : LogitsFor::LastToken);
      logits.refresh(verify_width);
      for (int64_t r = 0; r < verify_width; ++r) {
        logits.select(r);
        argmax.sample(logits);
      }
      if (verify_width > 1) model->rollback(seq, at + 1);
    };
    verify_pass();  // warm-up (a device backend may size its all-logits buffer here)
    run.verify = profiled(verify_width, verify_pass);
    seq.set_delta_checkpoints(0);
  }
  return run;
}

}  // namespace peregrine::cli
