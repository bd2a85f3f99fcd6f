#include "model/qwen35_state.h"

#include <algorithm>
#include <string>

#include "peregrine/error.h"
#include "peregrine/quant.h"

namespace peregrine {

void KvCache::allocate(TensorType kv_type, int64_t kv_heads, int64_t head_dim, int64_t n_ctx) {
  type = kv_type;
  n_kv_heads = kv_heads;
  row_bytes = quant::row_bytes(kv_type, kv_heads * head_dim);
  k.assign(n_ctx * row_bytes, 0);
  v.assign(n_ctx * row_bytes, 0);
}

Sequence::Impl::Impl(const ModelConfig& c, int64_t context_length, TensorType cache_type)
    : n_ctx(context_length), kv_type(cache_type) {
  routing.resize(c.n_layer + 1);
  kv.resize(c.n_layer);
  delta.resize(c.n_layer);
  for (int64_t il = 0; il < c.n_layer; ++il) {
    if (c.layer_kinds[il] == LayerKind::FullAttention) {
      kv[il].allocate(kv_type, c.n_head_kv, c.head_dim, n_ctx);
    } else {
      delta[il].conv.assign((c.ssm_conv_kernel - 1) * c.ssm_conv_channels(), 0.0f);
      delta[il].recurrent.assign(c.ssm_time_step_rank * c.ssm_state_size * c.ssm_state_size, 0.0f);
    }
  }
  if (c.has_mtp()) mtp_kv.allocate(kv_type, c.n_head_kv, c.head_dim, n_ctx);
}

SequenceMemory Sequence::Impl::memory() const {
  SequenceMemory m;
  for (const auto& layer : kv) m.kv_bytes += layer.bytes();
  for (const auto& d : delta) {
    m.conv_bytes += d.conv.size() * sizeof(float);
    m.recurrent_bytes += d.recurrent.size() * sizeof(float);
  }
  m.mtp_kv_bytes = mtp_kv.bytes();
  return m;
}

void Sequence::Impl::reset() {
  n_past = 0;
  mtp_n_past = 0;
  // KV rows past n_past are never read, so only the recurrent states need clearing.
  for (auto& d : delta) {
    std::fill(d.conv.begin(), d.conv.end(), 0.0f);
    std::fill(d.recurrent.begin(), d.recurrent.end(), 0.0f);
  }
  logits.clear();
  hidden.clear();
  mtp_logits.clear();
  mtp_hidden.clear();
  layer_inputs.clear();
  for (auto& r : routing) r.clear();
}

Sequence::Sequence(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Sequence::~Sequence() = default;
Sequence::Sequence(Sequence&&) noexcept = default;
Sequence& Sequence::operator=(Sequence&&) noexcept = default;

int64_t Sequence::context_length() const { return impl_->n_ctx; }
int64_t Sequence::n_past() const { return impl_->n_past; }
int64_t Sequence::mtp_n_past() const { return impl_->mtp_n_past; }
TensorType Sequence::kv_type() const { return impl_->kv_type; }
SequenceMemory Sequence::memory() const { return impl_->memory(); }
void Sequence::reset() { impl_->reset(); }
std::span<const float> Sequence::logits() const { return impl_->logits; }
std::span<const float> Sequence::hidden() const { return impl_->hidden; }
std::span<const float> Sequence::mtp_logits() const { return impl_->mtp_logits; }
std::span<const float> Sequence::mtp_hidden() const { return impl_->mtp_hidden; }
void Sequence::set_capture_layer_inputs(bool on) { impl_->capture_layer_inputs = on; }
std::span<const float> Sequence::layer_inputs() const { return impl_->layer_inputs; }
void Sequence::set_capture_routing(bool on) { impl_->capture_routing = on; }

namespace {
const RoutingCapture& routing_of(const Sequence::Impl& impl, int64_t layer) {
  if (layer < 0 || layer >= static_cast<int64_t>(impl.routing.size()))
    throw Error("routing capture: layer " + std::to_string(layer) + " does not exist");
  return impl.routing[layer];
}
}  // namespace

std::span<const int32_t> Sequence::routing_experts(int64_t layer) const { return routing_of(*impl_, layer).experts; }
std::span<const float> Sequence::routing_weights(int64_t layer) const { return routing_of(*impl_, layer).weights; }
std::span<const float> Sequence::shared_expert_gates(int64_t layer) const {
  return routing_of(*impl_, layer).shared_gates;
}

}  // namespace peregrine
