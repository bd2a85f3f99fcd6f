// The per-sequence state behind peregrine::Sequence: caches, recurrent states and outputs.
#pragma once

#include <vector>

#include "peregrine/backend.h"
#include "peregrine/model.h"
#include "peregrine/model_config.h"

namespace peregrine {

// Keys and values of one full-attention layer, [n_ctx][n_head_kv · head_dim] values each,
// encoded as `type` (F32, F16 or Q8_0; ModelOptions::kv_type), rows `row_bytes` apart.
struct KvCache {
  TensorType type = TensorType::F32;
  int64_t n_kv_heads = 0;
  uint64_t row_bytes = 0;
  std::vector<uint8_t> k, v;

  void allocate(TensorType kv_type, int64_t kv_heads, int64_t head_dim, int64_t n_ctx);
  uint8_t* k_row(int64_t pos) { return k.data() + static_cast<uint64_t>(pos) * row_bytes; }
  uint8_t* v_row(int64_t pos) { return v.data() + static_cast<uint64_t>(pos) * row_bytes; }
  KvView view() const { return {type, k.data(), v.data(), row_bytes, n_kv_heads}; }
  uint64_t bytes() const { return k.size() + v.size(); }
};

// One delta-net layer: conv state [kernel-1][channels] (the last pre-conv inputs) and the
// recurrent matrix state [Hv][d][d] (key index × value index).
struct DeltaNetState {
  std::vector<float> conv;
  std::vector<float> recurrent;
};

// The routing of one MoE layer over the tokens of the last call (diagnosis only).
struct RoutingCapture {
  std::vector<int32_t> experts;
  std::vector<float> weights;
  std::vector<float> shared_gates;
  void clear() {
    experts.clear();
    weights.clear();
    shared_gates.clear();
  }
};

struct Sequence::Impl {
  Impl(const ModelConfig& config, int64_t context_length, TensorType kv_type);
  void reset();
  SequenceMemory memory() const;

  int64_t n_ctx = 0;
  TensorType kv_type = TensorType::F32;
  int64_t n_past = 0;
  int64_t mtp_n_past = 0;
  std::vector<KvCache> kv;             // per trunk layer; empty for delta-net layers
  std::vector<DeltaNetState> delta;    // per trunk layer; empty for attention layers
  KvCache mtp_kv;                      // the MTP block's own cache (empty without MTP)

  // Outputs of the last calls (resized per call; capacity only grows).
  std::vector<float> logits, hidden, mtp_logits, mtp_hidden;
  bool capture_layer_inputs = false;
  std::vector<float> layer_inputs;     // [n_layer][n_tokens][n_embd] when capturing
  bool capture_routing = false;
  std::vector<RoutingCapture> routing; // [n_layer + 1] when capturing (the last is the MTP block)
};

}  // namespace peregrine
