#include "cli_bench_traffic.h"

#include <charconv>
#include <optional>
#include <string_view>

namespace peregrine::cli {
namespace {

// The N of "blk.N.…", nullopt for the global tensors.
std::optional<int64_t> block_index(std::string_view name) {
  constexpr std::string_view prefix = "blk.";
  if (name.substr(0, prefix.size()) != prefix) return std::nullopt;
  int64_t index = 0;
  const char* first = name.data() + prefix.size();
  const auto [end, ec] = std::from_chars(first, name.data() + name.size(), index);
  if (ec != std::errc() || end == first) return std::nullopt;
  return index;
}

bool contains(std::string_view name, std::string_view part) { return name.find(part) != std::string_view::npos; }

}  // namespace

DecodeTraffic decode_traffic(const ModelConfig& config, const std::vector<GgufTensorInfo>& tensors,
                             const std::vector<GgufTensorInfo>* mtp_tensors, TensorType kv_type) {
  DecodeTraffic t;
  // Expert tensors hold all n_expert experts; a token reads the n_expert_used it is routed to.
  auto read_bytes = [&](const GgufTensorInfo& info) -> uint64_t {
    if (config.is_moe() && config.n_expert > 0 && contains(info.name, "_exps."))
      return info.n_bytes * static_cast<uint64_t>(config.n_expert_used) / static_cast<uint64_t>(config.n_expert);
    return info.n_bytes;
  };
  bool has_output = false;
  uint64_t lm_head_bytes = 0, token_embd_bytes = 0, draft_head_bytes = 0;
  bool has_draft_head = false;
  auto add_block_tensor = [&](const GgufTensorInfo& info, int64_t block) {
    if (block < config.n_layer) {
      t.trunk_weight_bytes += read_bytes(info);
    } else if (contains(info.name, "nextn.shared_head_head")) {
      has_draft_head = true;
      draft_head_bytes = info.n_bytes;
    } else if (!contains(info.name, "nextn.embed_tokens")) {  // a gathered row, like token_embd
      t.draft_weight_bytes += read_bytes(info);
    }
  };
  for (const GgufTensorInfo& info : tensors) {
    if (auto block = block_index(info.name)) {
      add_block_tensor(info, *block);
    } else if (info.name == "token_embd.weight") {
      token_embd_bytes = info.n_bytes;
    } else {
      if (info.name == "output.weight") {
        has_output = true;
        lm_head_bytes = info.n_bytes;
      }
      t.trunk_weight_bytes += info.n_bytes;  // output, output_norm
    }
  }
  if (mtp_tensors)
    for (const GgufTensorInfo& info : *mtp_tensors)
      if (auto block = block_index(info.name); block && *block >= config.n_layer) add_block_tensor(info, *block);
  if (!has_output) {  // tied embeddings: token_embd is the LM head, read whole every step
    lm_head_bytes = token_embd_bytes;
    t.trunk_weight_bytes += token_embd_bytes;
  }
  if (config.has_mtp()) t.draft_weight_bytes += has_draft_head ? draft_head_bytes : lm_head_bytes;
  else t.draft_weight_bytes = 0;

  int64_t n_delta_layers = 0;
  for (LayerKind kind : config.layer_kinds) n_delta_layers += kind == LayerKind::DeltaNet ? 1 : 0;
  const uint64_t conv_state = static_cast<uint64_t>((config.ssm_conv_kernel - 1) * config.ssm_conv_channels()) * 4;
  const uint64_t recurrent_state =
      static_cast<uint64_t>(config.ssm_time_step_rank * config.ssm_state_size * config.ssm_state_size) * 4;
  t.delta_state_bytes = 2 * static_cast<uint64_t>(n_delta_layers) * (conv_state + recurrent_state);

  const uint64_t kv_row = tensor_bytes(tensor_type_info(kv_type), static_cast<uint64_t>(config.n_head_kv * config.head_dim));
  t.kv_bytes_per_position = 2 * static_cast<uint64_t>(config.n_full_attention_layers()) * kv_row;
  return t;
}

}  // namespace peregrine::cli
