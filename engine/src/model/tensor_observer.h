// Named intermediate tensors of the forward pass, for tests and diagnosis: in the manner of
// llama.cpp's graph callback cb(cur, "name", il), the forward pass shows a sequence's observer
// (observe_tensors) the tensors named below, one call per step, layer and name, as host copies.
// Without an observer nothing is copied. With one, every step of the sequence runs uncaptured
// (no step graph: the copies wait for the backend inside the step).
//
// Layer indices: 0..n_layer-1 are the trunk layers, n_layer is the MTP block. Shapes are for a
// step of T tokens (a call longer than max_batch is shown step by step, in order).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <variant>

namespace peregrine {

class Sequence;

namespace tensor_name {
// [T][n_embd] the residual stream entering the layer (layer 0: the token embeddings).
inline constexpr std::string_view kLayerInput = "layer_input";
// The MoE FFN (qwen35moe layers only):
// [T][n_embd] its input rows, after post_attention_norm.
inline constexpr std::string_view kMoeInput = "ffn_moe_input";
// [T][n_expert_used] int32: the experts each token chose, best first.
inline constexpr std::string_view kMoeExperts = "ffn_moe_experts";
// [T][n_expert_used] their weights (softmax over all experts, renormalised over the chosen ones).
inline constexpr std::string_view kMoeWeights = "ffn_moe_weights";
// [T][1] the shared expert's gate logit ffn_gate_inp_shexp·x (its scale is the sigmoid of it).
inline constexpr std::string_view kSharedExpertGate = "ffn_shexp_gate";
// [T][n_embd] the FFN's output (shared plus routed experts), before the residual add.
inline constexpr std::string_view kMoeOutput = "ffn_moe_out";
}  // namespace tensor_name

// A tensor in host memory, [rows][cols] row-major, of floats or int32 ids. Valid during the
// observer's call only.
struct ObservedTensor {
  int64_t rows = 0, cols = 0;
  std::variant<std::span<const float>, std::span<const int32_t>> values;

  // The values as T (float or int32_t); throws std::bad_variant_access for the other type.
  template <class T>
  std::span<const T> as() const {
    return std::get<std::span<const T>>(values);
  }
};

using TensorObserver = std::function<void(std::string_view name, int64_t layer, const ObservedTensor& tensor)>;

// Installs `observer` on `seq` for its later evaluate / evaluate_mtp calls; an empty function
// removes it. The observer must not call back into the model.
void observe_tensors(Sequence& seq, TensorObserver observer);

}  // namespace peregrine
