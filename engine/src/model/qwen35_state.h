// The per-sequence state behind peregrine::Sequence: caches, recurrent states and outputs.
#pragma once

#include <memory>
#include <vector>

#include "model/backend_logits.h"
#include "model/tensor_observer.h"
#include "peregrine/backend.h"
#include "peregrine/model.h"
#include "peregrine/model_config.h"

namespace peregrine {

// Keys and values of one full-attention layer, [n_ctx][n_head_kv · head_dim] values each,
// encoded as `type` (F32, F16 or Q8_0; ModelOptions::kv_type), rows `row_bytes` apart, in the
// backend's memory (like every state below: the host reaches it through the backend only).
struct KvCache {
  TensorType type = TensorType::F32;
  int64_t n_kv_heads = 0;
  uint64_t row_bytes = 0;
  BackendArray<uint8_t> k, v;

  void allocate(Backend& backend, TensorType kv_type, int64_t kv_heads, int64_t head_dim, int64_t n_ctx);
  uint8_t* k_row(int64_t pos) { return k.data() + static_cast<uint64_t>(pos) * row_bytes; }
  uint8_t* v_row(int64_t pos) { return v.data() + static_cast<uint64_t>(pos) * row_bytes; }
  KvView view() const { return {type, k.data(), v.data(), row_bytes, n_kv_heads}; }
  uint64_t bytes() const { return k.bytes() + v.bytes(); }
};

// One delta-net layer: conv state [kernel-1][channels] (the last pre-conv inputs) and the
// recurrent matrix state [Hv][d][d] (key index × value index).
struct DeltaNetState {
  BackendArray<float> conv;
  BackendArray<float> recurrent;
  // Speculative verification (Sequence::set_delta_checkpoints): slot t holds the conv and
  // recurrent state after token t of the last checkpointed evaluate, so the layer can roll back
  // to any position of that call without a second forward pass. Empty when off.
  BackendArray<float> conv_slots, recurrent_slots;
  float* conv_slot(int64_t t) { return conv_slots.data() + t * conv.size(); }
  float* recurrent_slot(int64_t t) { return recurrent_slots.data() + t * recurrent.size(); }
};

struct Sequence::Impl {
  std::shared_ptr<Backend> backend;  // first member: destroyed after the states that live in it
  // The sequence keeps the backend alive: its states live in the backend's memory.
  Impl(std::shared_ptr<Backend> backend, const ModelConfig& config, int64_t context_length, TensorType kv_type);
  void reset();
  SequenceMemory memory() const;
  // What a sequence of this configuration holds, without allocating one (load-time budgets).
  static SequenceMemory planned_memory(const ModelConfig& config, int64_t context_length, TensorType kv_type);

  int64_t n_ctx = 0;
  TensorType kv_type = TensorType::F32;
  int64_t n_past = 0;
  int64_t mtp_n_past = 0;
  std::vector<KvCache> kv;             // per trunk layer; empty for delta-net layers
  std::vector<DeltaNetState> delta;    // per trunk layer; empty for attention layers
  KvCache mtp_kv;                      // the MTP block's own cache (empty without MTP)

  // Delta-net checkpoints for rollback (see DeltaNetState): capacity in tokens per call, and the
  // positions [checkpoint_start, checkpoint_start + checkpoint_count) the slots describe
  // (count 0: nothing to roll back to).
  int64_t checkpoint_capacity = 0;
  int64_t checkpoint_start = 0;
  int64_t checkpoint_count = 0;
  int64_t checkpoint_tokens = 0;    // tokens of that call (count shrinks on rollback, this not)
  bool record_checkpoints = false;  // set by Model::evaluate for the step being run
  // The checkpointed call's full outputs, moved here by the first rollback after it (so a second
  // rollback still finds every row); valid while checkpoint_outputs_saved.
  std::vector<float> checkpoint_logits, checkpoint_hidden;
  bool checkpoint_outputs_saved = false;
  void set_checkpoint_capacity(int64_t tokens);
  void rollback(int64_t position, int64_t n_vocab, int64_t n_embd);  // Model::rollback, after its checks

  // Outputs of the last calls (resized per call; capacity only grows).
  std::vector<float> logits, hidden, mtp_logits, mtp_hidden;
  // On a device backend the logits stay in backend memory; `logits` / `mtp_logits` are filled
  // from there only when Sequence::logits() / mtp_logits() are asked for (backend_logits.h).
  BackendLogits backend_logits, backend_mtp_logits;
  TensorObserver observer;  // shown the forward pass's named tensors when set (tensor_observer.h)
};

// The state behind a Sequence (the public class does not expose it): for the model's code and
// for tests that inspect caches and states.
Sequence::Impl& sequence_state(Sequence& seq);
const Sequence::Impl& sequence_state(const Sequence& seq);

}  // namespace peregrine
