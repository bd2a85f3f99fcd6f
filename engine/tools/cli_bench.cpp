// peregrine-cli bench: prefill and decode speed of a model on this machine, like llama-bench's
// pp / tg tests (each from an empty sequence), median of repetitions, plus peak memory.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <random>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli_args.h"
#include "cli_commands.h"
#include "cli_decode_commands.h"
#include "model/mtp_file.h"
#include "peregrine/error.h"
#include "peregrine/gguf.h"
#include "peregrine/model.h"
#include "peregrine/sampler.h"
#include "peregrine/speculative.h"
#include "peregrine/tokenizer.h"

namespace peregrine::cli {
namespace {

constexpr const char* kUsage =
    "usage: peregrine-cli bench --model M.gguf [-p 512] [-n 128] [-r 3] [--threads N] [--backend B] [--json]\n"
    "                           [--float-activations] [--mtp K [--acceptance 0.8,0.6,0.45]]\n"
    "  -p N        prompt tokens evaluated as one prefill (0: skip)\n"
    "  -n N        tokens decoded one at a time, each the argmax of the previous step (0: skip)\n"
    "  -r N        repetitions; the median is reported (default 3)\n"
    "  --backend B cpu, cuda or auto (default: cuda when a device exists)\n"
    "  --float-activations  float activations instead of llama.cpp-style 8-bit ones (slower)\n"
    "  --mtp K     also decode -n tokens with MTP speculative decoding, draft length K (1..8), and\n"
    "              report its measured speed, acceptance and draft / verify step times\n"
    "  --acceptance A1,A2,..  per-position acceptance probabilities: with --mtp, the decode tok/s\n"
    "              PROJECTED for that profile from the measured draft and verify step times\n"
    "Both tests start from an empty sequence; one untimed warm-up step precedes them.\n";

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

uint64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<uint64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

// Greedy MTP decoding of n_gen tokens from `first`, on an empty sequence; returns tok/s.
double mtp_decode_run(Model& model, Sequence& seq, SpeculativeDecoder& spec, Sampler& argmax, int32_t first,
                      int64_t n_gen) {
  SamplerTarget target(argmax);
  const auto t0 = Clock::now();
  std::span<const float> logits = model.evaluate(seq, std::span<const int32_t>(&first, 1), 0, false);
  spec.observe(std::span<const int32_t>(&first, 1));
  int32_t last = argmax.sample(logits);
  int64_t produced = 1;
  while (produced < n_gen) {
    const SpeculativeStep step = spec.step(last, target);
    produced += static_cast<int64_t>(step.tokens.size());
    last = step.tokens.back();  // chosen, not yet evaluated: the next step's input
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  return static_cast<double>(produced) / s;
}

// What --mtp measured and the projection for an acceptance profile (docs/mtp.md "Draft length").
struct MtpBench {
  int draft_length = 0;
  std::vector<double> runs_tok_s;
  SpeculativeStats stats;  // of the last run
  double draft_ms = 0, verify_ms = 0, sample_ms = 0;  // per head step / per verify step / per step
  std::vector<double> acceptance;
  double expected_tokens = 0, step_ms = 0, projected_tok_s = 0, projected_speedup = 0;

  void project(double plain_step_ms) {
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
};

}  // namespace

int run_bench(const std::vector<std::string>& args) {
  const std::string cmd = "bench";
  const ParsedArgs a = parse_args(cmd, args, {"--json", "--float-activations"}, {"--model", "-p", "-n", "-r", "--threads", "--mtp", "--acceptance", "--backend"});
  if (a.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (!a.positionals.empty()) throw UsageError(cmd + ": unexpected argument '" + a.positionals.front() + "'");
  const std::string& model_path = a.required(cmd, "--model");
  const int64_t n_prompt = a.value("-p") ? static_cast<int64_t>(parse_u64("-p", *a.value("-p"))) : 512;
  const int64_t n_gen = a.value("-n") ? static_cast<int64_t>(parse_u64("-n", *a.value("-n"))) : 128;
  const int64_t reps = a.value("-r") ? static_cast<int64_t>(parse_u64("-r", *a.value("-r"))) : 3;
  if (n_prompt > (1 << 20) || n_gen > (1 << 20)) throw UsageError(cmd + ": -p and -n must be at most 1048576");
  if (reps < 1 || reps > 1000) throw UsageError(cmd + ": -r must be between 1 and 1000");
  if (n_prompt == 0 && n_gen == 0) throw UsageError(cmd + ": -p and -n are both 0, nothing to measure");
  std::optional<MtpBench> mtp;
  if (auto k = a.value("--mtp")) {
    const MtpSetting setting = parse_mtp("--mtp", *k);
    if (setting.mode != MtpSetting::Mode::Fixed) throw UsageError(cmd + ": --mtp takes a draft length 1..8 here");
    if (n_gen < 2) throw UsageError(cmd + ": --mtp needs -n of at least 2");
    mtp.emplace();
    mtp->draft_length = setting.draft_length;
    if (auto acc = a.value("--acceptance")) mtp->acceptance = parse_acceptance("--acceptance", *acc);
  } else if (a.value("--acceptance")) {
    throw UsageError(cmd + ": --acceptance needs --mtp K");
  }

  ModelOptions options;
  options.n_threads = parse_threads(cmd, a);
  options.backend = parse_backend(cmd, a);
  options.activations = a.has("--float-activations") ? ActivationMode::Float : ActivationMode::Quantized8;
  // + room for the last step's drafts with --mtp.
  options.context_length = std::max<int64_t>({n_prompt, n_gen, 1}) + 1 + (mtp ? kMaxMtpDraftLength + 1 : 0);
  // llama-bench's default ubatch; with --mtp at least a whole verify pass (k + 1 positions), since
  // only passes within max_batch keep the checkpoints the rollback needs.
  options.max_batch = std::clamp<int64_t>(n_prompt, mtp ? kMaxMtpDraftLength + 1 : 1, 512);
  const GgufFile file = GgufFile::open(model_path);
  const Tokenizer tokenizer = Tokenizer::from_gguf(file);
  const auto mtp_file = open_mtp_file_for(file, model_path);  // a separate mtp-<name>.gguf, if any
  auto model = Model::load(file, options, mtp_file.get());
  const ModelConfig& c = model->config();
  Sequence seq = model->new_sequence();

  // Fixed pseudo-random prompt over the real vocabulary (the content does not change the cost).
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> pick(0, tokenizer.vocab_size() - 1);
  std::vector<int32_t> prompt(static_cast<size_t>(n_prompt));
  for (auto& t : prompt) t = pick(rng);
  Sampler argmax(SamplingParams::greedy(), static_cast<int32_t>(c.n_vocab), tokenizer.vocab_size());

  const int32_t first_token = tokenizer.im_start().value_or(0);
  model->evaluate(seq, std::span<const int32_t>(&first_token, 1), 0, false);  // warm-up

  std::vector<double> prefill_runs, decode_runs;
  for (int64_t r = 0; r < reps && n_prompt > 0; ++r) {
    seq.reset();
    const auto t0 = Clock::now();
    model->evaluate(seq, prompt, 0, false);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    prefill_runs.push_back(static_cast<double>(n_prompt) / s);
  }
  for (int64_t r = 0; r < reps && n_gen > 0; ++r) {
    seq.reset();
    int32_t token = first_token;
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < n_gen; ++i) token = argmax.sample(model->evaluate(seq, std::span<const int32_t>(&token, 1), i, false));
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    decode_runs.push_back(static_cast<double>(n_gen) / s);
  }
  if (mtp) {
    if (!c.has_mtp()) throw Error("bench --mtp: " + model_path + " has no MTP (nextn) block to draft with");
    SpeculativeOptions so;
    so.draft_length = mtp->draft_length;
    for (int64_t r = 0; r < reps; ++r) {
      seq.reset();
      SpeculativeDecoder spec(*model, seq, so);
      mtp->runs_tok_s.push_back(mtp_decode_run(*model, seq, spec, argmax, first_token, n_gen));
      mtp->stats = spec.stats();
    }
    const SpeculativeStats& st = mtp->stats;
    mtp->draft_ms = st.drafted ? st.draft_ms / static_cast<double>(st.drafted) : 0.0;
    mtp->verify_ms = st.steps ? st.verify_ms / static_cast<double>(st.steps) : 0.0;
    mtp->sample_ms = st.steps ? st.sample_ms / static_cast<double>(st.steps) : 0.0;
    if (!mtp->acceptance.empty()) mtp->project(1000.0 / median(decode_runs));
  }
  const uint64_t rss = peak_rss_bytes();

  if (a.has("--json")) {
    nlohmann::json j = {{"model", model_path},
                        {"architecture", c.arch_name},
                        {"threads", options.n_threads},
                        {"backend", std::string(model->backend().name())},
                        {"activations", options.activations == ActivationMode::Float ? "float" : "q8"},
                        {"n_prompt", n_prompt},
                        {"n_gen", n_gen},
                        {"repetitions", reps},
                        {"prefill_tok_s", n_prompt > 0 ? nlohmann::json(median(prefill_runs)) : nlohmann::json()},
                        {"decode_tok_s", n_gen > 0 ? nlohmann::json(median(decode_runs)) : nlohmann::json()},
                        {"prefill_runs_tok_s", prefill_runs},
                        {"decode_runs_tok_s", decode_runs},
                        {"peak_rss_bytes", rss}};
    if (mtp) {
      const SpeculativeStats& st = mtp->stats;
      j["mtp"] = {{"draft_length", mtp->draft_length},
                  {"decode_tok_s", median(mtp->runs_tok_s)},
                  {"decode_runs_tok_s", mtp->runs_tok_s},
                  {"steps", st.steps},
                  {"drafted", st.drafted},
                  {"accepted", st.accepted},
                  {"accepted_at", std::vector<int64_t>(st.accepted_at.begin(), st.accepted_at.begin() + mtp->draft_length)},
                  {"mean_accepted", st.mean_accepted()},
                  {"draft_ms_per_draft", mtp->draft_ms},
                  {"verify_ms_per_step", mtp->verify_ms},
                  {"sample_ms_per_step", mtp->sample_ms},
                  {"plain_step_ms", 1000.0 / median(decode_runs)}};
      if (!mtp->acceptance.empty())
        j["mtp_projection"] = {{"note", "projected from measured step times, not measured"},
                               {"acceptance", mtp->acceptance},
                               {"projected_tokens_per_step", mtp->expected_tokens},
                               {"projected_step_ms", mtp->step_ms},
                               {"projected_decode_tok_s", mtp->projected_tok_s},
                               {"projected_speedup_vs_plain", mtp->projected_speedup}};
    }
    std::fputs((j.dump(1) + "\n").c_str(), stdout);
    return 0;
  }
  fmt::print("model: {} ({}, {} layers, n_embd {}, vocab {}), {} threads\n", model_path, c.arch_name, c.n_layer,
             c.n_embd, c.n_vocab, options.n_threads);
  if (n_prompt > 0)
    fmt::print("prefill {:>6} tokens: {:10.2f} tok/s (median of {})\n", n_prompt, median(prefill_runs), reps);
  if (n_gen > 0) fmt::print("decode  {:>6} tokens: {:10.2f} tok/s (median of {})\n", n_gen, median(decode_runs), reps);
  if (mtp) {
    const SpeculativeStats& st = mtp->stats;
    fmt::print("mtp k={} {:>6} tokens: {:10.2f} tok/s (median of {}), {} of {} drafts accepted, mean accepted "
               "length {:.2f}\n",
               mtp->draft_length, n_gen, median(mtp->runs_tok_s), reps, st.accepted, st.drafted, st.mean_accepted());
    fmt::print("mtp step times: draft {:.2f} ms per head step, verify {:.2f} ms per {}-position pass, sampling {:.2f} "
               "ms per step, plain decode step {:.2f} ms\n",
               mtp->draft_ms, mtp->verify_ms, mtp->draft_length + 1, mtp->sample_ms, 1000.0 / median(decode_runs));
    if (!mtp->acceptance.empty())
      fmt::print("PROJECTED (not measured) for acceptance {}: {:.2f} tokens per step of {:.2f} ms -> {:.2f} tok/s "
                 "projected, {:.2f}x plain\n",
                 fmt::join(mtp->acceptance, ","), mtp->expected_tokens, mtp->step_ms, mtp->projected_tok_s,
                 mtp->projected_speedup);
  }
  fmt::print("peak memory (max RSS): {:.1f} MiB\n", static_cast<double>(rss) / (1024.0 * 1024.0));
  return 0;
}

}  // namespace peregrine::cli
