// The tensors of a qwen35 / qwen35moe GGUF bound to named fields. Matrices stay views into the
// mapping (quantized as stored); the small vectors (norms, conv taps, ssm_a, dt bias) are
// converted to float once, because every backend wants them as float anyway.
// place_on() then moves both to where the backend reads them (a no-op for host memory).
#pragma once

#include <optional>
#include <vector>

#include "peregrine/backend.h"
#include "peregrine/model.h"
#include "peregrine/model_config.h"

namespace peregrine {

class GgufFile;

// A small float vector of the model: converted on the host at bind time, read by the operations
// from backend memory (`placed`, set by Qwen35Weights::place_on) or, for host backends, in place.
struct FloatParam {
  std::vector<float> host;
  const float* placed = nullptr;
  const float* data() const { return placed ? placed : host.data(); }
  int64_t size() const { return static_cast<int64_t>(host.size()); }
};

struct DeltaNetWeights {
  WeightView qkv;     // attn_qkv: rows [q heads | k heads | v heads]
  WeightView gate;    // attn_gate: the output gate z, Hv·d rows
  WeightView beta;    // ssm_beta: one row per value head
  WeightView alpha;   // ssm_alpha: one row per value head
  WeightView out;     // ssm_out
  FloatParam conv1d;   // [channels][kernel]
  FloatParam dt_bias;  // [Hv]
  FloatParam a;        // [Hv], already −exp(A_log)
  FloatParam norm;     // [d], shared by all heads
};

struct AttentionWeights {
  WeightView q;       // attn_q: per head, head_dim query rows then head_dim gate rows
  WeightView k, v, out;
  FloatParam q_norm, k_norm;  // [head_dim]
};

struct FfnWeights {
  bool moe = false;
  // Dense SwiGLU.
  WeightView gate, up, down;
  // Mixture of experts: expert e's gate rows are gate_exps.rows(e·exps_stride, n_ff_expert),
  // likewise up_exps (a fused gate_up tensor is bound as two offset views with stride 2·n_ff).
  WeightView router;              // ffn_gate_inp [E rows]
  WeightView gate_exps, up_exps;  // rows of every expert
  int64_t exps_stride = 0;
  WeightView down_exps;           // expert e = rows(e·n_embd, n_embd)
  WeightView shexp_gate_inp;      // one row: the shared expert's gate logit
  WeightView shexp_gate, shexp_up, shexp_down;
};

struct LayerWeights {
  LayerKind kind = LayerKind::DeltaNet;
  FloatParam attn_norm;
  FloatParam post_attention_norm;  // the norm in front of the FFN
  DeltaNetWeights delta;                   // when kind == DeltaNet
  AttentionWeights attn;                   // when kind == FullAttention
  FfnWeights ffn;
};

struct MtpWeights {
  FloatParam enorm, hnorm, shared_head_norm;
  WeightView eh_proj;       // [2·n_embd → n_embd], embedding half first
  WeightView embed;         // nextn.embed_tokens or token_embd
  WeightView head;          // nextn.shared_head_head or output
  LayerWeights block;       // a full-attention block
};

struct Qwen35Weights {
  WeightView token_embd;
  WeightView output;        // output.weight or token_embd (tied)
  FloatParam output_norm;
  std::vector<LayerWeights> layers;
  std::optional<MtpWeights> mtp;

  // Throws peregrine::Error naming the file and tensor when one is missing or mis-shaped.
  // With `mtp_file`, the MTP block (config.has_mtp()) is bound from that MTP-only file instead.
  static Qwen35Weights bind(const GgufFile& file, const ModelConfig& config, const GgufFile* mtp_file = nullptr);

  // Bytes place_on would put in backend memory: every tensor a matrix view reads (whole tensors,
  // once each; the embedding tables stay on the host, see place_on) plus the float vectors.
  uint64_t placed_bytes(const GgufFile& file, const GgufFile* mtp_file) const;
  // Moves the matrices and float vectors into backend memory (Backend::place_weights), each GGUF
  // tensor once (tied and fused views keep sharing it). The embedding tables (token_embd and the
  // MTP embed) stay host views: a lookup reads a few rows, which the forward pass dequantizes on the
  // host and uploads, so no device needs a kernel or memory for them. No-op for host backends.
  // `progress` is told the bytes placed after each tensor (and 0 / total at the ends) and may stop
  // the load: LoadCancelled is thrown; what was placed stays with the backend (its owner frees it).
  void place_on(Backend& backend, const GgufFile& file, const GgufFile* mtp_file,
                const LoadProgressCallback& progress = {});
};

}  // namespace peregrine
