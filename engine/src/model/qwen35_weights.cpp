#include "model/qwen35_weights.h"

#include <cmath>
#include <cstring>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "peregrine/error.h"
#include "peregrine/gguf.h"
#include "peregrine/quant.h"

namespace peregrine {
namespace {

std::vector<int64_t> without_trailing_ones(std::vector<int64_t> ne) {
  while (ne.size() > 1 && ne.back() == 1) ne.pop_back();
  return ne;
}

// Looks tensors up by name and checks them before handing out views.
class Binder {
 public:
  explicit Binder(const GgufFile& file) : file_(file) {}

  const GgufTensorInfo* find(const std::string& name) const { return file_.find_tensor(name); }

  const GgufTensorInfo& require(const std::string& name) const {
    const GgufTensorInfo* t = file_.find_tensor(name);
    if (!t) throw Error(fmt::format("{}: tensor '{}' is missing", file_.display_name(), name));
    return *t;
  }

  // A matrix (or a stack of matrices) of shape `ne` in ggml order; trailing 1-dims are ignored,
  // so the [n, 1] and [n] spellings of a single row are the same.
  WeightView matrix(const std::string& name, const std::vector<int64_t>& ne) const {
    const GgufTensorInfo& t = require(name);
    if (without_trailing_ones(t.ne) != without_trailing_ones(ne))
      throw Error(fmt::format("{}: tensor '{}' has shape [{}], expected [{}]", file_.display_name(), name,
                              fmt::join(t.ne, ", "), fmt::join(ne, ", ")));
    const TensorTypeInfo info = tensor_type_info(t.type);
    if (!info.dequantizable || ne[0] % info.block_elems != 0)
      throw Error(fmt::format("{}: tensor '{}' has type {} which cannot be multiplied (rows of {})",
                              file_.display_name(), name, info.name, ne[0]));
    WeightView w;
    w.type = t.type;
    w.data = t.data;
    w.n_in = ne[0];
    w.n_out = t.n_elements / ne[0];
    w.row_bytes = tensor_bytes(info, static_cast<uint64_t>(ne[0]));
    w.name = t.name;
    return w;
  }

  WeightView optional_matrix(const std::string& name, const std::vector<int64_t>& ne) const {
    return find(name) ? matrix(name, ne) : WeightView{};
  }

  // A small float tensor with `n` values (any shape), converted to float.
  FloatParam floats(const std::string& name, int64_t n) const { return FloatParam{float_values(name, n)}; }
  std::vector<float> float_values(const std::string& name, int64_t n) const {
    const GgufTensorInfo& t = require(name);
    if (t.n_elements != n)
      throw Error(fmt::format("{}: tensor '{}' has {} values, expected {}", file_.display_name(), name,
                              t.n_elements, n));
    std::vector<float> out(n);
    if (t.type == TensorType::F32)
      std::memcpy(out.data(), t.data, sizeof(float) * n);
    else if (t.type == TensorType::F16 || t.type == TensorType::BF16)
      quant::dequantize(t.type, t.data, out.data(), n);
    else
      throw Error(fmt::format("{}: tensor '{}' has type {}, expected f32, f16 or bf16", file_.display_name(),
                              name, tensor_type_info(t.type).name));
    // These scale or shift every activation that passes: one NaN or infinity makes every logit NaN
    // with float activations, and finite but wrong ones where activations are rounded to 8 bits.
    // They are small, so each is checked here rather than trusted.
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(out[i]))
        throw Error(fmt::format("{}: tensor '{}' holds a non-finite value ({} at index {}); the file is damaged",
                                file_.display_name(), name, out[i], i));
    return out;
  }

 private:
  const GgufFile& file_;
};

std::string blk(int64_t il, const char* suffix) { return fmt::format("blk.{}.{}", il, suffix); }

DeltaNetWeights bind_delta_net(const Binder& b, const ModelConfig& c, int64_t il) {
  const int64_t n = c.n_embd, hv = c.ssm_time_step_rank, d = c.ssm_state_size;
  const int64_t channels = c.ssm_conv_channels();
  DeltaNetWeights w;
  w.qkv = b.matrix(blk(il, "attn_qkv.weight"), {n, channels});
  w.gate = b.matrix(blk(il, "attn_gate.weight"), {n, c.ssm_inner_size});
  w.beta = b.matrix(blk(il, "ssm_beta.weight"), {n, hv});
  w.alpha = b.matrix(blk(il, "ssm_alpha.weight"), {n, hv});
  w.out = b.matrix(blk(il, "ssm_out.weight"), {c.ssm_inner_size, n});
  const GgufTensorInfo& conv = b.require(blk(il, "ssm_conv1d.weight"));
  if (conv.ne.empty() || conv.ne[0] != c.ssm_conv_kernel)
    throw Error(fmt::format("tensor '{}': first dimension must be the conv kernel {}", conv.name, c.ssm_conv_kernel));
  w.conv1d = b.floats(conv.name, c.ssm_conv_kernel * channels);
  w.dt_bias = b.floats(blk(il, "ssm_dt.bias"), hv);
  w.a = b.floats(blk(il, "ssm_a"), hv);
  w.norm = b.floats(blk(il, "ssm_norm.weight"), d);
  return w;
}

AttentionWeights bind_attention(const Binder& b, const ModelConfig& c, int64_t il) {
  const int64_t n = c.n_embd, hd = c.head_dim;
  AttentionWeights w;
  w.q = b.matrix(blk(il, "attn_q.weight"), {n, 2 * c.n_head * hd});
  w.k = b.matrix(blk(il, "attn_k.weight"), {n, c.n_head_kv * hd});
  w.v = b.matrix(blk(il, "attn_v.weight"), {n, c.n_head_kv * hd});
  w.out = b.matrix(blk(il, "attn_output.weight"), {c.n_head * hd, n});
  w.q_norm = b.floats(blk(il, "attn_q_norm.weight"), hd);
  w.k_norm = b.floats(blk(il, "attn_k_norm.weight"), hd);
  return w;
}

FfnWeights bind_ffn(const Binder& b, const ModelConfig& c, int64_t il) {
  const int64_t n = c.n_embd;
  FfnWeights w;
  w.moe = c.is_moe();
  if (!w.moe) {
    w.gate = b.matrix(blk(il, "ffn_gate.weight"), {n, c.n_ff});
    w.up = b.matrix(blk(il, "ffn_up.weight"), {n, c.n_ff});
    w.down = b.matrix(blk(il, "ffn_down.weight"), {c.n_ff, n});
    return w;
  }
  const int64_t E = c.n_expert, ff = c.n_ff_expert, sff = c.n_ff_shared_expert;
  w.router = b.matrix(blk(il, "ffn_gate_inp.weight"), {n, E});
  if (b.find(blk(il, "ffn_gate_up_exps.weight"))) {
    // Fused: per expert the ff gate rows, then the ff up rows.
    const WeightView fused = b.matrix(blk(il, "ffn_gate_up_exps.weight"), {n, 2 * ff, E});
    w.gate_exps = fused.rows(0, 2 * ff * E - ff);
    w.up_exps = fused.rows(ff, 2 * ff * E - ff);
    w.exps_stride = 2 * ff;
  } else {
    w.gate_exps = b.matrix(blk(il, "ffn_gate_exps.weight"), {n, ff, E});
    w.up_exps = b.matrix(blk(il, "ffn_up_exps.weight"), {n, ff, E});
    w.exps_stride = ff;
  }
  w.down_exps = b.matrix(blk(il, "ffn_down_exps.weight"), {ff, n, E});
  w.shexp_gate_inp = b.matrix(blk(il, "ffn_gate_inp_shexp.weight"), {n, 1});
  w.shexp_gate = b.matrix(blk(il, "ffn_gate_shexp.weight"), {n, sff});
  w.shexp_up = b.matrix(blk(il, "ffn_up_shexp.weight"), {n, sff});
  w.shexp_down = b.matrix(blk(il, "ffn_down_shexp.weight"), {sff, n});
  return w;
}

LayerWeights bind_layer(const Binder& b, const ModelConfig& c, int64_t il, LayerKind kind) {
  LayerWeights w;
  w.kind = kind;
  w.attn_norm = b.floats(blk(il, "attn_norm.weight"), c.n_embd);
  w.post_attention_norm = b.floats(blk(il, "post_attention_norm.weight"), c.n_embd);
  if (kind == LayerKind::DeltaNet)
    w.delta = bind_delta_net(b, c, il);
  else
    w.attn = bind_attention(b, c, il);
  w.ffn = bind_ffn(b, c, il);
  return w;
}

}  // namespace

Qwen35Weights Qwen35Weights::bind(const GgufFile& file, const ModelConfig& c, const GgufFile* mtp_file) {
  const Binder b(file);
  const int64_t n = c.n_embd;
  Qwen35Weights w;
  w.token_embd = b.matrix("token_embd.weight", {n, c.n_vocab});
  w.output = b.find("output.weight") ? b.matrix("output.weight", {n, c.n_vocab}) : w.token_embd;
  w.output_norm = b.floats("output_norm.weight", n);
  if (static_cast<int64_t>(c.layer_kinds.size()) != c.n_layer)
    throw Error(fmt::format("{}: config has {} layer kinds for {} layers", file.display_name(),
                            c.layer_kinds.size(), c.n_layer));
  for (int64_t il = 0; il < c.n_layer; ++il) w.layers.push_back(bind_layer(b, c, il, c.layer_kinds[il]));
  if (c.has_mtp()) {
    // The block lives in the trunk file or in a separate MTP-only file, whose own embeddings,
    // final norm and LM head (copies of the trunk's in llama.cpp's split) are preferred.
    const Binder mb(mtp_file ? *mtp_file : file);
    const int64_t il = c.n_layer;
    const WeightView embed = mtp_file ? mb.optional_matrix("token_embd.weight", {n, c.n_vocab}) : WeightView{};
    WeightView head = mtp_file ? mb.optional_matrix("output.weight", {n, c.n_vocab}) : WeightView{};
    if (head.empty()) head = embed.empty() ? w.output : embed;
    const FloatParam head_norm =
        mtp_file && mb.find("output_norm.weight") ? mb.floats("output_norm.weight", n) : w.output_norm;
    MtpWeights m;
    m.enorm = mb.floats(blk(il, "nextn.enorm.weight"), n);
    m.hnorm = mb.floats(blk(il, "nextn.hnorm.weight"), n);
    m.shared_head_norm = mb.find(blk(il, "nextn.shared_head_norm.weight"))
                             ? mb.floats(blk(il, "nextn.shared_head_norm.weight"), n)
                             : head_norm;
    m.eh_proj = mb.matrix(blk(il, "nextn.eh_proj.weight"), {2 * n, n});
    m.embed = mb.optional_matrix(blk(il, "nextn.embed_tokens.weight"), {n, c.n_vocab});
    if (m.embed.empty()) m.embed = embed.empty() ? w.token_embd : embed;
    m.head = mb.optional_matrix(blk(il, "nextn.shared_head_head.weight"), {n, c.n_vocab});
    if (m.head.empty()) m.head = head;
    m.block = bind_layer(mb, c, il, LayerKind::FullAttention);
    w.mtp = std::move(m);
  }
  return w;
}

}  // namespace peregrine
