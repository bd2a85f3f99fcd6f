// The Qwen 3.5 / 3.6 forward pass (llama.cpp architectures `qwen35` and `qwen35moe`), top to
// bottom. Every layer is  x += mixer(rmsnorm(x)·attn_norm);  x += ffn(rmsnorm(x)·post_attention_norm)
// where the mixer is a gated delta-net (three layers of four) or gated full attention, and the
// FFN is a SwiGLU (qwen35) or a mixture of experts with a gated shared expert (qwen35moe).
// The MTP head is one more full-attention block fed [rmsnorm(embed(x_p)); rmsnorm(hidden_{p-1})].
// Semantics and their sources: docs/forward.md and tests/data/qwen35-tiny/README.md.
#include "model/qwen35_forward.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "peregrine/error.h"
#include "peregrine/quant.h"

namespace peregrine {
namespace {

HeadView dense(float* data, int64_t T, int64_t heads, int64_t dim) { return HeadView::dense(data, T, heads, dim); }

}  // namespace

Qwen35Forward::Qwen35Forward(Backend& backend, const ModelConfig& c, const Qwen35Weights& w,
                             const ModelOptions& options)
    : be_(backend), c_(c), w_(w), options_(options) {
  rope_.n_rot = c.n_rot;
  rope_.freq_base = c.rope_freq_base;
  rope_.sections = c.rope_sections;

  const int64_t T = options.max_batch, n = c.n_embd;
  const int64_t hv_d = c.ssm_inner_size, hv = c.ssm_time_step_rank;
  const int64_t n_ff = std::max({c.n_ff, c.n_ff_expert, c.n_ff_shared_expert});
  const int64_t k = std::max<int64_t>(1, c.n_expert_used);
  Backend& be = backend;
  for (auto* v : {&x_, &normed_, &mix_, &expert_x_, &expert_out_, &hidden_out_}) v->reset(be, T * n);
  qkv_.reset(be, T * c.ssm_conv_channels());
  conv_.reset(be, T * c.ssm_conv_channels());
  for (auto* v : {&z_, &core_}) v->reset(be, T * hv_d);
  for (auto* v : {&alpha_, &beta_in_, &g_, &beta_}) v->reset(be, T * hv);
  qg_.reset(be, T * 2 * c.n_head * c.head_dim);
  k_.reset(be, T * c.n_head_kv * c.head_dim);
  v_.reset(be, T * c.n_head_kv * c.head_dim);
  att_.reset(be, T * c.n_head * c.head_dim);
  for (auto* v : {&ff_gate_, &ff_up_, &ff_act_}) v->reset(be, T * n_ff);
  router_.reset(be, T * std::max<int64_t>(1, c.n_expert));
  shexp_gate_.reset(be, T);
  mtp_cat_.reset(be, T * 2 * n);
  if (c.is_moe()) {
    const int64_t slots = std::min(T, kBackendRoutedTokens) * k;
    for (auto* v : {&slot_gate_, &slot_up_, &slot_act_}) v->reset(be, slots * c.n_ff_expert);
    slot_out_.reset(be, slots * n);
    slot_weights_.reset(be, slots);
    slot_ids_.reset(be, slots);
  }
  positions_.resize(T);
  route_w_.resize(T * k);
  route_ids_.resize(T * k);
  expert_rows_.resize(T);
  expert_row_w_.resize(T);
}

uint64_t Qwen35Forward::scratch_bytes(const ModelConfig& c, int64_t T) {
  const int64_t n_ff = std::max({c.n_ff, c.n_ff_expert, c.n_ff_shared_expert});
  const int64_t values = 6 * T * c.n_embd + 2 * T * c.ssm_conv_channels() + 2 * T * c.ssm_inner_size +
                         4 * T * c.ssm_time_step_rank + T * 2 * c.n_head * c.head_dim +
                         2 * T * c.n_head_kv * c.head_dim + T * c.n_head * c.head_dim + 3 * T * n_ff +
                         T * std::max<int64_t>(1, c.n_expert) + T + 2 * T * c.n_embd +
                         c.n_vocab;  // a sequence's backend logits row (all-logits calls grow it)
  // Backend-routed MoE: gate, up, act and down outputs per slot, plus ids and weights.
  const int64_t slots = c.is_moe() ? std::min(T, kBackendRoutedTokens) * std::max<int64_t>(1, c.n_expert_used) : 0;
  const int64_t moe_values = slots * (3 * c.n_ff_expert + c.n_embd + 2);
  return static_cast<uint64_t>(values + moe_values) * sizeof(float);
}

void Qwen35Forward::embed(const WeightView& table, std::span<const int32_t> tokens, float* dst) {
  if (be_.host_memory()) {
    be_.get_rows(table, tokens, dst);
    return;
  }
  const int64_t T = static_cast<int64_t>(tokens.size()), n = table.n_in;
  embed_host_.resize(T * n);
  for (int64_t t = 0; t < T; ++t) {
    if (tokens[t] < 0 || tokens[t] >= table.n_out)
      throw Error(fmt::format("token id {} is outside the vocabulary of {}", tokens[t], table.n_out));
    quant::dequantize(table.type, table.row(tokens[t]), embed_host_.data() + t * n, n);
  }
  be_.upload(dst, embed_host_.data(), embed_host_.size() * sizeof(float));
}

void Qwen35Forward::set_positions(int64_t start, int64_t T) {
  for (int64_t t = 0; t < T; ++t) positions_[t] = static_cast<int32_t>(start + t);
}

// ---- the trunk -----------------------------------------------------------------------------

void Qwen35Forward::trunk_step(Sequence::Impl& seq, std::span<const int32_t> tokens, int64_t start,
                               const StepOutputs& out) {
  const int64_t T = static_cast<int64_t>(tokens.size());
  set_positions(start, T);
  record_checkpoints_ = seq.record_checkpoints;
  observer_ = seq.observer ? &seq.observer : nullptr;
  embed(w_.token_embd, tokens, x_.data());  // no scaling
  for (int64_t il = 0; il < c_.n_layer; ++il) {
    const LayerWeights& L = w_.layers[il];
    const bool recurrent = L.kind == LayerKind::DeltaNet;
    decoder_layer(L, il, recurrent ? nullptr : &seq.kv[il], recurrent ? &seq.delta[il] : nullptr, T);
  }
  finish(w_.output_norm, w_.output, T, out);
}

void Qwen35Forward::decoder_layer(const LayerWeights& L, int64_t il, KvCache* kv, DeltaNetState* delta, int64_t T) {
  const int64_t n = c_.n_embd;
  show(tensor_name::kLayerInput, il, x_.data(), T, n);
  be_.rmsnorm(x_.data(), L.attn_norm.data(), normed_.data(), T, n, c_.rms_eps);
  if (L.kind == LayerKind::DeltaNet)
    delta_net_mixer(L.delta, *delta, normed_.data(), mix_.data(), T);
  else
    attention_mixer(L.attn, *kv, normed_.data(), mix_.data(), T);
  be_.add(x_.data(), mix_.data(), T * n);

  // "post_attention_norm" is the norm in front of the FFN; nothing normalises the mixer output.
  be_.rmsnorm(x_.data(), L.post_attention_norm.data(), normed_.data(), T, n, c_.rms_eps);
  if (L.ffn.moe)
    moe_ffn(L.ffn, il, normed_.data(), mix_.data(), T);
  else
    swiglu_ffn(L.ffn.gate, L.ffn.up, L.ffn.down, normed_.data(), mix_.data(), T);
  be_.add(x_.data(), mix_.data(), T * n);
}

void Qwen35Forward::finish(const FloatParam& norm, const WeightView& head, int64_t T, const StepOutputs& out) {
  const int64_t n = c_.n_embd;
  const bool host = be_.host_memory();  // then the results are written where the caller wants them
  float* hidden = host ? out.hidden : hidden_out_.data();
  be_.rmsnorm(x_.data(), norm.data(), hidden, T, n, c_.rms_eps);
  float* logits = host ? out.logits : out.backend_logits;
  if (!logits) return;
  const int64_t rows = out.all_logits ? T : 1;
  be_.matmul(head, hidden + (T - rows) * n, logits, rows);
}

void Qwen35Forward::hand_over(const StepOutputs& out, int64_t T) {
  if (be_.host_memory()) return;
  be_.download(out.hidden, hidden_out_.data(), T * c_.n_embd * sizeof(float));
}

void Qwen35Forward::save_checkpoint(const BackendArray<float>& state, float* slot) {
  be_.copy(slot, state.data(), state.bytes());
}

// ---- gated delta-net mixer ------------------------------------------------------------------

void Qwen35Forward::delta_net_mixer(const DeltaNetWeights& w, DeltaNetState& state, const float* in, float* out,
                                    int64_t T) {
  const int64_t hk = c_.ssm_group_count, hv = c_.ssm_time_step_rank, d = c_.ssm_state_size;
  const int64_t key_dim = c_.ssm_key_dim(), channels = c_.ssm_conv_channels();

  be_.matmul(w.qkv, in, qkv_.data(), T);        // [T][q heads | k heads | v heads]
  be_.matmul(w.gate, in, z_.data(), T);         // output gate z, [T][Hv][d]
  be_.matmul(w.beta, in, beta_in_.data(), T);   // [T][Hv]
  be_.matmul(w.alpha, in, alpha_.data(), T);    // [T][Hv]

  // Causal depthwise conv over q|k|v (not z), with the rolling state, then SiLU. When the step
  // keeps checkpoints, the conv runs token by token and the state after each is saved.
  if (record_checkpoints_) {
    for (int64_t t = 0; t < T; ++t) {
      be_.conv1d_silu(qkv_.data() + t * channels, channels, 1, channels, w.conv1d.data(), c_.ssm_conv_kernel,
                      state.conv.data(), conv_.data() + t * channels);
      save_checkpoint(state.conv, state.conv_slot(t));
    }
  } else {
    be_.conv1d_silu(qkv_.data(), channels, T, channels, w.conv1d.data(), c_.ssm_conv_kernel, state.conv.data(),
                    conv_.data());
  }
  const HeadView q{conv_.data(), T, hk, d, channels, d};
  const HeadView k{conv_.data() + key_dim, T, hk, d, channels, d};
  const HeadView v{conv_.data() + 2 * key_dim, T, hv, d, channels, d};
  be_.l2norm_heads(q, c_.rms_eps, 1.0f / std::sqrt(static_cast<float>(d)));
  be_.l2norm_heads(k, c_.rms_eps, 1.0f);

  // β = sigmoid(b);  g = ssm_a · softplus(a + dt_bias)  (ssm_a is stored as −exp(A_log)).
  be_.delta_gates(alpha_.data(), hv, beta_in_.data(), hv, w.dt_bias.data(), w.a.data(), T, hv, g_.data(),
                  beta_.data());

  // The delta rule; value head j reads key head j mod Hk (GGUF's tiled order).
  const DeltaNetDims dims{hk, hv, d};
  const HeadView core = dense(core_.data(), T, hv, d);
  const bool chunked = options_.delta_rule == DeltaRuleMode::Chunked ||
                       (options_.delta_rule == DeltaRuleMode::Auto && T > 1);
  if (record_checkpoints_)
    delta_net_recorded(state, q, k, v, core, T);
  else if (chunked)
    be_.delta_rule_chunked(dims, q, k, v, g_.data(), beta_.data(), state.recurrent.data(), core,
                           options_.delta_chunk);
  else
    be_.delta_rule_recurrent(dims, q, k, v, g_.data(), beta_.data(), state.recurrent.data(), core);

  // Per-head RMSNorm with the shared ssm_norm, times silu(z), then the output projection.
  be_.gated_rmsnorm_heads(core, dense(z_.data(), T, hv, d), w.norm.data(), c_.rms_eps);
  be_.matmul(w.out, core_.data(), out, T);
}

// Speculative verification: the recurrent form one token at a time (the same arithmetic as
// single-token decoding), saving the recurrent state after each token so that Model::rollback
// can return to any position of the step.
void Qwen35Forward::delta_net_recorded(DeltaNetState& state, const HeadView& q,
                                       const HeadView& k, const HeadView& v, const HeadView& core, int64_t T) {
  const int64_t hv = c_.ssm_time_step_rank;
  const DeltaNetDims dims{c_.ssm_group_count, hv, c_.ssm_state_size};
  auto token = [](const HeadView& x, int64_t t) {
    HeadView one = x;
    one.data = x.data + t * x.token_stride;
    one.n_tokens = 1;
    return one;
  };
  for (int64_t t = 0; t < T; ++t) {
    be_.delta_rule_recurrent(dims, token(q, t), token(k, t), token(v, t), g_.data() + t * hv, beta_.data() + t * hv,
                             state.recurrent.data(), token(core, t));
    save_checkpoint(state.recurrent, state.recurrent_slot(t));
  }
}

// ---- gated full-attention mixer -------------------------------------------------------------

void Qwen35Forward::attention_mixer(const AttentionWeights& w, KvCache& kv, const float* in, float* out,
                                    int64_t T) {
  const int64_t H = c_.n_head, Hkv = c_.n_head_kv, hd = c_.head_dim;
  const int64_t kv_row = Hkv * hd;

  be_.matmul(w.q, in, qg_.data(), T);  // per head: hd query rows, then hd gate rows
  be_.matmul(w.k, in, k_.data(), T);
  be_.matmul(w.v, in, v_.data(), T);
  const HeadView q{qg_.data(), T, H, hd, 2 * H * hd, 2 * hd};
  const HeadView gate{qg_.data() + hd, T, H, hd, 2 * H * hd, 2 * hd};
  const HeadView k = dense(k_.data(), T, Hkv, hd);

  be_.rmsnorm_heads(q, w.q_norm.data(), c_.rms_eps);
  be_.rmsnorm_heads(k, w.k_norm.data(), c_.rms_eps);
  const std::span<const int32_t> pos(positions_.data(), T);
  be_.rope(q, pos, rope_);  // NeoX pairs (i, i + n_rot/2) on the first n_rot dims
  be_.rope(k, pos, rope_);

  // Positions of one step are consecutive, so the new keys/values are one block of cache rows,
  // stored in the cache's encoding (F32 / F16 / Q8_0).
  be_.kv_store(kv.type, k_.data(), T, kv_row, kv.k_row(positions_[0]));
  be_.kv_store(kv.type, v_.data(), T, kv_row, kv.v_row(positions_[0]));
  be_.attention(q, kv.view(), pos, 1.0f / std::sqrt(static_cast<float>(hd)), att_.data());

  be_.mul_sigmoid_heads(dense(att_.data(), T, H, hd), gate);  // output gate
  be_.matmul(w.out, att_.data(), out, T);
}

// ---- feed-forward ---------------------------------------------------------------------------

// down(silu(gate·h) ⊙ (up·h))
void Qwen35Forward::swiglu_ffn(const WeightView& gate, const WeightView& up, const WeightView& down, const float* in,
                               float* out, int64_t T) {
  be_.matmul(gate, in, ff_gate_.data(), T);
  be_.matmul(up, in, ff_up_.data(), T);
  be_.swiglu(ff_gate_.data(), ff_up_.data(), ff_act_.data(), T * gate.n_out);
  be_.matmul(down, ff_act_.data(), out, T);
}

void Qwen35Forward::moe_ffn(const FfnWeights& w, int64_t il, const float* in, float* out, int64_t T) {
  const int64_t n = c_.n_embd;
  show(tensor_name::kMoeInput, il, in, T, n);

  // Router logits; the routing itself (softmax over all experts, top-k, renormalised to sum to 1,
  // no further scale) is the first step of either expert path.
  be_.matmul(w.router, in, router_.data(), T);

  // Shared expert, scaled by its own sigmoid gate: out = sigmoid(g·h) · down(silu(gate·h) ⊙ up·h).
  swiglu_ffn(w.shexp_gate, w.shexp_up, w.shexp_down, in, out, T);
  be_.matmul(w.shexp_gate_inp, in, shexp_gate_.data(), T);  // [T][1]
  show(tensor_name::kSharedExpertGate, il, shexp_gate_.data(), T, 1);
  be_.scale_rows_sigmoid(out, shexp_gate_.data(), T, n);

  if (route_on_backend(T))
    routed_experts_on_backend(w, il, in, out, T);
  else
    routed_experts_grouped(w, il, in, out, T);
  show(tensor_name::kMoeOutput, il, out, T, n);
}

bool Qwen35Forward::route_on_backend(int64_t T) const {
  return options_.moe_routing == MoeRoutingMode::Auto && T <= kBackendRoutedTokens;  // slot scratch fits
}

// Long steps: the routing comes to the host (one round trip per layer, negligible next to the
// step) and each expert runs once over the tokens that picked it.
void Qwen35Forward::routed_experts_grouped(const FfnWeights& w, int64_t il, const float* in, float* out, int64_t T) {
  const int64_t n = c_.n_embd, E = c_.n_expert, K = c_.n_expert_used, ff = c_.n_ff_expert;
  be_.moe_route(router_.data(), T, E, K, route_ids_.data(), route_w_.data());  // host [T][K] each
  show_routing(il, T);
  for (int64_t e = 0; e < E; ++e) {
    int64_t m = 0;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < K; ++j)
        if (route_ids_[t * K + j] == e) {
          expert_rows_[m] = static_cast<int32_t>(t);
          expert_row_w_[m++] = route_w_[t * K + j];
        }
    if (m == 0) continue;
    const std::span<const int32_t> rows(expert_rows_.data(), m);
    be_.gather_rows(in, rows, n, expert_x_.data());
    swiglu_ffn(w.gate_exps.rows(e * w.exps_stride, ff), w.up_exps.rows(e * w.exps_stride, ff),
               w.down_exps.rows(e * n, n), expert_x_.data(), expert_out_.data(), m);
    be_.scatter_add_rows(expert_out_.data(), rows, std::span<const float>(expert_row_w_.data(), m), n, out);
  }
}

// Decode and verify steps: routing, expert products and the weighted sum all read the expert ids
// from backend memory; each selected expert's weights are read once per step. The host sees the
// routing only when an observer asks for it.
void Qwen35Forward::routed_experts_on_backend(const FfnWeights& w, int64_t il, const float* in, float* out,
                                              int64_t T) {
  const int64_t n = c_.n_embd, E = c_.n_expert, K = c_.n_expert_used, ff = c_.n_ff_expert;
  int32_t* ids = slot_ids_.data();
  float* weights = slot_weights_.data();
  be_.moe_route_device(router_.data(), T, E, K, ids, weights);  // backend [T][K] each
  if (observer_) {
    be_.download(route_ids_.data(), ids, T * K * sizeof(int32_t));
    be_.download(route_w_.data(), weights, T * K * sizeof(float));
    show_routing(il, T);
  }
  const ExpertsView gate{w.gate_exps, ff, w.exps_stride}, up{w.up_exps, ff, w.exps_stride}, down{w.down_exps, n, n};
  be_.matmul_experts(gate, ids, T, K, in, false, slot_gate_.data());
  be_.matmul_experts(up, ids, T, K, in, false, slot_up_.data());
  be_.swiglu(slot_gate_.data(), slot_up_.data(), slot_act_.data(), T * K * ff);
  be_.matmul_experts(down, ids, T, K, slot_act_.data(), true, slot_out_.data());
  be_.moe_combine(slot_out_.data(), ids, weights, T, K, n, out);
}

// ---- named tensors for an observer ---------------------------------------------------------

void Qwen35Forward::show(std::string_view name, int64_t il, const float* values, int64_t rows, int64_t cols) {
  if (!observer_) return;
  observed_.resize(rows * cols);
  be_.download(observed_.data(), values, observed_.size() * sizeof(float));
  (*observer_)(name, il, ObservedTensor{rows, cols, std::span<const float>(observed_)});
}

void Qwen35Forward::show_routing(int64_t il, int64_t T) {
  if (!observer_) return;
  const int64_t K = c_.n_expert_used;
  (*observer_)(tensor_name::kMoeExperts, il, ObservedTensor{T, K, std::span<const int32_t>(route_ids_.data(), T * K)});
  (*observer_)(tensor_name::kMoeWeights, il, ObservedTensor{T, K, std::span<const float>(route_w_.data(), T * K)});
}

// ---- MTP / NextN head -----------------------------------------------------------------------

void Qwen35Forward::mtp_step(Sequence::Impl& seq, std::span<const int32_t> tokens, const float* hidden_in,
                             int64_t start, const StepOutputs& out) {
  const MtpWeights& m = *w_.mtp;
  const int64_t T = static_cast<int64_t>(tokens.size()), n = c_.n_embd;
  set_positions(start, T);
  observer_ = seq.observer ? &seq.observer : nullptr;

  // x = eh_proj · [rmsnorm(embed(x_p))·enorm ; rmsnorm(hidden_{p-1})·hnorm]
  embed(m.embed, tokens, normed_.data());
  be_.rmsnorm(normed_.data(), m.enorm.data(), normed_.data(), T, n, c_.rms_eps);
  be_.copy_2d(normed_.data(), n, mtp_cat_.data(), 2 * n, T, n);
  if (!be_.host_memory()) {  // the host rows go through mix_, free until the block runs
    be_.upload(mix_.data(), hidden_in, T * n * sizeof(float));
    hidden_in = mix_.data();
  }
  be_.rmsnorm(hidden_in, m.hnorm.data(), normed_.data(), T, n, c_.rms_eps);
  be_.copy_2d(normed_.data(), n, mtp_cat_.data() + n, 2 * n, T, n);
  be_.matmul(m.eh_proj, mtp_cat_.data(), x_.data(), T);

  // One full-attention block with the head's own KV cache, then the shared head.
  decoder_layer(m.block, c_.n_layer, &seq.mtp_kv, nullptr, T);
  finish(m.shared_head_norm, m.head, T, out);
}

}  // namespace peregrine
