// One forward step (at most max_batch tokens) of the qwen35 / qwen35moe trunk and of its MTP
// head, written against the Backend operations. Owns the activation scratch, allocated once.
#pragma once

#include <span>
#include <vector>

#include "model/qwen35_state.h"
#include "model/qwen35_weights.h"
#include "peregrine/backend.h"
#include "peregrine/model.h"

namespace peregrine {

// Where one step writes its results (rows of this step only).
struct StepOutputs {
  float* hidden = nullptr;        // [T][n_embd] after output_norm / shared_head_norm
  float* logits = nullptr;        // [T][n_vocab] or [1][n_vocab]; null: no logits this step
  bool all_logits = false;
  float* layer_inputs = nullptr;  // optional: row block of layer 0; layer il at + il·layer_stride
  int64_t layer_stride = 0;
};

class Qwen35Forward {
 public:
  Qwen35Forward(Backend& backend, const ModelConfig& config, const Qwen35Weights& weights,
                const ModelOptions& options);

  void trunk_step(Sequence::Impl& seq, std::span<const int32_t> tokens, int64_t start, const StepOutputs& out);
  void mtp_step(Sequence::Impl& seq, std::span<const int32_t> tokens, const float* hidden_in, int64_t start,
                const StepOutputs& out);

 private:
  void decoder_layer(const LayerWeights& L, KvCache* kv, DeltaNetState* delta, RoutingCapture* routing, int64_t T);
  bool record_checkpoints_ = false;  // this trunk step keeps the delta-net state after every token
  void delta_net_mixer(const DeltaNetWeights& w, DeltaNetState& state, const float* in, float* out, int64_t T);
  void delta_net_recorded(DeltaNetState& state, const HeadView& q, const HeadView& k,
                          const HeadView& v, const HeadView& core, int64_t T);
  void attention_mixer(const AttentionWeights& w, KvCache& kv, const float* in, float* out, int64_t T);
  void swiglu_ffn(const WeightView& gate, const WeightView& up, const WeightView& down, const float* in, float* out,
                  int64_t T);
  void moe_ffn(const FfnWeights& w, const float* in, float* out, RoutingCapture* routing, int64_t T);
  void lm_head(const WeightView& head, const float* hidden, int64_t T, const StepOutputs& out);
  void set_positions(int64_t start, int64_t T);
  void record_routing(RoutingCapture& r, int64_t T) const;  // diagnosis, allocates

  Backend& be_;
  const ModelConfig& c_;
  const Qwen35Weights& w_;
  ModelOptions options_;
  RopeParams rope_;

  // Activation scratch, [max_batch][width] each.
  std::vector<int32_t> positions_;
  std::vector<float> x_, normed_, mix_;          // residual stream, normed input, branch output
  std::vector<float> qkv_, conv_, z_, alpha_, beta_in_, g_, beta_, core_;  // delta-net
  std::vector<float> qg_, k_, v_, att_;          // attention
  std::vector<float> ff_gate_, ff_up_, ff_act_;  // dense FFN / shared expert
  std::vector<float> router_, route_w_, expert_x_, expert_out_, shexp_gate_;  // MoE
  std::vector<int32_t> route_ids_, expert_rows_;
  std::vector<float> expert_row_w_;
  std::vector<float> mtp_cat_;                   // [e ; h]
};

}  // namespace peregrine
