#include "model/qwen35_state.h"

#include <algorithm>
#include <string>
#include <utility>

#include "peregrine/error.h"
#include "peregrine/quant.h"

namespace peregrine {

namespace {
int64_t conv_values(const ModelConfig& c) { return (c.ssm_conv_kernel - 1) * c.ssm_conv_channels(); }
int64_t recurrent_values(const ModelConfig& c) { return c.ssm_time_step_rank * c.ssm_state_size * c.ssm_state_size; }
}  // namespace

void KvCache::allocate(Backend& backend, TensorType kv_type, int64_t kv_heads, int64_t head_dim, int64_t n_ctx) {
  type = kv_type;
  n_kv_heads = kv_heads;
  row_bytes = quant::row_bytes(kv_type, kv_heads * head_dim);
  k.reset(backend, n_ctx * static_cast<int64_t>(row_bytes));
  v.reset(backend, n_ctx * static_cast<int64_t>(row_bytes));
}

Sequence::Impl::Impl(std::shared_ptr<Backend> owner, const ModelConfig& c, int64_t context_length,
                     TensorType cache_type)
    : backend(std::move(owner)), n_ctx(context_length), kv_type(cache_type) {
  Backend& be = *backend;
  kv.resize(c.n_layer);
  delta.resize(c.n_layer);
  for (int64_t il = 0; il < c.n_layer; ++il) {
    if (c.layer_kinds[il] == LayerKind::FullAttention) {
      kv[il].allocate(be, kv_type, c.n_head_kv, c.head_dim, n_ctx);
    } else {
      delta[il].conv.reset(be, conv_values(c));
      delta[il].recurrent.reset(be, recurrent_values(c));
    }
  }
  if (c.has_mtp()) mtp_kv.allocate(be, kv_type, c.n_head_kv, c.head_dim, n_ctx);
}

SequenceMemory Sequence::Impl::memory() const {
  SequenceMemory m;
  for (const auto& layer : kv) m.kv_bytes += layer.bytes();
  for (const auto& d : delta) {
    m.conv_bytes += d.conv.bytes();
    m.recurrent_bytes += d.recurrent.bytes();
  }
  m.mtp_kv_bytes = mtp_kv.bytes();
  return m;
}

SequenceMemory Sequence::Impl::planned_memory(const ModelConfig& c, int64_t context_length, TensorType kv_type) {
  SequenceMemory m;
  const uint64_t kv_layer = 2 * static_cast<uint64_t>(context_length) * quant::row_bytes(kv_type, c.n_head_kv * c.head_dim);
  for (int64_t il = 0; il < c.n_layer; ++il) {
    if (c.layer_kinds[il] == LayerKind::FullAttention) {
      m.kv_bytes += kv_layer;
    } else {
      m.conv_bytes += conv_values(c) * sizeof(float);
      m.recurrent_bytes += recurrent_values(c) * sizeof(float);
    }
  }
  if (c.has_mtp()) m.mtp_kv_bytes = kv_layer;
  return m;
}

void Sequence::Impl::set_checkpoint_capacity(int64_t tokens) {
  checkpoint_capacity = tokens;
  checkpoint_count = 0;
  for (auto& d : delta) {
    if (d.conv.empty()) continue;
    if (tokens == 0) {
      d.conv_slots = {};
      d.recurrent_slots = {};
    } else {
      d.conv_slots.reset(*backend, tokens * d.conv.size());
      d.recurrent_slots.reset(*backend, tokens * d.recurrent.size());
    }
  }
}

void Sequence::Impl::rollback(int64_t position, int64_t n_vocab, int64_t n_embd) {
  if (position == n_past) return;
  const int64_t rows = checkpoint_tokens;
  const int64_t slot = position - checkpoint_start - 1;
  for (auto& d : delta) {
    if (d.conv.empty()) continue;
    backend->copy(d.conv.data(), d.conv_slot(slot), d.conv.bytes());
    backend->copy(d.recurrent.data(), d.recurrent_slot(slot), d.recurrent.bytes());
  }
  // KV rows at or after `position` are never read again (attention reads rows up to the query's
  // position) and the next evaluate overwrites them: moving n_past back truncates the cache.
  // The outputs become those of the new last token, as if the call had ended there; without
  // all logits that row was never computed, so logits() is then empty.
  if (!checkpoint_outputs_saved) {
    std::swap(hidden, checkpoint_hidden);
    std::swap(logits, checkpoint_logits);
    checkpoint_outputs_saved = true;
  }
  hidden.clear();
  logits.clear();
  if (static_cast<int64_t>(checkpoint_hidden.size()) == rows * n_embd)
    hidden.assign(checkpoint_hidden.begin() + slot * n_embd, checkpoint_hidden.begin() + (slot + 1) * n_embd);
  if (static_cast<int64_t>(checkpoint_logits.size()) == rows * n_vocab)
    logits.assign(checkpoint_logits.begin() + slot * n_vocab, checkpoint_logits.begin() + (slot + 1) * n_vocab);
  n_past = position;
  checkpoint_count = position - checkpoint_start;
}

void Sequence::Impl::reset() {
  n_past = 0;
  mtp_n_past = 0;
  checkpoint_count = 0;
  // KV rows past n_past are never read, so only the recurrent states need clearing.
  for (auto& d : delta) {
    if (d.conv.empty()) continue;
    backend->fill_zero(d.conv.data(), d.conv.bytes());
    backend->fill_zero(d.recurrent.data(), d.recurrent.bytes());
  }
  logits.clear();
  hidden.clear();
  backend_logits.forget();
  backend_mtp_logits.forget();
  mtp_logits.clear();
  mtp_hidden.clear();
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
std::span<const float> Sequence::logits() const {
  impl_->backend_logits.to_host(impl_->logits);
  return impl_->logits;
}
std::span<const float> Sequence::hidden() const { return impl_->hidden; }
std::span<const float> Sequence::mtp_logits() const {
  impl_->backend_mtp_logits.to_host(impl_->mtp_logits);
  return impl_->mtp_logits;
}
std::span<const float> Sequence::mtp_hidden() const { return impl_->mtp_hidden; }
void Sequence::set_delta_checkpoints(int64_t max_tokens) {
  if (max_tokens < 0) throw Error("set_delta_checkpoints: negative capacity " + std::to_string(max_tokens));
  impl_->set_checkpoint_capacity(max_tokens);
}
int64_t Sequence::delta_checkpoints() const { return impl_->checkpoint_capacity; }

Sequence::Impl& sequence_state(Sequence& seq) { return *seq.impl_; }
const Sequence::Impl& sequence_state(const Sequence& seq) { return *seq.impl_; }

void observe_tensors(Sequence& seq, TensorObserver observer) { sequence_state(seq).observer = std::move(observer); }

}  // namespace peregrine
