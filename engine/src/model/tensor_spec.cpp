// The tensors a qwen35 / qwen35moe model needs (names and ggml `ne` shapes as llama.cpp loads
// them) and the check of a file against that list.
#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "peregrine/gguf.h"
#include "peregrine/model_config.h"

namespace peregrine {
namespace {

class SpecList {
 public:
  explicit SpecList(int64_t block) : block_(block) {}
  void set_block(int64_t block) { block_ = block; }

  TensorSpec& matrix(std::string name, std::vector<int64_t> ne) { return add(std::move(name), std::move(ne), false); }
  TensorSpec& vector_f(std::string name, int64_t n) { return add(std::move(name), {n}, true); }
  TensorSpec& float_tensor(std::string name, std::vector<int64_t> ne) { return add(std::move(name), std::move(ne), true); }

  std::string blk(std::string_view suffix) const { return fmt::format("blk.{}.{}", block_, suffix); }
  std::vector<TensorSpec> take() { return std::move(specs_); }

 private:
  TensorSpec& add(std::string name, std::vector<int64_t> ne, bool float_only) {
    TensorSpec s;
    s.name = std::move(name);
    s.ne = std::move(ne);
    s.float_only = float_only;
    s.block = block_;
    specs_.push_back(std::move(s));
    return specs_.back();
  }

  int64_t block_;
  std::vector<TensorSpec> specs_;
};

void add_delta_net(SpecList& l, const ModelConfig& c) {
  const int64_t H = c.n_embd;
  l.matrix(l.blk("attn_qkv.weight"), {H, c.ssm_conv_channels()});
  l.matrix(l.blk("attn_gate.weight"), {H, c.ssm_inner_size});
  l.matrix(l.blk("ssm_beta.weight"), {H, c.ssm_time_step_rank});
  l.matrix(l.blk("ssm_alpha.weight"), {H, c.ssm_time_step_rank});
  l.float_tensor(l.blk("ssm_conv1d.weight"), {c.ssm_conv_kernel, c.ssm_conv_channels()});
  l.vector_f(l.blk("ssm_dt.bias"), c.ssm_time_step_rank);
  l.vector_f(l.blk("ssm_a"), c.ssm_time_step_rank);
  l.vector_f(l.blk("ssm_norm.weight"), c.ssm_state_size);
  l.matrix(l.blk("ssm_out.weight"), {c.ssm_inner_size, H});
}

void add_attention(SpecList& l, const ModelConfig& c) {
  const int64_t H = c.n_embd;
  l.matrix(l.blk("attn_q.weight"), {H, 2 * c.n_head * c.head_dim});
  l.matrix(l.blk("attn_k.weight"), {H, c.n_head_kv * c.head_dim});
  l.matrix(l.blk("attn_v.weight"), {H, c.n_head_kv * c.head_dim});
  l.vector_f(l.blk("attn_q_norm.weight"), c.head_dim);
  l.vector_f(l.blk("attn_k_norm.weight"), c.head_dim);
  l.matrix(l.blk("attn_output.weight"), {c.n_head * c.head_dim, H});
}

void add_ffn(SpecList& l, const ModelConfig& c) {
  const int64_t H = c.n_embd;
  if (!c.is_moe()) {
    l.matrix(l.blk("ffn_gate.weight"), {H, c.n_ff});
    l.matrix(l.blk("ffn_up.weight"), {H, c.n_ff});
    l.matrix(l.blk("ffn_down.weight"), {c.n_ff, H});
    return;
  }
  const int64_t E = c.n_expert, F = c.n_ff_expert;
  l.matrix(l.blk("ffn_gate_inp.weight"), {H, E});
  l.matrix(l.blk("ffn_gate_exps.weight"), {H, F, E});
  l.matrix(l.blk("ffn_up_exps.weight"), {H, F, E});
  TensorSpec& fused = l.matrix(l.blk("ffn_gate_up_exps.weight"), {H, 2 * F, E});
  fused.optional = true;
  fused.replaces = {l.blk("ffn_gate_exps.weight"), l.blk("ffn_up_exps.weight")};
  l.matrix(l.blk("ffn_down_exps.weight"), {F, H, E});
  if (c.has_shared_expert()) {
    TensorSpec& gate = l.matrix(l.blk("ffn_gate_inp_shexp.weight"), {H, 1});
    gate.alt_ne = {{H}};
    const int64_t S = c.n_ff_shared_expert;
    l.matrix(l.blk("ffn_gate_shexp.weight"), {H, S});
    l.matrix(l.blk("ffn_up_shexp.weight"), {H, S});
    l.matrix(l.blk("ffn_down_shexp.weight"), {S, H});
  }
}

std::string shape_string(const std::vector<int64_t>& ne) { return fmt::format("[{}]", fmt::join(ne, ", ")); }

bool is_float_type(TensorType t) { return t == TensorType::F32 || t == TensorType::F16 || t == TensorType::BF16; }

// Type checks for one present tensor; empty when fine.
std::string type_problem(const TensorSpec& spec, const GgufTensorInfo& t) {
  const TensorTypeInfo info = tensor_type_info(t.type);
  if (spec.float_only && !is_float_type(t.type))
    return fmt::format("type {} not allowed: this tensor must be f32, f16 or bf16", info.name);
  if (!info.dequantizable) return fmt::format("type {} is not supported by this engine", info.name);
  if (!t.ne.empty() && t.ne[0] % info.block_elems != 0)
    return fmt::format("row length {} is not a multiple of the {} block ({})", t.ne[0], info.name, info.block_elems);
  if (!is_float_type(t.type) && t.ne.size() < 2)
    return fmt::format("type {} not allowed for a 1-D tensor (quantized types are for matrices)", info.name);
  return {};
}

}  // namespace

std::vector<TensorSpec> expected_tensors(const ModelConfig& c) {
  const int64_t H = c.n_embd;
  SpecList l(-1);
  l.matrix("token_embd.weight", {H, c.n_vocab});
  l.vector_f("output_norm.weight", H);
  l.matrix("output.weight", {H, c.n_vocab}).optional = true;  // absent: tied to token_embd

  for (int64_t i = 0; i < c.n_layer; ++i) {
    l.set_block(i);
    l.vector_f(l.blk("attn_norm.weight"), H);
    if (c.layer_kinds[i] == LayerKind::DeltaNet)
      add_delta_net(l, c);
    else
      add_attention(l, c);
    l.vector_f(l.blk("post_attention_norm.weight"), H);
    add_ffn(l, c);
  }
  for (int64_t i = c.n_layer; i < c.n_block(); ++i) {
    l.set_block(i);
    l.vector_f(l.blk("nextn.enorm.weight"), H);
    l.vector_f(l.blk("nextn.hnorm.weight"), H);
    l.matrix(l.blk("nextn.eh_proj.weight"), {2 * H, H});
    l.matrix(l.blk("nextn.embed_tokens.weight"), {H, c.n_vocab}).optional = true;
    l.vector_f(l.blk("attn_norm.weight"), H);
    add_attention(l, c);
    l.vector_f(l.blk("post_attention_norm.weight"), H);
    add_ffn(l, c);
    l.vector_f(l.blk("nextn.shared_head_norm.weight"), H).optional = true;
    l.matrix(l.blk("nextn.shared_head_head.weight"), {H, c.n_vocab}).optional = true;
  }
  return l.take();
}

std::vector<TensorProblem> check_tensors(const ModelConfig& config, const GgufFile& file) {
  const std::vector<TensorSpec> specs = expected_tensors(config);
  std::vector<TensorProblem> problems;
  std::set<std::string> replaced;  // split tensors made unnecessary by a present fused one
  for (const TensorSpec& s : specs)
    if (!s.replaces.empty() && file.find_tensor(s.name))
      for (const auto& r : s.replaces) replaced.insert(r);

  std::set<std::string> expected_names;
  for (const TensorSpec& s : specs) {
    expected_names.insert(s.name);
    const GgufTensorInfo* t = file.find_tensor(s.name);
    if (!t) {
      if (s.optional) continue;
      if (replaced.count(s.name)) continue;
      std::string what = "missing";
      for (const TensorSpec& f : specs)
        for (const auto& r : f.replaces)
          if (r == s.name) what = fmt::format("missing (and no fused '{}' either)", f.name);
      problems.push_back({s.name, what});
      continue;
    }
    if (replaced.count(s.name)) {
      problems.push_back({s.name, "present together with the fused tensor that replaces it"});
      continue;
    }
    bool shape_ok = t->ne == s.ne;
    for (const auto& alt : s.alt_ne) shape_ok = shape_ok || t->ne == alt;
    if (!shape_ok) {
      std::string expected = shape_string(s.ne);
      for (const auto& alt : s.alt_ne) expected += " or " + shape_string(alt);
      problems.push_back({s.name, fmt::format("shape {} expected {}", shape_string(t->ne), expected)});
      continue;
    }
    if (std::string why = type_problem(s, *t); !why.empty()) problems.push_back({s.name, why});
  }
  for (const GgufTensorInfo& t : file.tensors())
    if (!expected_names.count(t.name))
      problems.push_back({t.name, fmt::format("unexpected tensor: not part of a {} model with {} blocks ({} trunk, {} MTP)",
                                              config.arch_name, config.n_block(), config.n_layer, config.n_nextn)});
  return problems;
}

}  // namespace peregrine
