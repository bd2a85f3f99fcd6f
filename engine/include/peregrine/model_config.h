// The typed description of a Qwen 3.5/3.6 model (`qwen35` dense, `qwen35moe` mixture of experts),
// read from GGUF metadata, and the check of every tensor against it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

#include "peregrine/tensor_type.h"

namespace peregrine {

class GgufFile;

enum class Architecture { Qwen35, Qwen35Moe };

// The most blocks (trunk + MTP) a model may have: llama.cpp's LLAMA_MAX_LAYERS, so no file it
// loads has more. ModelConfig::from_gguf and make-synthetic refuse more.
inline constexpr int64_t kMaxBlockCount = 512;
enum class LayerKind { DeltaNet, FullAttention };

struct ModelConfig {
  Architecture arch = Architecture::Qwen35;
  std::string arch_name;          // "qwen35" / "qwen35moe" (the GGUF metadata prefix)
  std::string name;               // general.name, may be empty

  int64_t n_vocab = 0;            // rows of token_embd
  int64_t n_embd = 0;             // hidden size H
  int64_t n_layer = 0;            // trunk layers (block_count - nextn_predict_layers)
  int64_t n_nextn = 0;            // MTP blocks stored in this file (0 or 1), at block index n_layer
  int64_t context_length = 0;     // trained context
  float rms_eps = 1e-6f;
  std::vector<LayerKind> layer_kinds;  // size n_layer

  // Full attention.
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;           // attention.key_length (== value_length), not n_embd / n_head
  int64_t n_rot = 0;              // rope.dimension_count
  float rope_freq_base = 1e7f;
  std::vector<int32_t> rope_sections;  // rope.dimension_sections (4 entries, counts of rotary pairs)

  // Gated DeltaNet.
  int64_t ssm_conv_kernel = 0;    // 4
  int64_t ssm_state_size = 0;     // d (key and value head dim)
  int64_t ssm_group_count = 0;    // Hk key heads
  int64_t ssm_time_step_rank = 0; // Hv value heads
  int64_t ssm_inner_size = 0;     // Hv * d
  int64_t full_attention_interval = 4;

  // Dense FFN (qwen35).
  int64_t n_ff = 0;

  // Mixture of experts (qwen35moe).
  int64_t n_expert = 0;
  int64_t n_expert_used = 0;
  int64_t n_ff_expert = 0;
  int64_t n_ff_shared_expert = 0;

  bool has_mtp() const { return n_nextn > 0; }
  int64_t n_block() const { return n_layer + n_nextn; }  // block_count: trunk + MTP blocks
  bool has_shared_expert() const { return n_ff_shared_expert > 0; }
  int64_t n_full_attention_layers() const;  // trunk layers of kind FullAttention
  bool is_moe() const { return arch == Architecture::Qwen35Moe; }
  int64_t ssm_key_dim() const { return ssm_group_count * ssm_state_size; }    // Hk * d
  int64_t ssm_conv_channels() const { return 2 * ssm_key_dim() + ssm_inner_size; }

  // Reads and validates `{arch}.*` metadata. Throws peregrine::Error naming the file and key.
  static ModelConfig from_gguf(const GgufFile& file);

  // Checks the invariants from_gguf enforces (positive dims, Hv multiple of Hk, inner_size ==
  // Hv*d, n_rot even and <= head_dim, sections sum to n_rot/2, experts_used <= experts, ...).
  // Throws peregrine::Error starting with `source`. Used for configs built in code too.
  void validate(const std::string& source) const;
};

std::string_view architecture_name(Architecture arch);  // "qwen35" / "qwen35moe"
std::string_view layer_kind_name(LayerKind kind);       // "delta_net" / "full_attention"

// One tensor the model needs: name, allowed shape (ggml `ne` order) and whether it may be absent.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> ne;
  bool optional = false;
  bool float_only = false;  // norms, conv, ssm_a, dt bias, ...: must be F32 (or F16/BF16)
  // Other shapes that are equally valid (ffn_gate_inp_shexp: [H, 1] from the converter, [H]
  // from llama-quantize, which drops trailing dimensions of 1).
  std::vector<std::vector<int64_t>> alt_ne;
  // For an optional fused tensor (ffn_gate_up_exps): when it is present the named tensors must
  // be absent, when it is absent they are required.
  std::vector<std::string> replaces;
  int64_t block = -1;       // blk.N index, -1 for token_embd / output_norm / output
};

// Every tensor of the trunk (and the MTP block when config.has_mtp()).
std::vector<TensorSpec> expected_tensors(const ModelConfig& config);

struct TensorProblem {
  std::string tensor;
  std::string what;  // "missing", "shape [64, 128] expected [64, 256]", "type q4_K not allowed: this tensor
                     // must be f32, f16 or bf16", "unexpected tensor: ...", ...
};

// Checks presence, type and shape of every expected tensor; unknown extra tensors are reported too.
std::vector<TensorProblem> check_tensors(const ModelConfig& config, const GgufFile& file);

}  // namespace peregrine
