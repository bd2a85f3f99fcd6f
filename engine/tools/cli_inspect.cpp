// peregrine-cli inspect: what a GGUF model file holds, and whether it is a complete qwen35 model
// whose tokenizer loads.
#include <cstdio>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli_args.h"
#include "cli_commands.h"
#include "cli_output.h"
#include "peregrine/gguf.h"
#include "peregrine/model_config.h"
#include "peregrine/tokenizer.h"

namespace peregrine::cli {
namespace {

constexpr const char* kUsage = "usage: peregrine-cli inspect MODEL.gguf [--json]\n";

nlohmann::json config_json(const ModelConfig& c) {
  nlohmann::json j = {
      {"architecture", c.arch_name},
      {"n_vocab", c.n_vocab},
      {"n_embd", c.n_embd},
      {"n_layer", c.n_layer},
      {"n_nextn", c.n_nextn},
      {"context_length", c.context_length},
      {"rms_eps", c.rms_eps},
      {"n_head", c.n_head},
      {"n_head_kv", c.n_head_kv},
      {"head_dim", c.head_dim},
      {"n_rot", c.n_rot},
      {"rope_freq_base", c.rope_freq_base},
      {"rope_sections", c.rope_sections},
      {"ssm_conv_kernel", c.ssm_conv_kernel},
      {"ssm_state_size", c.ssm_state_size},
      {"ssm_group_count", c.ssm_group_count},
      {"ssm_time_step_rank", c.ssm_time_step_rank},
      {"ssm_inner_size", c.ssm_inner_size},
      {"full_attention_interval", c.full_attention_interval},
      {"n_ff", c.n_ff},
  };
  if (c.is_moe()) {
    j["n_expert"] = c.n_expert;
    j["n_expert_used"] = c.n_expert_used;
    j["n_ff_expert"] = c.n_ff_expert;
    j["n_ff_shared_expert"] = c.n_ff_shared_expert;
  }
  std::vector<std::string> kinds;
  for (LayerKind k : c.layer_kinds) kinds.emplace_back(layer_kind_name(k));
  j["layer_kinds"] = kinds;
  return j;
}

std::string shape_text(const std::vector<int64_t>& ne) { return fmt::format("[{}]", fmt::join(ne, ", ")); }

std::string human_bytes(uint64_t b) {
  if (b >= (1ull << 30)) return fmt::format("{:.2f} GiB", b / double(1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.2f} MiB", b / double(1ull << 20));
  if (b >= (1ull << 10)) return fmt::format("{:.2f} KiB", b / double(1ull << 10));
  return fmt::format("{} B", b);
}

// What inspect found out about one file, beyond its metadata and tensor list.
struct Findings {
  std::optional<ModelConfig> config;
  std::string config_error;
  std::vector<TensorProblem> problems;  // checked only when the config could be read
  std::optional<int32_t> vocab_size;    // of the tokenizer, when it could be built
  std::string tokenizer_error;
  uint64_t tensor_bytes = 0;
  int64_t n_params = 0;

  bool ok() const { return config && problems.empty() && vocab_size; }
};

// Builds the tokenizer as `run` does (LoadedModel::load), so that a file inspect calls valid loads.
void check_tokenizer(const GgufFile& f, Findings& findings) {
  try {
    const Tokenizer tokenizer = Tokenizer::from_gguf(f);
    if (findings.config && tokenizer.vocab_size() > findings.config->n_vocab) {
      findings.tokenizer_error = fmt::format("{}: the tokenizer has {} tokens but the LM head only {} rows",
                                             f.display_name(), tokenizer.vocab_size(), findings.config->n_vocab);
      return;
    }
    findings.vocab_size = tokenizer.vocab_size();
  } catch (const Error& e) {
    findings.tokenizer_error = e.what();
  }
}

void print_text(const GgufFile& f, const Findings& findings) {
  const std::optional<ModelConfig>& config = findings.config;
  const std::vector<TensorProblem>& problems = findings.problems;
  std::string out;
  out += fmt::format("file: {} ({} bytes, GGUF v{}, alignment {})\n", f.display_name(), f.file_size(), f.version(),
                     f.alignment());
  out += "metadata:\n";
  for (const auto& [key, value] : f.metadata())
    out += fmt::format("  {} = {}\n", key, value.to_display_string(8));
  if (config) {
    const ModelConfig& c = *config;
    out += fmt::format("architecture: {}{}\n", c.arch_name, c.name.empty() ? "" : " (" + c.name + ")");
    out += fmt::format(
        "config: n_vocab {}, n_embd {}, trunk layers {} ({} delta-net, {} full attention), context {}, eps {}\n",
        c.n_vocab, c.n_embd, c.n_layer, c.n_layer - c.n_full_attention_layers(), c.n_full_attention_layers(),
        c.context_length, c.rms_eps);
    out += fmt::format("  attention: {} heads, {} kv heads, head_dim {}, rope {} dims, sections {}, base {}\n",
                       c.n_head, c.n_head_kv, c.head_dim, c.n_rot, c.rope_sections, c.rope_freq_base);
    out += fmt::format("  delta-net: {} key heads, {} value heads, state {}, inner {}, conv kernel {}\n",
                       c.ssm_group_count, c.ssm_time_step_rank, c.ssm_state_size, c.ssm_inner_size,
                       c.ssm_conv_kernel);
    if (c.is_moe())
      out += fmt::format("  moe: {} experts, {} used, expert width {}, shared expert width {}\n", c.n_expert,
                         c.n_expert_used, c.n_ff_expert, c.n_ff_shared_expert);
    else
      out += fmt::format("  ffn: width {}\n", c.n_ff);
    std::string kinds;
    for (LayerKind k : c.layer_kinds) kinds += k == LayerKind::DeltaNet ? 'D' : 'A';
    out += fmt::format("  layers: {} (D = delta-net, A = full attention)\n", kinds);
    out += fmt::format("mtp: {}\n", c.has_mtp() ? fmt::format("yes (block {})", c.n_layer) : "no");
  } else {
    out += fmt::format("config: ERROR {}\n", findings.config_error);
  }
  out += fmt::format("tensors: {}\n", f.tensors().size());
  for (const auto& t : f.tensors())
    out += fmt::format("  {:<40} {:<6} {:<20} {:>12}\n", t.name, tensor_type_info(t.type).name, shape_text(t.ne),
                       t.n_bytes);
  out += fmt::format("total: {} tensor bytes ({}), {} parameters\n", findings.tensor_bytes,
                     human_bytes(findings.tensor_bytes), findings.n_params);
  if (config) {
    if (problems.empty()) {
      out += "tensor check: OK\n";
    } else {
      out += fmt::format("tensor check: {} problem(s)\n", problems.size());
      for (const auto& p : problems) out += fmt::format("  {}: {}\n", p.tensor, p.what);
    }
  }
  if (findings.vocab_size)
    out += fmt::format("tokenizer: OK ({} tokens)\n", *findings.vocab_size);
  else
    out += fmt::format("tokenizer: ERROR {}\n", findings.tokenizer_error);
  write_stdout(out);
}

}  // namespace

int run_inspect(const std::vector<std::string>& args) {
  const std::string cmd = "inspect";
  const ParsedArgs a = parse_args(cmd, args, {"--json"}, {});
  if (a.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (a.positionals.size() != 1) throw UsageError(cmd + ": expected exactly one MODEL.gguf argument");
  const GgufFile f = GgufFile::open(a.positionals.front());

  Findings findings;
  try {
    findings.config = ModelConfig::from_gguf(f);
    findings.problems = check_tensors(*findings.config, f);
  } catch (const Error& e) {
    findings.config_error = e.what();
  }
  check_tokenizer(f, findings);
  for (const auto& t : f.tensors()) {
    findings.tensor_bytes += t.n_bytes;
    findings.n_params += t.n_elements;
  }
  const std::optional<ModelConfig>& config = findings.config;

  if (a.has("--json")) {
    nlohmann::json j;
    j["file"] = f.display_name();
    j["file_size"] = f.file_size();
    j["gguf_version"] = f.version();
    j["alignment"] = f.alignment();
    nlohmann::json md = nlohmann::json::object();
    for (const auto& [key, value] : f.metadata()) md[key] = value.to_display_string(8);
    j["metadata"] = md;
    if (config) {
      j["architecture"] = config->arch_name;
      j["name"] = config->name;
      j["config"] = config_json(*config);
      j["mtp"] = config->has_mtp();
    } else {
      j["config_error"] = findings.config_error;
    }
    if (findings.vocab_size)
      j["tokenizer"] = {{"vocab_size", *findings.vocab_size}};
    else
      j["tokenizer_error"] = findings.tokenizer_error;
    nlohmann::json tensors = nlohmann::json::array();
    for (const auto& t : f.tensors())
      tensors.push_back({{"name", t.name}, {"type", tensor_type_info(t.type).name}, {"ne", t.ne},
                         {"bytes", t.n_bytes}, {"offset", t.offset}});
    j["tensors"] = tensors;
    j["tensor_bytes"] = findings.tensor_bytes;
    j["n_parameters"] = findings.n_params;
    nlohmann::json pj = nlohmann::json::array();
    for (const auto& p : findings.problems) pj.push_back({{"tensor", p.tensor}, {"what", p.what}});
    j["problems"] = pj;
    j["ok"] = findings.ok();
    write_stdout(j.dump(2) + "\n");
  } else {
    print_text(f, findings);
  }
  if (!config) std::fprintf(stderr, "error: %s\n", findings.config_error.c_str());
  if (!findings.vocab_size) std::fprintf(stderr, "error: %s\n", findings.tokenizer_error.c_str());
  return findings.ok() ? 0 : 1;
}

}  // namespace peregrine::cli
