// peregrine-cli bench: prefill and decode speed of a model on this machine, like llama-bench's
// pp / tg tests (median of repetitions), plus decode at a context depth, the cost of each MTP
// verify width, decode as a fraction of the memory roofline, peak memory, and a per-operation time
// table of one decode step (--op-profile). The measurements live in cli_bench_measure.cpp, the
// roofline's byte count in cli_bench_traffic.cpp, the profiler in backend/profile/op_profiler.h.
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <random>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli_args.h"
#include "cli_bench_measure.h"
#include "cli_bench_traffic.h"
#include "cli_commands.h"
#include "cli_output.h"
#include "cli_decode_commands.h"
#include "model/mtp_file.h"
#include "peregrine/error.h"
#include "peregrine/gguf.h"
#include "peregrine/model.h"
#include "peregrine/mtp_limits.h"
#include "peregrine/sampler.h"
#include "peregrine/speculative.h"
#include "peregrine/tokenizer.h"

namespace peregrine::cli {
namespace {

constexpr const char* kUsage =
    "usage: peregrine-cli bench --model M.gguf [-p 512] [-n 128] [-r 3] [--threads N] [--backend B] [--json]\n"
    "                           [--float-activations] [--depth N] [--verify-widths W] [--roofline-gbs X]\n"
    "                           [--mtp K [--acceptance 0.8,0.6,0.45]] [--op-profile]\n"
    "  -p N        prompt tokens evaluated as one prefill from an empty sequence (0: skip)\n"
    "  -n N        tokens decoded one at a time, each the argmax of the previous step (0: skip)\n"
    "  -r N        repetitions; the median is reported (default 3)\n"
    "  --backend B cpu, cuda or auto (default: $PEREGRINE_BACKEND, else cuda when a device exists)\n"
    "  --float-activations  float activations instead of llama.cpp-style 8-bit ones (slower)\n"
    "  --depth N   decode, --mtp and --verify-widths start after N context tokens (an untimed\n"
    "              prefill), e.g. --depth 8192 measures decode at context 8192 (default 0)\n"
    "  --verify-widths W  time the MTP verify pass for 1..W positions (W in 1..9: a trunk evaluate\n"
    "              with delta-net checkpoints, all logits, then a rollback) relative to 1 position,\n"
    "              and one MTP draft pass (evaluate_mtp of one token) when the model has an MTP block\n"
    "  --roofline-gbs X  report decode as a fraction of the memory roofline at X GB/s: bytes one\n"
    "              decode step must read (weights, MoE active experts only, delta-net states read and\n"
    "              written, KV cache at the measured context) / step time, divided by X\n"
    "  --mtp K     also decode -n tokens with MTP speculative decoding, draft length K (1..8), and\n"
    "              report its measured speed, acceptance and draft / verify step times\n"
    "  --acceptance A1,A2,..  per-position acceptance probabilities: with --mtp, the decode tok/s\n"
    "              PROJECTED for that profile from the measured draft and verify step times\n"
    "  --op-profile  after the measurements, load the model again on a profiling backend and time\n"
    "              every operation of one decode step at --depth (and of one verify pass of K+1\n"
    "              positions with --mtp K, else of W with --verify-widths W): a table of calls, ms,\n"
    "              share and GB/s per operation and weight role (CUDA: device events)\n"
    "Prefill starts from an empty sequence; one untimed warm-up step precedes the tests.\n";

constexpr int64_t kVerifyPassesPerRepetition = 5;

uint64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<uint64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

struct Roofline {
  double read_bandwidth_gbs = 0;
  double mean_context_tokens = 0;  // the KV rows a timed decode step reads, on average
  DecodeTraffic traffic;
  uint64_t bytes_per_token = 0;
  double roofline_tok_s = 0, decode_roofline_fraction = 0;
};

Roofline roofline_of(const DecodeTraffic& traffic, double gbs, int64_t depth, int64_t n_gen, double decode_tok_s) {
  Roofline r;
  r.read_bandwidth_gbs = gbs;
  r.traffic = traffic;
  r.mean_context_tokens = static_cast<double>(depth) + static_cast<double>(n_gen - 1) / 2.0;
  r.bytes_per_token = traffic.bytes_per_token(static_cast<int64_t>(r.mean_context_tokens + 0.5));
  r.roofline_tok_s = gbs * 1e9 / static_cast<double>(r.bytes_per_token);
  r.decode_roofline_fraction = decode_tok_s / r.roofline_tok_s;
  return r;
}

nlohmann::json verify_json(const VerifyWidths& v, int64_t depth, std::optional<double> plain_step_ms) {
  nlohmann::json widths = nlohmann::json::array();
  for (size_t w = 1; w <= v.ms_per_pass.size(); ++w)
    widths.push_back({{"positions", w}, {"ms_per_pass", v.ms_per_pass[w - 1]}, {"ratio_to_1_position", v.ratio_to_one(w)}});
  nlohmann::json j = {{"depth_tokens", depth}, {"passes_per_width", v.passes_per_width}, {"widths", widths}};
  j["draft_ms_per_pass"] = v.draft_ms_per_pass ? nlohmann::json(*v.draft_ms_per_pass) : nlohmann::json();
  j["draft_to_verify_1_ratio"] = v.draft_ms_per_pass ? nlohmann::json(*v.draft_ms_per_pass / v.ms_per_pass[0]) : nlohmann::json();
  j["draft_to_plain_step_ratio"] = v.draft_ms_per_pass && plain_step_ms
                                       ? nlohmann::json(*v.draft_ms_per_pass / *plain_step_ms)
                                       : nlohmann::json();
  return j;
}

nlohmann::json roofline_json(const Roofline& r, double decode_tok_s) {
  return {{"read_bandwidth_gbs", r.read_bandwidth_gbs},
          {"trunk_weight_bytes_per_token", r.traffic.trunk_weight_bytes},
          {"delta_state_bytes_per_token", r.traffic.delta_state_bytes},
          {"kv_bytes_per_context_token", r.traffic.kv_bytes_per_position},
          {"mean_context_tokens", r.mean_context_tokens},
          {"bytes_per_token", r.bytes_per_token},
          {"draft_weight_bytes_per_pass", r.traffic.draft_weight_bytes},
          {"roofline_decode_tok_s", r.roofline_tok_s},
          {"decode_tok_s", decode_tok_s},
          {"achieved_gbs", decode_tok_s * static_cast<double>(r.bytes_per_token) / 1e9},
          {"decode_roofline_fraction", r.decode_roofline_fraction}};
}

nlohmann::json op_rows_json(const OpProfile& p) {
  nlohmann::json rows = nlohmann::json::array();
  for (const OpProfileRow& r : p.rows)
    rows.push_back({{"op", r.op}, {"detail", r.detail}, {"calls", r.calls}, {"ms", r.ms}, {"share", r.share},
                    {"bytes", r.bytes}, {"gbs", r.bytes > 0 ? nlohmann::json(r.gbs()) : nlohmann::json()}});
  return rows;
}

nlohmann::json op_step_json(const OpProfileStep& s) {
  return {{"positions", s.positions}, {"wall_ms", s.wall_ms}, {"ops_ms", s.ops.total_ms}};
}

// "op_profile": the decode step's rows; "op_profile_info": how they were timed; with a verify
// pass, "op_profile_verify" holds its rows and times.
void add_op_profile_json(nlohmann::json& j, const OpProfileRun& p, int64_t depth) {
  j["op_profile"] = op_rows_json(p.decode.ops);
  nlohmann::json info = op_step_json(p.decode);
  info["depth_tokens"] = depth;
  info["timing"] = p.decode.ops.device_timing ? "device events" : "host clock around synchronize";
  j["op_profile_info"] = info;
  if (p.verify) {
    nlohmann::json v = op_step_json(*p.verify);
    v["rows"] = op_rows_json(p.verify->ops);
    j["op_profile_verify"] = v;
  }
}

void print_op_profile(std::string_view what, const OpProfileStep& s, int64_t depth) {
  fmt::print("op profile of {} ({} position{}) at context depth {}, timed with {}: {:.3f} ms in operations, "
             "{:.3f} ms wall while profiled\n{}",
             what, s.positions, s.positions == 1 ? "" : "s", depth,
             s.ops.device_timing ? "device events" : "the host clock", s.ops.total_ms, s.wall_ms,
             format_op_profile(s.ops));
}

}  // namespace

int run_bench(const std::vector<std::string>& args) {
  const std::string cmd = "bench";
  const ParsedArgs a = parse_args(cmd, args, {"--json", "--float-activations", "--op-profile"},
                                  {"--model", "-p", "-n", "-r", "--threads", "--mtp", "--acceptance", "--backend",
                                   "--depth", "--verify-widths", "--roofline-gbs"});
  if (a.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (!a.positionals.empty()) throw UsageError(cmd + ": unexpected argument '" + a.positionals.front() + "'");
  const std::string& model_path = a.required(cmd, "--model");
  const int64_t n_prompt = a.value("-p") ? static_cast<int64_t>(parse_u64("-p", *a.value("-p"))) : 512;
  const int64_t n_gen = a.value("-n") ? static_cast<int64_t>(parse_u64("-n", *a.value("-n"))) : 128;
  const int64_t reps = a.value("-r") ? static_cast<int64_t>(parse_u64("-r", *a.value("-r"))) : 3;
  const int64_t depth = a.value("--depth") ? static_cast<int64_t>(parse_u64("--depth", *a.value("--depth"))) : 0;
  const int verify_width =
      a.value("--verify-widths") ? static_cast<int>(parse_u64("--verify-widths", *a.value("--verify-widths"))) : 0;
  if (n_prompt > (1 << 20) || n_gen > (1 << 20) || depth > (1 << 20))
    throw UsageError(cmd + ": -p, -n and --depth must be at most 1048576");
  if (reps < 1 || reps > 1000) throw UsageError(cmd + ": -r must be between 1 and 1000");
  if (a.value("--verify-widths") && (verify_width < 1 || verify_width > kMaxVerifyTokens))
    throw UsageError(fmt::format("{}: --verify-widths must be between 1 and {}", cmd, kMaxVerifyTokens));
  if (n_prompt == 0 && n_gen == 0 && verify_width == 0)
    throw UsageError(cmd + ": -p and -n are both 0 and no --verify-widths, nothing to measure");
  std::optional<double> roofline_gbs;
  if (auto x = a.value("--roofline-gbs")) {
    roofline_gbs = parse_float("--roofline-gbs", *x);
    if (*roofline_gbs <= 0) throw UsageError(cmd + ": --roofline-gbs must be positive");
    if (n_gen == 0) throw UsageError(cmd + ": --roofline-gbs needs decode (-n > 0)");
  }
  std::optional<MtpBench> mtp;
  if (auto k = a.value("--mtp")) {
    const MtpSetting setting = parse_mtp("--mtp", *k);
    if (setting.mode != MtpSetting::Mode::Fixed)
      throw UsageError(fmt::format("{}: --mtp takes a draft length 1..{} here", cmd, kMaxMtpDraftLength));
    if (n_gen < 2) throw UsageError(cmd + ": --mtp needs -n of at least 2");
    mtp.emplace();
    mtp->draft_length = setting.draft_length;
    if (auto acc = a.value("--acceptance")) mtp->acceptance = parse_acceptance("--acceptance", *acc);
  } else if (a.value("--acceptance")) {
    throw UsageError(cmd + ": --acceptance needs --mtp K");
  }
  const int64_t verify_passes = kVerifyPassesPerRepetition * reps;
  const bool op_profile = a.has("--op-profile");
  const int profile_verify_width = mtp ? mtp->draft_length + 1 : verify_width;

  ModelOptions options;
  options.n_threads = parse_threads(cmd, a);
  options.backend = parse_backend(cmd, a);
  options.activations = a.has("--float-activations") ? ActivationMode::Float : ActivationMode::Quantized8;
  // Positions the decode-side tests reach after the context (+ room for the last step's drafts).
  const int64_t decode_positions =
      std::max({n_gen + (mtp ? kMaxVerifyTokens : 0),
                verify_width ? verify_widths_positions(verify_width, verify_passes) : int64_t{0},
                op_profile ? op_profile_positions(profile_verify_width) : int64_t{0}});
  options.context_length = std::max<int64_t>({n_prompt, depth + decode_positions, 1}) + 1;
  // llama-bench's default ubatch (the context fill uses it too); at least a whole verify pass
  // (k + 1 positions), since only passes within max_batch keep the checkpoints the rollback needs.
  const int64_t min_batch = std::max<int64_t>(mtp ? kMaxVerifyTokens : 1, verify_width);
  options.max_batch = std::clamp<int64_t>(std::max(n_prompt, depth), min_batch, 512);
  const GgufFile file = GgufFile::open(model_path);
  const Tokenizer tokenizer = Tokenizer::from_gguf(file);
  const auto mtp_file = open_mtp_file_for(file, model_path);  // a separate mtp-<name>.gguf, if any
  auto model = Model::load(file, options, mtp_file.get());
  const ModelConfig c = model->config();  // a copy: the model is released before --op-profile
  const std::string backend_name(model->backend().name());
  if (mtp && !c.has_mtp()) throw Error("bench --mtp: " + model_path + " has no MTP (nextn) block to draft with");
  std::optional<Sequence> seq(model->new_sequence());

  // Fixed pseudo-random tokens over the real vocabulary (the content does not change the cost):
  // the prompt and the context share them.
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> pick(0, tokenizer.vocab_size() - 1);
  std::vector<int32_t> tokens(static_cast<size_t>(std::max(n_prompt, depth)));
  for (auto& t : tokens) t = pick(rng);
  Sampler argmax(SamplingParams::greedy(), static_cast<int32_t>(c.n_vocab), tokenizer.vocab_size());

  const int32_t first_token = tokenizer.im_start().value_or(0);
  model->evaluate(*seq, std::span<const int32_t>(&first_token, 1), 0, LogitsFor::LastToken);  // warm-up

  const BenchSetup setup{*model, *seq, argmax, std::span<const int32_t>(tokens.data(), static_cast<size_t>(depth)),
                         first_token, reps};
  const std::vector<double> prefill_runs =
      measure_prefill(setup, std::span<const int32_t>(tokens.data(), static_cast<size_t>(n_prompt)));
  const std::vector<double> decode_runs = measure_decode(setup, n_gen);
  const double decode_tok_s = median(decode_runs);
  const std::optional<double> plain_step_ms = n_gen > 0 ? std::optional<double>(1000.0 / decode_tok_s) : std::nullopt;
  if (mtp) {
    measure_mtp(setup, n_gen, *mtp);
    if (!mtp->acceptance.empty()) mtp->project(*plain_step_ms);
  }
  std::optional<VerifyWidths> verify;
  if (verify_width > 0) verify = measure_verify_widths(setup, verify_width, verify_passes);
  std::optional<Roofline> roofline;
  if (roofline_gbs)
    roofline = roofline_of(decode_traffic(c, file.tensors(), mtp_file ? &mtp_file->tensors() : nullptr, options.kv_type),
                           *roofline_gbs, depth, n_gen, decode_tok_s);
  std::optional<OpProfileRun> profile;
  if (op_profile) {
    // Released first, so that a GPU holds one copy of the weights at a time.
    seq.reset();
    model.reset();
    profile = measure_op_profile(file, mtp_file.get(), options,
                                 std::span<const int32_t>(tokens.data(), static_cast<size_t>(depth)), first_token,
                                 profile_verify_width);
  }
  const uint64_t rss = peak_rss_bytes();

  if (a.has("--json")) {
    nlohmann::json j = {{"model", model_path},
                        {"architecture", c.arch_name},
                        {"threads", options.n_threads},
                        {"backend", backend_name},
                        {"activations", options.activations == ActivationMode::Float ? "float" : "q8"},
                        {"n_prompt", n_prompt},
                        {"n_gen", n_gen},
                        {"depth_tokens", depth},
                        {"repetitions", reps},
                        {"prefill_tok_s", n_prompt > 0 ? nlohmann::json(median(prefill_runs)) : nlohmann::json()},
                        {"decode_tok_s", n_gen > 0 ? nlohmann::json(decode_tok_s) : nlohmann::json()},
                        {"decode_ms_per_token", plain_step_ms ? nlohmann::json(*plain_step_ms) : nlohmann::json()},
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
                  {"plain_step_ms", *plain_step_ms}};
      if (!mtp->acceptance.empty())
        j["mtp_projection"] = {{"note", "projected from measured step times, not measured"},
                               {"acceptance", mtp->acceptance},
                               {"projected_tokens_per_step", mtp->expected_tokens},
                               {"projected_step_ms", mtp->step_ms},
                               {"projected_decode_tok_s", mtp->projected_tok_s},
                               {"projected_speedup_vs_plain", mtp->projected_speedup}};
    }
    if (verify) j["verify"] = verify_json(*verify, depth, plain_step_ms);
    if (roofline) j["roofline"] = roofline_json(*roofline, decode_tok_s);
    if (profile) add_op_profile_json(j, *profile, depth);
    write_stdout(j.dump(1) + "\n");
    return 0;
  }
  fmt::print("model: {} ({}, {} layers, n_embd {}, vocab {}), {} threads, {} backend\n", model_path, c.arch_name,
             c.n_layer, c.n_embd, c.n_vocab, options.n_threads, backend_name);
  if (n_prompt > 0)
    fmt::print("prefill {:>6} tokens: {:10.2f} tok/s (median of {})\n", n_prompt, median(prefill_runs), reps);
  if (n_gen > 0)
    fmt::print("decode  {:>6} tokens: {:10.2f} tok/s (median of {}) at context depth {}\n", n_gen, decode_tok_s, reps,
               depth);
  if (mtp) {
    const SpeculativeStats& st = mtp->stats;
    fmt::print("mtp k={} {:>6} tokens: {:10.2f} tok/s (median of {}), {} of {} drafts accepted, mean accepted "
               "length {:.2f}\n",
               mtp->draft_length, n_gen, median(mtp->runs_tok_s), reps, st.accepted, st.drafted, st.mean_accepted());
    fmt::print("mtp step times: draft {:.2f} ms per head step, verify {:.2f} ms per {}-position pass, sampling {:.2f} "
               "ms per step, plain decode step {:.2f} ms\n",
               mtp->draft_ms, mtp->verify_ms, mtp->draft_length + 1, mtp->sample_ms, *plain_step_ms);
    if (!mtp->acceptance.empty())
      fmt::print("PROJECTED (not measured) for acceptance {}: {:.2f} tokens per step of {:.2f} ms -> {:.2f} tok/s "
                 "projected, {:.2f}x plain\n",
                 fmt::join(mtp->acceptance, ","), mtp->expected_tokens, mtp->step_ms, mtp->projected_tok_s,
                 mtp->projected_speedup);
  }
  if (verify) {
    for (size_t w = 1; w <= verify->ms_per_pass.size(); ++w)
      fmt::print("verify {} position{}: {:8.3f} ms per pass = {:.2f}x one position (median of {})\n", w,
                 w == 1 ? " " : "s", verify->ms_per_pass[w - 1], verify->ratio_to_one(w), verify->passes_per_width);
    if (verify->draft_ms_per_pass)
      fmt::print("mtp draft pass: {:.3f} ms = {:.3f}x a 1-position verify pass\n", *verify->draft_ms_per_pass,
                 *verify->draft_ms_per_pass / verify->ms_per_pass[0]);
  }
  if (roofline)
    fmt::print("roofline at {:.1f} GB/s: {:.3f} GB per token (weights {:.3f}, delta-net states {:.3f}, KV {:.3f}) -> "
               "{:.1f} tok/s bound; decode reaches {:.1f}% of it\n",
               roofline->read_bandwidth_gbs, roofline->bytes_per_token / 1e9, roofline->traffic.trunk_weight_bytes / 1e9,
               roofline->traffic.delta_state_bytes / 1e9,
               (roofline->bytes_per_token - roofline->traffic.trunk_weight_bytes - roofline->traffic.delta_state_bytes) / 1e9,
               roofline->roofline_tok_s, 100.0 * roofline->decode_roofline_fraction);
  if (profile) {
    print_op_profile("one decode step", profile->decode, depth);
    if (profile->verify) print_op_profile("one verify pass", *profile->verify, depth);
  }
  fmt::print("peak memory (max RSS): {:.1f} MiB\n", static_cast<double>(rss) / (1024.0 * 1024.0));
  return 0;
}

}  // namespace peregrine::cli
