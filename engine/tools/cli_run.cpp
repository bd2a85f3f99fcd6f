// peregrine-cli run: generate from a prompt through the engine thread, text to stdout, stats to stderr.
#include <cstdio>
#include <future>
#include <optional>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_args.h"
#include "cli_commands.h"
#include "cli_output.h"
#include "cli_decode_commands.h"
#include "peregrine/engine.h"
#include "peregrine/error.h"

namespace peregrine::cli {
namespace {

constexpr const char* kUsage =
    "usage: peregrine-cli run --model M.gguf (--prompt TEXT | --prompt-tokens 1,2,3) [--chat] [--no-think]\n"
    "                         [--max-tokens N] [--temp T] [--seed S] [--threads N] [--backend B] [--ctx N] [--ids]\n"
    "                         [--profile greedy|thinking|coding|instruct] [--top-k K] [--top-p P] [--min-p P]\n"
    "                         [--presence-penalty X] [--repeat-penalty X] [--stop TEXT] [--ignore-eos]\n"
    "                         [--float-activations] [--mtp K|auto|off]\n"
    "Streams the generated text to stdout and the statistics to stderr.\n"
    "  --prompt TEXT         text, special tokens (<|im_start|>, ...) recognised\n"
    "  --prompt-tokens IDS   the prompt as token ids instead of text\n"
    "  --chat                render --prompt as a user message with the model's chat template\n"
    "  --no-think            with --chat: the generation prompt closes an empty think block\n"
    "  --ids                 print the generated ids as one JSON array instead of the text\n"
    "  --max-tokens N        default 256\n"
    "  sampling              greedy unless --temp or --profile is given; --profile sets the Qwen 3.6\n"
    "                        model card values, the other options override single values; --seed default 0\n"
    "  --ctx N               context length to allocate (default 4096)\n"
    "  --mtp K|auto|off      speculative decoding with the model's MTP head: draft length 1..8, adaptive\n"
    "                        (auto, the default) or off; the output is the same, only the speed differs\n";

SamplingParams sampling_from(const std::string& cmd, const ParsedArgs& a) {
  SamplingParams s = SamplingParams::greedy();
  if (auto name = a.value("--profile")) {
    auto p = SamplingParams::profile(*name);
    if (!p) throw UsageError(cmd + ": --profile must be greedy, thinking, coding or instruct");
    s = *p;
  }
  if (auto v = a.value("--temp")) s.temperature = parse_float("--temp", *v);
  if (auto v = a.value("--top-k")) s.top_k = static_cast<int32_t>(parse_u64("--top-k", *v));
  if (auto v = a.value("--top-p")) s.top_p = parse_float("--top-p", *v);
  if (auto v = a.value("--min-p")) s.min_p = parse_float("--min-p", *v);
  if (auto v = a.value("--presence-penalty")) s.presence_penalty = parse_float("--presence-penalty", *v);
  if (auto v = a.value("--repeat-penalty")) s.repetition_penalty = parse_float("--repeat-penalty", *v);
  if (auto v = a.value("--seed")) s.seed = parse_u64("--seed", *v);
  try {
    s.validate();
  } catch (const Error& e) {
    throw UsageError(cmd + ": " + e.what());
  }
  return s;
}

request::Generate request_from(const std::string& cmd, const ParsedArgs& a) {
  const auto text = a.value("--prompt");
  const auto ids = a.value("--prompt-tokens");
  if (text.has_value() == ids.has_value()) throw UsageError(cmd + ": give exactly one of --prompt and --prompt-tokens");
  if (a.has("--chat") && ids) throw UsageError(cmd + ": --chat needs --prompt TEXT, not token ids");
  if (a.has("--no-think") && !a.has("--chat")) throw UsageError(cmd + ": --no-think only applies with --chat");

  request::Generate g;
  if (ids) {
    g.prompt = parse_id_list("--prompt-tokens", *ids);
  } else if (a.has("--chat")) {
    ChatPrompt chat;
    ChatMessage user;
    user.role = "user";
    user.content = *text;
    chat.messages.push_back(std::move(user));
    chat.options.enable_thinking = !a.has("--no-think");
    g.prompt = std::move(chat);
  } else {
    g.prompt = *text;
  }
  g.max_tokens = 256;
  if (auto v = a.value("--max-tokens")) {
    const uint64_t n = parse_u64("--max-tokens", *v);
    if (n > INT32_MAX) throw UsageError(cmd + ": --max-tokens is too large");
    g.max_tokens = static_cast<int32_t>(n);
  }
  g.sampling = sampling_from(cmd, a);
  if (auto stop = a.value("--stop")) g.stop_strings.push_back(*stop);
  g.ignore_eos = a.has("--ignore-eos");
  g.stats_interval = std::chrono::milliseconds(1000);
  if (auto mtp = a.value("--mtp")) g.mtp = parse_mtp("--mtp", *mtp);
  return g;
}

// Waits on the engine's queue for the closing event of `id`, handing the others to `on_event`.
template <class F>
Event wait_closing(Engine& engine, RequestId id, F&& on_event) {
  for (;;) {
    std::optional<Event> e = engine.wait(std::chrono::milliseconds(1000));
    if (!e || e->request != id) continue;
    if (e->is<event::Done>() || e->is<event::Error>() || e->is<event::ModelLoaded>() || e->is<event::Unloaded>())
      return std::move(*e);
    on_event(*e);
  }
}

// The answer on stdout as it streams. The terminal has no other way to set the model's thinking
// apart, so it is shown between <think> and </think> lines, as the model wrote it.
class ThinkingPrinter {
 public:
  void print(const event::TokenText& t) {
    if (!t.thinking.empty()) {
      if (!in_thinking_) write("<think>\n");
      in_thinking_ = true;
      write(t.thinking);
    }
    if (!t.text.empty()) {
      close();
      write(t.text);
    }
  }
  void finish() { close(); }

 private:
  void close() {
    if (in_thinking_) write("\n</think>\n\n");
    in_thinking_ = false;
  }
  // Throws at the first write that fails: the engine stops generating for an output that is lost.
  static void write(std::string_view text) {
    write_stdout(text);
    flush_stdout();
  }
  bool in_thinking_ = false;
};

}  // namespace

int run_run(const std::vector<std::string>& args) {
  const std::string cmd = "run";
  const ParsedArgs a = parse_args(cmd, args, {"--chat", "--ids", "--no-think", "--ignore-eos", "--float-activations"},
                                  {"--model", "--prompt", "--prompt-tokens", "--max-tokens", "--temp", "--seed",
                                   "--threads", "--backend", "--ctx", "--top-k", "--top-p", "--min-p", "--presence-penalty",
                                   "--repeat-penalty", "--profile", "--stop", "--mtp"});
  if (a.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (!a.positionals.empty()) throw UsageError(cmd + ": unexpected argument '" + a.positionals.front() + "'");
  const std::string& model_path = a.required(cmd, "--model");
  request::Generate gen = request_from(cmd, a);
  ModelOptions options;
  options.n_threads = parse_threads(cmd, a);
  options.backend = parse_backend(cmd, a);
  // Default: 8-bit activations like llama.cpp's CPU backend (fast); the flag keeps them in float.
  options.activations = a.has("--float-activations") ? ActivationMode::Float : ActivationMode::Quantized8;
  if (auto ctx = a.value("--ctx")) {
    const uint64_t n = parse_u64("--ctx", *ctx);
    if (n < 2 || n > (uint64_t{1} << 24)) throw UsageError(cmd + ": --ctx must be between 2 and 16777216");
    options.context_length = static_cast<int64_t>(n);
  }

  Engine engine;
  const Event loaded = wait_closing(engine, engine.load_model(model_path, options), [](const Event&) {});
  if (const auto* err = loaded.get_if<event::Error>()) throw Error(err->message);

  const bool print_ids = a.has("--ids");
  const MtpSetting gen_mtp = gen.mtp;
  std::vector<int32_t> ids;
  ThinkingPrinter printer;
  const Event closing = wait_closing(engine, engine.generate(std::move(gen)), [&](const Event& e) {
    if (const auto* t = e.get_if<event::TokenText>()) {
      ids.insert(ids.end(), t->ids.begin(), t->ids.end());
      if (!print_ids) printer.print(*t);
    }
  });
  if (const auto* err = closing.get_if<event::Error>()) throw Error(err->message);
  if (!print_ids) printer.finish();
  const GenerationStats& done = closing.get_if<event::Done>()->stats;
  write_stdout(print_ids ? nlohmann::json(ids).dump() + "\n" : "\n");
  flush_stdout();  // before the statistics: they describe output that was written
  fmt::print(stderr,
             "prompt: {} tokens ({} reused), prefill {:.1f} tok/s, TTFT {:.1f} ms\n"
             "generated: {} tokens, decode {:.2f} tok/s, stop: {}\n",
             done.prompt_tokens, done.reused_prompt_tokens, done.prefill_tok_s, done.ttft_ms, done.generated_tokens,
             done.decode_tok_s, stop_reason_name(done.stop_reason.value_or(StopReason::MaxTokens)));
  if (done.mtp.active) {
    fmt::print(stderr,
               "mtp: {} drafts, {} accepted ({:.1f} %), mean accepted length {:.2f} in {} steps; "
               "draft {:.1f} ms, verify {:.1f} ms, sampling {:.1f} ms\n",
               done.mtp.drafted, done.mtp.accepted, 100.0 * done.mtp.acceptance_rate, done.mtp.mean_accepted,
               done.mtp.steps, done.mtp.draft_ms, done.mtp.verify_ms, done.mtp.sample_ms);
  } else if (gen_mtp.mode != MtpSetting::Mode::Off && !done.mtp.model_has_mtp) {
    fmt::print(stderr, "mtp: the model has no MTP block, decoded without drafts\n");
  }
  return 0;
}

}  // namespace peregrine::cli
