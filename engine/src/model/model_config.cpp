// ModelConfig::from_gguf: the `qwen35` / `qwen35moe` metadata read into a typed, validated config.
// Key names and meanings follow llama.cpp's loaders (see tests/data/qwen35-tiny/README.md).
#include "peregrine/model_config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <numeric>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "peregrine/error.h"
#include "peregrine/gguf.h"

namespace peregrine {
namespace {

// Reads `{arch}.{key}` metadata with messages that name the file, the key and the expectation.
class MetadataReader {
 public:
  MetadataReader(const GgufFile& file, std::string arch) : file_(file), arch_(std::move(arch)) {}

  std::string full_key(std::string_view key) const { return fmt::format("{}.{}", arch_, key); }

  [[noreturn]] void fail(std::string_view key, std::string_view what) const {
    throw Error(fmt::format("{}: key '{}': {}", file_.display_name(), full_key(key), what));
  }

  const GgufValue* find(std::string_view key) const { return file_.find(full_key(key)); }

  // Once known, per-layer arrays must have exactly this many entries.
  void set_block_count(int64_t n) { block_count_ = n; }

  // An integer; llama.cpp accepts a per-layer array for some keys, we accept one whose entries
  // are all equal (Qwen 3.5/3.6 files use scalars).
  int64_t integer(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) fail(key, "missing (expected an integer)");
    return integer_value(key, *v);
  }

  int64_t integer_or(std::string_view key, int64_t fallback) const {
    const GgufValue* v = find(key);
    return v ? integer_value(key, *v) : fallback;
  }

  double real_or(std::string_view key, std::optional<double> fallback) const {
    const GgufValue* v = find(key);
    if (!v) {
      if (!fallback) fail(key, "missing (expected a number)");
      return *fallback;
    }
    auto d = v->as_f64();
    if (!d) fail(key, fmt::format("expected a number, found {}", gguf_value_type_name(v->type())));
    return *d;
  }

  std::vector<int64_t> integer_array(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) fail(key, "missing (expected an array of integers)");
    const GgufArray* a = v->as_array();
    if (!a) fail(key, fmt::format("expected an array of integers, found {}", gguf_value_type_name(v->type())));
    std::vector<int64_t> out;
    for (const auto& e : a->elements) {
      auto i = e.as_i64();
      if (!i) fail(key, fmt::format("expected an array of integers, found elements of type {}",
                                    gguf_value_type_name(a->element_type)));
      out.push_back(*i);
    }
    return out;
  }

  std::optional<std::vector<bool>> bool_array(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    const GgufArray* a = v->as_array();
    if (!a || a->element_type != GgufValueType::BOOL)
      fail(key, fmt::format("expected an array of BOOL, found {}",
                            a ? "an array of " + std::string(gguf_value_type_name(a->element_type))
                              : std::string(gguf_value_type_name(v->type()))));
    std::vector<bool> out;
    for (const auto& e : a->elements) out.push_back(e.as_bool().value_or(false));
    return out;
  }

 private:
  int64_t integer_value(std::string_view key, const GgufValue& v) const {
    if (auto i = v.as_i64(); i && v.is_integer()) return *i;
    if (const GgufArray* a = v.as_array(); a && !a->elements.empty()) {
      if (block_count_ && static_cast<int64_t>(a->elements.size()) != *block_count_)
        fail(key, fmt::format("expected one entry per block ({}), found {}", *block_count_, a->elements.size()));
      std::optional<int64_t> first;
      for (const auto& e : a->elements) {
        auto i = e.as_i64();
        if (!i || !e.is_integer()) break;
        if (first && *first != *i) fail(key, "per-layer values differ; expected one value for every layer");
        first = i;
      }
      if (first) return *first;
    }
    fail(key, fmt::format("expected an integer, found {}", gguf_value_type_name(v.type())));
  }

  const GgufFile& file_;
  std::string arch_;
  std::optional<int64_t> block_count_;
};

// The vocabulary size (rows of the LM head): the row count of token_embd or output, whichever
// has rows of n_embd values, else the tokenizer's token count. A damaged (say transposed)
// token_embd then does not set n_vocab, so only that tensor is reported, not the sound output.
int64_t n_vocab_of(const GgufFile& file, int64_t n_embd) {
  for (const char* name : {"token_embd.weight", "output.weight"})
    if (const GgufTensorInfo* t = file.find_tensor(name); t && t->ne.size() == 2 && t->ne[0] == n_embd)
      return t->ne[1];
  if (const GgufValue* v = file.find("tokenizer.ggml.tokens"))
    if (const GgufArray* a = v->as_array()) return static_cast<int64_t>(a->elements.size());
  throw Error(fmt::format("{}: cannot tell the vocabulary size: neither a 2-D tensor 'token_embd.weight' or "
                          "'output.weight' with rows of embedding_length ({}) values nor the key "
                          "'tokenizer.ggml.tokens' is present",
                          file.display_name(), n_embd));
}

// llama.cpp's LLAMA_MAX_LAYERS: no file it loads has more blocks. With the bound below it keeps a
// hostile tensor name ("blk.99999999999.x") from licensing a huge block count.
constexpr int64_t kMaxBlocks = 512;

// The number of blocks the file's tensors cover: one more than the highest N of a "blk.N." name.
int64_t blocks_with_tensors(const GgufFile& file) {
  int64_t highest = -1;
  for (const GgufTensorInfo& t : file.tensors()) {
    constexpr std::string_view kPrefix = "blk.";
    if (t.name.rfind(kPrefix, 0) != 0) continue;
    const char* first = t.name.data() + kPrefix.size();
    const char* last = t.name.data() + t.name.size();
    int64_t index = 0;
    auto [end, ec] = std::from_chars(first, last, index);
    if (ec == std::errc() && end != last && *end == '.' && index >= 0) highest = std::max(highest, index);
  }
  return highest + 1;
}

// Every block has tensors of its own (an MTP file holds only its last block, hence the highest
// index rather than a count): a block count past them describes blocks that do not exist, and is
// refused before anything is sized by it.
void check_block_count(const MetadataReader& md, const GgufFile& file, int64_t block_count) {
  const int64_t covered = std::min(blocks_with_tensors(file), kMaxBlocks);
  if (block_count > covered)
    md.fail("block_count",
            covered == 0 ? fmt::format("{} blocks, but the file has no 'blk.N.' tensors", block_count)
                         : fmt::format("{} blocks, but the file's tensors stop at blk.{} (at most {} blocks)",
                                       block_count, covered - 1, covered));
}

// Every dimension of the config is a dimension of some tensor, so none can exceed the element
// count of the largest tensor in the file (itself bounded by the file size). Checked before
// validate(), whose products (and those of expected_tensors) could otherwise overflow.
void check_dimensions_fit(const MetadataReader& md, const GgufFile& file, const ModelConfig& c) {
  int64_t largest = 0;
  for (const GgufTensorInfo& t : file.tensors()) largest = std::max(largest, t.n_elements);
  auto too_large = [&](std::string_view what, __int128 value) {
    const std::string shown = value <= std::numeric_limits<int64_t>::max()
                                  ? std::to_string(static_cast<int64_t>(value))
                                  : std::string("more than 2^63");
    return fmt::format("{} = {} is more than the largest tensor of the file holds ({} elements)", what, shown,
                       largest);
  };
  const std::pair<std::string_view, int64_t> dims[] = {
      {"embedding_length", c.n_embd},
      {"attention.head_count", c.n_head},
      {"attention.head_count_kv", c.n_head_kv},
      {"attention.key_length", c.head_dim},
      {"rope.dimension_count", c.n_rot},
      {"ssm.conv_kernel", c.ssm_conv_kernel},
      {"ssm.state_size", c.ssm_state_size},
      {"ssm.group_count", c.ssm_group_count},
      {"ssm.time_step_rank", c.ssm_time_step_rank},
      {"ssm.inner_size", c.ssm_inner_size},
      {"feed_forward_length", c.n_ff},
      {"expert_count", c.n_expert},
      {"expert_used_count", c.n_expert_used},
      {"expert_feed_forward_length", c.n_ff_expert},
      {"expert_shared_feed_forward_length", c.n_ff_shared_expert},
  };
  for (const auto& [key, value] : dims)
    if (value > largest) md.fail(key, too_large(key, value));
  if (c.n_vocab > largest) throw Error(fmt::format("{}: vocabulary size {}", file.display_name(),
                                                   too_large("n_vocab", c.n_vocab)));
  // Products used as tensor dimensions: each factor is at most `largest` (< 2^63), so the
  // products are computed in 128 bits.
  const struct {
    std::string_view key, what;
    __int128 value;
  } products[] = {
      {"attention.head_count", "2 × attention.head_count × attention.key_length",
       __int128{2} * c.n_head * c.head_dim},
      {"attention.head_count_kv", "attention.head_count_kv × attention.key_length",
       __int128{c.n_head_kv} * c.head_dim},
      {"ssm.time_step_rank", "ssm.time_step_rank × ssm.state_size", __int128{c.ssm_time_step_rank} * c.ssm_state_size},
      {"ssm.group_count", "2 × ssm.group_count × ssm.state_size + ssm.inner_size",
       __int128{2} * c.ssm_group_count * c.ssm_state_size + c.ssm_inner_size},
  };
  for (const auto& p : products)
    if (p.value > largest) md.fail(p.key, too_large(p.what, p.value));
}

}  // namespace

std::string_view architecture_name(Architecture arch) {
  return arch == Architecture::Qwen35Moe ? "qwen35moe" : "qwen35";
}

std::string_view layer_kind_name(LayerKind kind) {
  return kind == LayerKind::DeltaNet ? "delta_net" : "full_attention";
}

int64_t ModelConfig::n_full_attention_layers() const {
  int64_t n = 0;
  for (LayerKind k : layer_kinds) n += k == LayerKind::FullAttention;
  return n;
}

ModelConfig ModelConfig::from_gguf(const GgufFile& file) {
  const GgufValue* arch_value = file.find("general.architecture");
  if (!arch_value || !arch_value->as_string())
    throw Error(fmt::format("{}: key 'general.architecture': expected a string 'qwen35' or 'qwen35moe', {}",
                            file.display_name(), arch_value ? "found another type" : "missing"));
  const std::string& arch = *arch_value->as_string();
  ModelConfig c;
  if (arch == "qwen35") {
    c.arch = Architecture::Qwen35;
  } else if (arch == "qwen35moe") {
    c.arch = Architecture::Qwen35Moe;
  } else {
    throw Error(fmt::format("{}: key 'general.architecture': expected 'qwen35' or 'qwen35moe', found '{}'",
                            file.display_name(), arch));
  }
  c.arch_name = arch;
  if (const GgufValue* n = file.find("general.name"); n && n->as_string()) c.name = *n->as_string();

  MetadataReader md(file, arch);
  const int64_t block_count = md.integer("block_count");
  if (block_count <= 0) md.fail("block_count", fmt::format("expected a positive block count, found {}", block_count));
  check_block_count(md, file, block_count);
  md.set_block_count(block_count);
  c.n_nextn = md.integer_or("nextn_predict_layers", 0);
  if (c.n_nextn < 0 || c.n_nextn > 1 || c.n_nextn >= block_count)
    md.fail("nextn_predict_layers",
            fmt::format("expected 0 or 1 (and less than block_count {}), found {}", block_count, c.n_nextn));
  c.n_layer = block_count - c.n_nextn;

  c.n_embd = md.integer("embedding_length");
  c.n_vocab = n_vocab_of(file, c.n_embd);
  c.context_length = md.integer("context_length");
  c.rms_eps = static_cast<float>(md.real_or("attention.layer_norm_rms_epsilon", std::nullopt));

  c.n_head = md.integer("attention.head_count");
  c.n_head_kv = md.integer("attention.head_count_kv");
  c.head_dim = md.integer("attention.key_length");
  if (const int64_t value_length = md.integer_or("attention.value_length", c.head_dim); value_length != c.head_dim)
    md.fail("attention.value_length",
            fmt::format("expected the same as attention.key_length ({}), found {}", c.head_dim, value_length));
  c.n_rot = md.integer_or("rope.dimension_count", c.head_dim);
  c.rope_freq_base = static_cast<float>(md.real_or("rope.freq_base", 1e7));
  const std::vector<int64_t> sections = md.integer_array("rope.dimension_sections");
  if (sections.size() != 4)
    md.fail("rope.dimension_sections", fmt::format("expected 4 entries, found {}", sections.size()));
  for (int64_t s : sections) c.rope_sections.push_back(static_cast<int32_t>(s));

  c.ssm_conv_kernel = md.integer("ssm.conv_kernel");
  c.ssm_state_size = md.integer("ssm.state_size");
  c.ssm_group_count = md.integer("ssm.group_count");
  c.ssm_time_step_rank = md.integer("ssm.time_step_rank");
  c.ssm_inner_size = md.integer("ssm.inner_size");
  c.full_attention_interval = md.integer_or("full_attention_interval", 4);

  if (c.is_moe()) {
    c.n_ff = md.integer_or("feed_forward_length", 0);
    c.n_expert = md.integer("expert_count");
    c.n_expert_used = md.integer("expert_used_count");
    c.n_ff_expert = md.integer("expert_feed_forward_length");
    c.n_ff_shared_expert = md.integer_or("expert_shared_feed_forward_length", 0);
  } else {
    c.n_ff = md.integer("feed_forward_length");
  }

  if (auto recurrent = md.bool_array("attention.recurrent_layers")) {
    if (static_cast<int64_t>(recurrent->size()) != block_count)
      md.fail("attention.recurrent_layers",
              fmt::format("expected one entry per block ({}), found {}", block_count, recurrent->size()));
    for (int64_t i = 0; i < c.n_layer; ++i)
      c.layer_kinds.push_back((*recurrent)[i] ? LayerKind::DeltaNet : LayerKind::FullAttention);
  } else {
    if (c.full_attention_interval <= 0)
      md.fail("full_attention_interval", fmt::format("expected a positive interval, found {}", c.full_attention_interval));
    for (int64_t i = 0; i < c.n_layer; ++i)
      c.layer_kinds.push_back((i + 1) % c.full_attention_interval == 0 ? LayerKind::FullAttention
                                                                       : LayerKind::DeltaNet);
  }

  check_dimensions_fit(md, file, c);
  c.validate(file.display_name());
  return c;
}

void ModelConfig::validate(const std::string& source) const {
  const std::string prefix = arch_name.empty() ? std::string(architecture_name(arch)) : arch_name;
  auto fail = [&](std::string_view key, const std::string& what) {
    throw Error(fmt::format("{}: key '{}.{}': {}", source, prefix, key, what));
  };
  auto positive = [&](std::string_view key, int64_t v) {
    if (v <= 0) fail(key, fmt::format("expected a positive value, found {}", v));
  };
  if (n_vocab <= 0) throw Error(fmt::format("{}: vocabulary size must be positive, found {}", source, n_vocab));
  positive("embedding_length", n_embd);
  positive("context_length", context_length);
  positive("attention.head_count", n_head);
  positive("attention.head_count_kv", n_head_kv);
  if (n_head % n_head_kv != 0)
    fail("attention.head_count_kv",
         fmt::format("expected a divisor of attention.head_count ({}), found {}", n_head, n_head_kv));
  positive("attention.key_length", head_dim);
  if (!(rms_eps > 0.0f && rms_eps < 1.0f))
    fail("attention.layer_norm_rms_epsilon", fmt::format("expected a value in (0, 1), found {}", rms_eps));
  if (!(std::isfinite(rope_freq_base) && rope_freq_base > 1.0f))
    fail("rope.freq_base", fmt::format("expected a finite base > 1, found {}", rope_freq_base));
  if (n_rot <= 0 || n_rot > head_dim || n_rot % 2 != 0)
    fail("rope.dimension_count",
         fmt::format("expected an even value in [2, attention.key_length = {}], found {}", head_dim, n_rot));
  if (rope_sections.size() != 4) fail("rope.dimension_sections", "expected 4 entries");
  for (int32_t s : rope_sections)
    if (s < 0) fail("rope.dimension_sections", fmt::format("expected non-negative entries, found {}", s));
  const int64_t section_sum = std::accumulate(rope_sections.begin(), rope_sections.end(), int64_t{0});
  if (section_sum != n_rot / 2)
    fail("rope.dimension_sections",
         fmt::format("expected entries summing to rope.dimension_count / 2 = {}, found {} (sum {})", n_rot / 2,
                     rope_sections, section_sum));

  positive("ssm.conv_kernel", ssm_conv_kernel);
  positive("ssm.state_size", ssm_state_size);
  positive("ssm.group_count", ssm_group_count);
  positive("ssm.time_step_rank", ssm_time_step_rank);
  if (ssm_time_step_rank % ssm_group_count != 0)
    fail("ssm.time_step_rank",
         fmt::format("expected a multiple of ssm.group_count ({}), found {}", ssm_group_count, ssm_time_step_rank));
  if (ssm_inner_size != ssm_time_step_rank * ssm_state_size)
    fail("ssm.inner_size", fmt::format("expected ssm.time_step_rank * ssm.state_size = {}, found {}",
                                       ssm_time_step_rank * ssm_state_size, ssm_inner_size));
  if (static_cast<int64_t>(layer_kinds.size()) != n_layer)
    throw Error(fmt::format("{}: {} layer kinds for {} trunk layers", source, layer_kinds.size(), n_layer));
  positive("block_count", n_layer);

  if (is_moe()) {
    positive("expert_count", n_expert);
    positive("expert_used_count", n_expert_used);
    if (n_expert_used > n_expert)
      fail("expert_used_count", fmt::format("expected at most expert_count ({}), found {}", n_expert, n_expert_used));
    positive("expert_feed_forward_length", n_ff_expert);
    if (n_ff_shared_expert < 0)
      fail("expert_shared_feed_forward_length", fmt::format("expected >= 0, found {}", n_ff_shared_expert));
  } else {
    positive("feed_forward_length", n_ff);
  }
}

}  // namespace peregrine
