// Which tensors a synthetic file holds and in which type, following llama.cpp:
// float files as convert_hf_to_gguf.py writes them, quantized files as llama-quantize would
// produce them from an F32 file (llama-quant.cpp: tensor_allows_quantization,
// llama_tensor_get_type_impl, tensor_type_fallback), checked against tests/data/qwen35-tiny's
// tiny-quant.gguf (Q6_K exactly on output, blk.2.attn_qkv, blk.2/4.ffn_down, blk.4.attn_v).
#include <cstdio>

#include <fmt/format.h>

#include "peregrine/error.h"
#include "peregrine/synthetic.h"

namespace peregrine::synthetic {
namespace {

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }
bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// ggml_n_dims: trailing dimensions of 1 do not count.
int n_dims(const std::vector<int64_t>& ne) {
  int n = static_cast<int>(ne.size());
  while (n > 1 && ne[n - 1] == 1) --n;
  return n;
}

std::vector<int64_t> squeezed(std::vector<int64_t> ne) {
  ne.resize(n_dims(ne));
  return ne;
}

enum class Category { Output, TokenEmbd, AttnV, AttnK, AttnQ, AttnOutput, FfnUp, FfnGate, FfnDown, Other };

// llama-quant.cpp tensor_get_category (attn_qkv counts as attn_v-like).
Category category_of(const std::string& name) {
  if (name == "output.weight") return Category::Output;
  if (name == "token_embd.weight") return Category::TokenEmbd;
  if (contains(name, "attn_qkv.weight") || contains(name, "attn_v.weight")) return Category::AttnV;
  if (contains(name, "attn_k.weight")) return Category::AttnK;
  if (contains(name, "attn_q.weight")) return Category::AttnQ;
  if (contains(name, "attn_output.weight")) return Category::AttnOutput;
  if (contains(name, "ffn_up")) return Category::FfnUp;
  if (contains(name, "ffn_gate")) return Category::FfnGate;
  if (contains(name, "ffn_down")) return Category::FfnDown;
  return Category::Other;
}

bool allows_quantization(const std::string& name, const std::vector<int64_t>& ne) {
  if (n_dims(ne) < 2) return false;
  if (!ends_with(name, "weight")) return false;
  if (contains(name, "_norm.weight")) return false;
  if (contains(name, "ffn_gate_inp.weight")) return false;  // routers stay float
  if (contains(name, "ssm_conv1d")) return false;
  return true;
}

bool use_more_bits(int i_layer, int n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

int block_of(const std::string& name) {
  int block = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &block) != 1) return -1;
  return block;
}

uint32_t block_elems(TensorType t) { return tensor_type_info(t).block_elems; }

// tensor_type_fallback: a type whose block does not divide the row length is replaced.
TensorType with_fallback(TensorType t, int64_t ncols) {
  if (ncols % block_elems(t) == 0) return t;
  TensorType f;
  switch (t) {
    case TensorType::Q4_K: f = TensorType::Q5_0; break;
    case TensorType::Q5_K: f = TensorType::Q5_1; break;
    case TensorType::Q6_K: f = TensorType::Q8_0; break;
    default: f = TensorType::F16; break;  // llama.cpp has no fallback for Q8_0 (rows of 32k never occur here)
  }
  return ncols % block_elems(f) == 0 ? f : TensorType::F16;
}

class QuantMixture {
 public:
  QuantMixture(const ModelConfig& c, FileType type, const std::vector<TensorSpec>& specs)
      : config_(c), type_(type), n_block_(static_cast<int>(c.n_block())) {
    for (const auto& s : specs)
      if (!s.optional && category_of(s.name) == Category::AttnV) ++n_attention_wv_;
  }

  TensorType choose(const std::string& name, const std::vector<int64_t>& ne) {
    const TensorType base = type_ == FileType::Q8_0 ? TensorType::Q8_0 : TensorType::Q4_K;
    TensorType t = base;
    const Category cat = category_of(name);
    const bool eight_experts = config_.n_expert == 8;
    if (cat == Category::Output) {
      if (ne[0] % block_elems(base) != 0)
        t = TensorType::Q8_0;
      else if (base != TensorType::Q8_0)
        t = TensorType::Q6_K;
    } else if (cat == Category::AttnV) {
      if (type_ == FileType::Q4_K_M && use_more_bits(i_attention_wv_, n_attention_wv_)) t = TensorType::Q6_K;
      if (eight_experts) t = TensorType::Q8_0;
      ++i_attention_wv_;
    } else if (cat == Category::AttnK) {
      if (eight_experts) t = TensorType::Q8_0;
    } else if (cat == Category::FfnDown) {
      // Dense models count ffn_down tensors; MoE models read the layer from the name.
      const int layer = config_.n_expert > 1 ? block_of(name) : i_ffn_down_;
      if (type_ == FileType::Q4_K_M && use_more_bits(layer, n_block_)) t = TensorType::Q6_K;
      ++i_ffn_down_;
    } else if (cat == Category::AttnOutput) {
      if (eight_experts && type_ == FileType::Q4_K_M) t = TensorType::Q5_K;
    }
    return with_fallback(t, ne[0]);
  }

 private:
  const ModelConfig& config_;
  FileType type_;
  int n_block_;
  int n_attention_wv_ = 0;
  int i_attention_wv_ = 0;
  int i_ffn_down_ = 0;
};

}  // namespace

std::vector<PlannedTensor> plan_tensors(const ModelConfig& config, FileType type) {
  const std::vector<TensorSpec> specs = expected_tensors(config);
  QuantMixture mixture(config, type, specs);
  std::vector<PlannedTensor> out;
  for (const TensorSpec& s : specs) {
    // Optional tensors are left out, except the untied LM head and the MTP head's own norm,
    // which real conversions contain.
    const bool keep = !s.optional || s.name == "output.weight" || ends_with(s.name, "nextn.shared_head_norm.weight");
    if (!keep) continue;
    PlannedTensor p{s.name, TensorType::F32, s.ne};
    switch (type) {
      case FileType::F32:
        break;
      case FileType::F16:
        // convert_hf_to_gguf.py keeps 1-D tensors, non-".weight" tensors, routers and conv F32.
        // (by the stored shape: the converter keeps [H, 1] two-dimensional)
        if (s.ne.size() >= 2 && ends_with(s.name, ".weight") && !contains(s.name, "ffn_gate_inp.weight") &&
            !contains(s.name, "ssm_conv1d"))
          p.type = TensorType::F16;
        break;
      case FileType::Q8_0:
      case FileType::Q4_K_M:
        // llama-quantize writes through ggml, which drops trailing dimensions of 1.
        p.ne = squeezed(s.ne);
        if (allows_quantization(s.name, s.ne)) p.type = mixture.choose(s.name, p.ne);
        break;
    }
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace peregrine::synthetic
