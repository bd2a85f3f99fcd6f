// peregrine-cli bench: prefill and decode speed of a model on this machine, like llama-bench's
// pp / tg tests (each from an empty sequence), median of repetitions, plus peak memory.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_args.h"
#include "cli_commands.h"
#include "cli_decode_commands.h"
#include "peregrine/error.h"
#include "peregrine/gguf.h"
#include "peregrine/model.h"
#include "peregrine/sampler.h"
#include "peregrine/tokenizer.h"

namespace peregrine::cli {
namespace {

constexpr const char* kUsage =
    "usage: peregrine-cli bench --model M.gguf [-p 512] [-n 128] [-r 3] [--threads N] [--json]\n"
    "  -p N        prompt tokens evaluated as one prefill (0: skip)\n"
    "  -n N        tokens decoded one at a time, each the argmax of the previous step (0: skip)\n"
    "  -r N        repetitions; the median is reported (default 3)\n"
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

}  // namespace

int run_bench(const std::vector<std::string>& args) {
  const std::string cmd = "bench";
  const ParsedArgs a = parse_args(cmd, args, {"--json"}, {"--model", "-p", "-n", "-r", "--threads"});
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

  ModelOptions options;
  options.n_threads = parse_threads(cmd, a);
  options.context_length = std::max<int64_t>({n_prompt, n_gen, 1}) + 1;
  options.max_batch = std::clamp<int64_t>(n_prompt, 1, 512);  // llama-bench's default ubatch
  const GgufFile file = GgufFile::open(model_path);
  const Tokenizer tokenizer = Tokenizer::from_gguf(file);
  auto model = Model::load(file, options);
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
  const uint64_t rss = peak_rss_bytes();

  if (a.has("--json")) {
    nlohmann::json j = {{"model", model_path},
                        {"architecture", c.arch_name},
                        {"threads", options.n_threads},
                        {"n_prompt", n_prompt},
                        {"n_gen", n_gen},
                        {"repetitions", reps},
                        {"prefill_tok_s", n_prompt > 0 ? nlohmann::json(median(prefill_runs)) : nlohmann::json()},
                        {"decode_tok_s", n_gen > 0 ? nlohmann::json(median(decode_runs)) : nlohmann::json()},
                        {"prefill_runs_tok_s", prefill_runs},
                        {"decode_runs_tok_s", decode_runs},
                        {"peak_rss_bytes", rss}};
    std::fputs((j.dump(1) + "\n").c_str(), stdout);
    return 0;
  }
  fmt::print("model: {} ({}, {} layers, n_embd {}, vocab {}), {} threads\n", model_path, c.arch_name, c.n_layer,
             c.n_embd, c.n_vocab, options.n_threads);
  if (n_prompt > 0)
    fmt::print("prefill {:>6} tokens: {:10.2f} tok/s (median of {})\n", n_prompt, median(prefill_runs), reps);
  if (n_gen > 0) fmt::print("decode  {:>6} tokens: {:10.2f} tok/s (median of {})\n", n_gen, median(decode_runs), reps);
  fmt::print("peak memory (max RSS): {:.1f} MiB\n", static_cast<double>(rss) / (1024.0 * 1024.0));
  return 0;
}

}  // namespace peregrine::cli
