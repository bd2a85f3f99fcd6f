// The per-sequence state behind peregrine::Sequence: caches, recurrent states and outputs.
#pragma once

#include <vector>

#include "peregrine/model.h"
#include "peregrine/model_config.h"

namespace peregrine {

// F32 keys and values of one full-attention layer, [n_ctx][n_head_kv · head_dim] each.
struct KvCache {
  std::vector<float> k, v;
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
  Impl(const ModelConfig& config, int64_t context_length);
  void reset();

  int64_t n_ctx = 0;
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
