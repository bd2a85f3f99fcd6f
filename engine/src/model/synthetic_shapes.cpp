// Built-in synthetic shapes, shapes from JSON, and the ModelConfig a shape describes.
#include <algorithm>
#include <fstream>
#include <numeric>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "peregrine/error.h"
#include "peregrine/synthetic.h"

namespace peregrine::synthetic {
namespace {

Shape dense(std::string name, int64_t H, int64_t L, int64_t heads, int64_t kv, int64_t hk, int64_t hv, int64_t ff,
            int64_t vocab) {
  Shape s;
  s.name = std::move(name);
  s.n_embd = H;
  s.n_layer = L;
  s.n_head = heads;
  s.n_head_kv = kv;
  s.head_dim = 256;
  s.ssm_group_count = hk;
  s.ssm_time_step_rank = hv;
  s.ssm_state_size = 128;
  s.n_ff = ff;
  s.n_vocab = vocab;
  return s;
}

std::vector<Shape> make_builtins() {
  std::vector<Shape> v;
  v.push_back(dense("qwen3.6-27b", 5120, 64, 24, 4, 16, 48, 17408, 248320));
  Shape moe = dense("qwen3.6-35b-a3b", 2048, 40, 16, 2, 16, 32, 0, 248320);
  moe.arch = Architecture::Qwen35Moe;
  moe.n_expert = 256;
  moe.n_expert_used = 8;
  moe.n_ff_expert = 512;
  moe.n_ff_shared_expert = 512;
  v.push_back(moe);
  v.push_back(dense("bench-3b", 2048, 24, 8, 2, 16, 16, 6144, 248320));
  v.push_back(dense("bench-1b", 1024, 24, 8, 2, 16, 16, 3584, 248320));
  // `tiny` matches tests/data/qwen35-tiny (config *tiny*): 64 wide, layers 0-2 delta-net, 3 attention.
  Shape tiny = dense("tiny", 64, 4, 4, 2, 2, 4, 128, 512);
  tiny.head_dim = 32;
  tiny.ssm_state_size = 16;
  tiny.context_length = 4096;
  v.push_back(tiny);
  Shape tiny_moe = tiny;  // config *tinymoe* of the fixtures
  tiny_moe.name = "tiny-moe";
  tiny_moe.arch = Architecture::Qwen35Moe;
  tiny_moe.n_ff = 0;
  tiny_moe.n_expert = 8;
  tiny_moe.n_expert_used = 2;
  tiny_moe.n_ff_expert = 32;
  tiny_moe.n_ff_shared_expert = 32;
  v.push_back(tiny_moe);
  return v;
}

// [11,11,10,0] (the real models' sections for 32 pairs) scaled to `pairs` by largest remainder.
std::vector<int32_t> scaled_sections(int64_t pairs) {
  const double base[3] = {11, 11, 10};
  std::vector<int32_t> out(4, 0);
  double rem[3];
  int64_t used = 0;
  for (int i = 0; i < 3; ++i) {
    const double exact = base[i] * static_cast<double>(pairs) / 32.0;
    out[i] = static_cast<int32_t>(exact);
    rem[i] = exact - out[i];
    used += out[i];
  }
  while (used < pairs) {
    int best = 0;
    for (int i = 1; i < 3; ++i)
      if (rem[i] > rem[best]) best = i;
    ++out[best];
    rem[best] = -1;
    ++used;
  }
  return out;
}

template <class T>
void read_field(const nlohmann::json& j, const char* key, T& out, const std::string& source) {
  if (!j.contains(key)) return;
  const auto& v = j.at(key);
  if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer()) throw Error(fmt::format("{}: field '{}': expected an integer", source, key));
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) throw Error(fmt::format("{}: field '{}': expected a number", source, key));
  }
  out = v.get<T>();
}

}  // namespace

const std::vector<Shape>& builtin_shapes() {
  static const std::vector<Shape> shapes = make_builtins();
  return shapes;
}

std::optional<Shape> builtin_shape(std::string_view name) {
  for (const Shape& s : builtin_shapes())
    if (s.name == name) return s;
  return std::nullopt;
}

Shape shape_from_json_text(std::string_view json_text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: not valid JSON: {}", source, e.what()));
  }
  if (!j.is_object()) throw Error(fmt::format("{}: expected a JSON object describing a shape", source));
  static const char* const kKnown[] = {
      "base", "name", "architecture", "n_embd", "n_layer", "n_head", "n_head_kv", "head_dim", "n_rot",
      "rope_sections", "rope_freq_base", "rms_eps", "context_length", "ssm_group_count", "ssm_time_step_rank",
      "ssm_state_size", "ssm_conv_kernel", "full_attention_interval", "n_ff", "n_expert", "n_expert_used",
      "n_ff_expert", "n_ff_shared_expert", "n_vocab"};
  for (const auto& item : j.items())
    if (std::find_if(std::begin(kKnown), std::end(kKnown), [&](const char* k) { return item.key() == k; }) ==
        std::end(kKnown))
      throw Error(fmt::format("{}: unknown field '{}' (see docs/cli.md for the shape fields)", source, item.key()));

  Shape s;
  s.name = "custom";
  if (j.contains("base")) {
    if (!j["base"].is_string()) throw Error(fmt::format("{}: field 'base': expected a shape name", source));
    auto base = builtin_shape(j["base"].get<std::string>());
    if (!base) throw Error(fmt::format("{}: field 'base': unknown shape '{}'", source, j["base"].get<std::string>()));
    s = *base;
  }
  if (j.contains("name")) {
    if (!j["name"].is_string()) throw Error(fmt::format("{}: field 'name': expected a string", source));
    s.name = j["name"].get<std::string>();
  }
  if (j.contains("architecture")) {
    const auto& a = j["architecture"];
    if (a == "qwen35")
      s.arch = Architecture::Qwen35;
    else if (a == "qwen35moe")
      s.arch = Architecture::Qwen35Moe;
    else
      throw Error(fmt::format("{}: field 'architecture': expected \"qwen35\" or \"qwen35moe\"", source));
  }
  read_field(j, "n_embd", s.n_embd, source);
  read_field(j, "n_layer", s.n_layer, source);
  read_field(j, "n_head", s.n_head, source);
  read_field(j, "n_head_kv", s.n_head_kv, source);
  read_field(j, "head_dim", s.head_dim, source);
  read_field(j, "n_rot", s.n_rot, source);
  read_field(j, "rope_freq_base", s.rope_freq_base, source);
  read_field(j, "rms_eps", s.rms_eps, source);
  read_field(j, "context_length", s.context_length, source);
  read_field(j, "ssm_group_count", s.ssm_group_count, source);
  read_field(j, "ssm_time_step_rank", s.ssm_time_step_rank, source);
  read_field(j, "ssm_state_size", s.ssm_state_size, source);
  read_field(j, "ssm_conv_kernel", s.ssm_conv_kernel, source);
  read_field(j, "full_attention_interval", s.full_attention_interval, source);
  read_field(j, "n_ff", s.n_ff, source);
  read_field(j, "n_expert", s.n_expert, source);
  read_field(j, "n_expert_used", s.n_expert_used, source);
  read_field(j, "n_ff_expert", s.n_ff_expert, source);
  read_field(j, "n_ff_shared_expert", s.n_ff_shared_expert, source);
  read_field(j, "n_vocab", s.n_vocab, source);
  if (j.contains("rope_sections")) {
    const auto& r = j["rope_sections"];
    if (!r.is_array() || r.size() != 4 || !std::all_of(r.begin(), r.end(), [](const auto& e) { return e.is_number_integer(); }))
      throw Error(fmt::format("{}: field 'rope_sections': expected an array of 4 integers", source));
    s.rope_sections = r.get<std::vector<int32_t>>();
  }
  make_config(s, true);  // validates, naming the source
  return s;
}

Shape shape_from_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open the shape file", path.string()));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return shape_from_json_text(buffer.str(), path.string());
}

namespace {

// Far above any real model (rows of at most 64 MiB of f32): keeps the products the writer forms
// (sizes, element counts) inside 64 bits and its buffers small, before anything is allocated.
constexpr int64_t kMaxDimension = int64_t{1} << 24;

void check_bounds(const Shape& s) {
  if (s.n_layer > kMaxBlockCount - 1)
    throw Error(fmt::format("shape '{}': n_layer: {} trunk layers; expected at most {} (with the MTP block {} "
                            "blocks, the most llama.cpp and this engine load)",
                            s.name, s.n_layer, kMaxBlockCount - 1, kMaxBlockCount));
  const std::pair<const char*, int64_t> dims[] = {
      {"n_embd", s.n_embd}, {"n_head", s.n_head}, {"n_head_kv", s.n_head_kv}, {"head_dim", s.head_dim},
      {"n_rot", s.n_rot}, {"ssm_group_count", s.ssm_group_count}, {"ssm_time_step_rank", s.ssm_time_step_rank},
      {"ssm_state_size", s.ssm_state_size}, {"ssm_conv_kernel", s.ssm_conv_kernel}, {"n_ff", s.n_ff},
      {"n_expert", s.n_expert}, {"n_expert_used", s.n_expert_used}, {"n_ff_expert", s.n_ff_expert},
      {"n_ff_shared_expert", s.n_ff_shared_expert}, {"n_vocab", s.n_vocab}};
  for (const auto& [field, value] : dims)
    if (value > kMaxDimension)
      throw Error(fmt::format("shape '{}': {}: {}; expected at most {}", s.name, field, value, kMaxDimension));
}

}  // namespace

ModelConfig make_config(const Shape& s, bool mtp) {
  check_bounds(s);
  ModelConfig c;
  c.arch = s.arch;
  c.arch_name = std::string(architecture_name(s.arch));
  c.name = s.name;
  c.n_vocab = s.n_vocab;
  c.n_embd = s.n_embd;
  c.n_layer = s.n_layer;
  c.n_nextn = mtp ? 1 : 0;
  c.context_length = s.context_length;
  c.rms_eps = s.rms_eps;
  c.n_head = s.n_head;
  c.n_head_kv = s.n_head_kv;
  c.head_dim = s.head_dim;
  c.n_rot = s.n_rot > 0 ? s.n_rot : s.head_dim / 4;
  c.rope_freq_base = s.rope_freq_base;
  c.rope_sections = s.rope_sections.empty() ? scaled_sections(c.n_rot / 2) : s.rope_sections;
  c.ssm_conv_kernel = s.ssm_conv_kernel;
  c.ssm_state_size = s.ssm_state_size;
  c.ssm_group_count = s.ssm_group_count;
  c.ssm_time_step_rank = s.ssm_time_step_rank;
  c.ssm_inner_size = s.ssm_time_step_rank * s.ssm_state_size;
  c.full_attention_interval = s.full_attention_interval;
  if (c.full_attention_interval <= 0)
    throw Error(fmt::format("shape '{}': full_attention_interval must be positive, found {}", s.name,
                            c.full_attention_interval));
  for (int64_t i = 0; i < c.n_layer; ++i)
    c.layer_kinds.push_back((i + 1) % c.full_attention_interval == 0 ? LayerKind::FullAttention : LayerKind::DeltaNet);
  c.n_ff = s.arch == Architecture::Qwen35 ? s.n_ff : 0;
  if (s.arch == Architecture::Qwen35Moe) {
    c.n_expert = s.n_expert;
    c.n_expert_used = s.n_expert_used;
    c.n_ff_expert = s.n_ff_expert;
    c.n_ff_shared_expert = s.n_ff_shared_expert;
  }
  c.validate(fmt::format("shape '{}'", s.name));
  if (c.n_vocab < 300)
    throw Error(fmt::format("shape '{}': n_vocab must be at least 300 (256 bytes + merges + 5 specials), found {}",
                            s.name, c.n_vocab));
  return c;
}

std::optional<FileType> file_type_from_name(std::string_view name) {
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char ch) { return std::toupper(ch); });
  if (upper == "F32") return FileType::F32;
  if (upper == "F16") return FileType::F16;
  if (upper == "Q8_0") return FileType::Q8_0;
  if (upper == "Q4_K_M") return FileType::Q4_K_M;
  return std::nullopt;
}

std::string_view file_type_name(FileType type) {
  switch (type) {
    case FileType::F32: return "F32";
    case FileType::F16: return "F16";
    case FileType::Q8_0: return "Q8_0";
    case FileType::Q4_K_M: return "Q4_K_M";
  }
  return "?";
}

uint32_t gguf_file_type(FileType type) {
  switch (type) {
    case FileType::F32: return 0;
    case FileType::F16: return 1;
    case FileType::Q8_0: return 7;
    case FileType::Q4_K_M: return 15;
  }
  return 0;
}

}  // namespace peregrine::synthetic
