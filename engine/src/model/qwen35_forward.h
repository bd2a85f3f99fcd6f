// One forward step (at most max_batch tokens) of the qwen35 / qwen35moe trunk and of its MTP
// head, written against the Backend operations. Owns the activation scratch, allocated once in
// the backend's memory. A device backend's step writes its logits into backend memory the caller
// names and keeps its hidden rows until hand_over() downloads them, so that nothing inside the
// step waits for the device (a step may be captured as one CUDA graph).
#pragma once

#include <span>
#include <vector>

#include "model/qwen35_state.h"
#include "model/qwen35_weights.h"
#include "model/tensor_observer.h"
#include "peregrine/backend.h"
#include "peregrine/model.h"
#include "peregrine/mtp_limits.h"

namespace peregrine {

// Where one step writes its results (rows of this step only).
struct StepOutputs {
  float* hidden = nullptr;          // host [T][n_embd] after output_norm / shared_head_norm (hand_over on a device)
  float* logits = nullptr;          // host backends: [T][n_vocab] or [1][n_vocab]; null: no logits this step
  float* backend_logits = nullptr;  // device backends: the same rows, in backend memory; null: no logits
  bool all_logits = false;          // the rows are those of every token (else of the last one)
};

class Qwen35Forward {
 public:
  Qwen35Forward(Backend& backend, const ModelConfig& config, const Qwen35Weights& weights,
                const ModelOptions& options);

  void trunk_step(Sequence::Impl& seq, std::span<const int32_t> tokens, int64_t start, const StepOutputs& out);
  // hidden_in: [T][n_embd] host rows.
  void mtp_step(Sequence::Impl& seq, std::span<const int32_t> tokens, const float* hidden_in, int64_t start,
                const StepOutputs& out);
  // After a step of T tokens on a device backend: its hidden rows to out.hidden (the host waits
  // here, outside the step). Nothing to do on a host backend.
  void hand_over(const StepOutputs& out, int64_t T);

  // Steps of up to this many tokens (decode, MTP verify, drafts) keep the MoE routing in backend
  // memory (no host round trip per MoE layer); longer steps group tokens per expert on the host.
  static constexpr int64_t kBackendRoutedTokens = kMaxVerifyTokens;

  // Backend memory the scratch takes for a configuration (load-time budgets).
  static uint64_t scratch_bytes(const ModelConfig& config, int64_t max_batch);

 private:
  // Layer il (n_layer: the MTP block); kv for attention layers, delta for delta-net layers.
  void decoder_layer(const LayerWeights& L, int64_t il, KvCache* kv, DeltaNetState* delta, int64_t T);
  bool record_checkpoints_ = false;  // this trunk step keeps the delta-net state after every token
  const TensorObserver* observer_ = nullptr;  // this step's sequence's observer, if it has one
  void delta_net_mixer(const DeltaNetWeights& w, DeltaNetState& state, const float* in, float* out, int64_t T);
  void delta_net_recorded(DeltaNetState& state, const HeadView& q, const HeadView& k,
                          const HeadView& v, const HeadView& core, int64_t T);
  void attention_mixer(const AttentionWeights& w, KvCache& kv, const float* in, float* out, int64_t T);
  void swiglu_ffn(const WeightView& gate, const WeightView& up, const WeightView& down, const float* in, float* out,
                  int64_t T);
  void moe_ffn(const FfnWeights& w, int64_t il, const float* in, float* out, int64_t T);
  // The routed experts of moe_ffn: grouped per expert on the host (long steps), or with the
  // routing left in backend memory (steps of at most kBackendRoutedTokens tokens).
  void routed_experts_grouped(const FfnWeights& w, int64_t il, const float* in, float* out, int64_t T);
  void routed_experts_on_backend(const FfnWeights& w, int64_t il, const float* in, float* out, int64_t T);
  bool route_on_backend(int64_t T) const;
  // The final norm and the LM head, into the step's outputs (hidden rows stay in hidden_out_ on a device).
  void finish(const FloatParam& norm, const WeightView& head, int64_t T, const StepOutputs& out);
  // Embedding rows of `tokens` into dst (backend memory). The table is a host view (see
  // Qwen35Weights::place_on): host backends read it directly, others get host-dequantized rows.
  void embed(const WeightView& table, std::span<const int32_t> tokens, float* dst);
  void save_checkpoint(const BackendArray<float>& state, float* slot);
  void set_positions(int64_t start, int64_t T);
  // Named tensors for the step's observer (tensor_observer.h); nothing happens without one.
  // show: [rows][cols] floats in backend memory (copied to the host first). show_routing: the
  // routing of the T tokens in route_ids_ / route_w_.
  void show(std::string_view name, int64_t il, const float* values, int64_t rows, int64_t cols);
  void show_routing(int64_t il, int64_t T);

  Backend& be_;
  const ModelConfig& c_;
  const Qwen35Weights& w_;
  ModelOptions options_;
  RopeParams rope_;

  // Activation scratch in backend memory, [max_batch][width] each.
  using Scratch = BackendArray<float>;
  Scratch x_, normed_, mix_;                      // residual stream, normed input, branch output
  Scratch qkv_, conv_, z_, alpha_, beta_in_, g_, beta_, core_;  // delta-net
  Scratch qg_, k_, v_, att_;                      // attention
  Scratch ff_gate_, ff_up_, ff_act_;              // dense FFN / shared expert
  Scratch router_, expert_x_, expert_out_, shexp_gate_;  // MoE
  Scratch mtp_cat_;                               // [e ; h]
  // Backend-routed MoE, [min(max_batch, kBackendRoutedTokens)][k][width] each.
  Scratch slot_gate_, slot_up_, slot_act_, slot_out_, slot_weights_;
  BackendArray<int32_t> slot_ids_;
  Scratch hidden_out_;                            // the step's hidden rows until hand_over()
  // Host side: positions, the routing the model reads back, embedding rows being uploaded, and
  // the copies shown to an observer.
  std::vector<int32_t> positions_;
  std::vector<int32_t> route_ids_, expert_rows_;
  std::vector<float> route_w_, expert_row_w_;
  std::vector<float> embed_host_, observed_;
};

}  // namespace peregrine
