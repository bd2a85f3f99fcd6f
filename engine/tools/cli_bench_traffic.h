// Memory traffic of one decode step, from a model's tensor table and configuration: what
// `peregrine-cli bench --roofline-gbs` divides by the measured step time. Decode is bound by
// memory reads, so bytes per token / device read bandwidth is the fastest a step can be.
#pragma once

#include <cstdint>
#include <vector>

#include "peregrine/gguf.h"
#include "peregrine/model_config.h"
#include "peregrine/tensor_type.h"

namespace peregrine::cli {

struct DecodeTraffic {
  // Weights one trunk decode step reads: every trunk tensor once (the LM head included), for MoE
  // the expert tensors scaled by n_expert_used / n_expert (only the routed experts are read);
  // token_embd excluded (one row is gathered), unless it doubles as the LM head (no output.weight).
  uint64_t trunk_weight_bytes = 0;
  // Weights one MTP draft step reads: the NextN block (experts scaled the same way) plus its LM
  // head (shared_head_head, else the trunk's). 0 for a model without an MTP block.
  uint64_t draft_weight_bytes = 0;
  // Delta-net conv + recurrent states (F32), each read and written once per step.
  uint64_t delta_state_bytes = 0;
  // KV cache bytes read per context position by all full-attention layers (keys + values).
  uint64_t kv_bytes_per_position = 0;

  // Bytes one decode step at `context` positions moves: weights + delta-net states + KV reads.
  uint64_t bytes_per_token(int64_t context) const {
    return trunk_weight_bytes + delta_state_bytes + kv_bytes_per_position * static_cast<uint64_t>(context);
  }
};

// `tensors`: the model file's table; `mtp_tensors`: a separate MTP file's table, or null (only its
// NextN block tensors are used). `kv_type`: the KV cache encoding (ModelOptions::kv_type).
DecodeTraffic decode_traffic(const ModelConfig& config, const std::vector<GgufTensorInfo>& tensors,
                             const std::vector<GgufTensorInfo>* mtp_tensors, TensorType kv_type);

}  // namespace peregrine::cli
