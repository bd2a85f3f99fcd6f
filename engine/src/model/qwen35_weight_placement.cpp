// Qwen35Weights::place_on: moving the bound weights into backend memory, each tensor once,
// reporting progress (and taking a cancel) after each tensor.
#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "model/qwen35_weights.h"
#include "peregrine/error.h"
#include "peregrine/gguf.h"
#include "peregrine/log.h"
#include "peregrine/model.h"

namespace peregrine {

namespace {

// Every matrix view the operations read (the embedding tables are not among them: see place_on).
// W: Qwen35Weights or const Qwen35Weights (fn gets views of the same constness).
template <class W, class Fn>
void for_each_matrix(W& w, Fn&& fn) {
  auto layer = [&](auto& L) {
    for (auto* v : {&L.delta.qkv, &L.delta.gate, &L.delta.beta, &L.delta.alpha, &L.delta.out, &L.attn.q,
                          &L.attn.k, &L.attn.v, &L.attn.out, &L.ffn.gate, &L.ffn.up, &L.ffn.down, &L.ffn.router,
                          &L.ffn.gate_exps, &L.ffn.up_exps, &L.ffn.down_exps, &L.ffn.shexp_gate_inp,
                          &L.ffn.shexp_gate, &L.ffn.shexp_up, &L.ffn.shexp_down})
      if (!v->empty()) fn(*v);
  };
  fn(w.output);
  for (auto& L : w.layers) layer(L);
  if (w.mtp) {
    fn(w.mtp->eh_proj);
    fn(w.mtp->head);
    layer(w.mtp->block);
  }
}

template <class W, class Fn>
void for_each_float(W& w, Fn&& fn) {
  auto layer = [&](auto& L) {
    fn(L.attn_norm, "attn_norm");
    fn(L.post_attention_norm, "post_attention_norm");
    for (auto [p, name] : {std::pair{&L.delta.conv1d, "ssm_conv1d"}, {&L.delta.dt_bias, "ssm_dt"},
                           {&L.delta.a, "ssm_a"}, {&L.delta.norm, "ssm_norm"}, {&L.attn.q_norm, "attn_q_norm"},
                           {&L.attn.k_norm, "attn_k_norm"}})
      if (p->size() > 0) fn(*p, name);
  };
  fn(w.output_norm, "output_norm");
  for (auto& L : w.layers) layer(L);
  if (w.mtp) {
    fn(w.mtp->enorm, "nextn.enorm");
    fn(w.mtp->hnorm, "nextn.hnorm");
    fn(w.mtp->shared_head_norm, "nextn.shared_head_norm");
    layer(w.mtp->block);
  }
}

// The GGUF tensors of the model's files ordered by address, to find the tensor a view lies in.
class TensorIndex {
 public:
  TensorIndex(const GgufFile& file, const GgufFile* mtp_file) {
    for (const GgufFile* f : {&file, mtp_file})
      if (f)
        for (const GgufTensorInfo& t : f->tensors()) by_address_.emplace(t.data, &t);
  }
  const GgufTensorInfo& containing(const WeightView& v) const {
    auto it = by_address_.upper_bound(v.data);
    if (it != by_address_.begin()) {
      --it;
      const GgufTensorInfo& t = *it->second;
      if (v.data + static_cast<uint64_t>(v.n_out) * v.row_bytes <= t.data + t.n_bytes) return t;
    }
    throw Error(fmt::format("weight '{}' does not lie inside a tensor of the model file", v.name));
  }

 private:
  std::map<const uint8_t*, const GgufTensorInfo*> by_address_;
};

}  // namespace

uint64_t Qwen35Weights::placed_bytes(const GgufFile& file, const GgufFile* mtp_file) const {
  const TensorIndex index(file, mtp_file);
  std::map<const uint8_t*, uint64_t> tensors;
  for_each_matrix(*this, [&](const WeightView& v) {
    const GgufTensorInfo& t = index.containing(v);
    tensors[t.data] = t.n_bytes;
  });
  uint64_t total = 0;
  for (const auto& [data, bytes] : tensors) total += bytes;
  for_each_float(*this, [&](const FloatParam& p, const char*) { total += p.host.size() * sizeof(float); });
  return total;
}

void Qwen35Weights::place_on(Backend& backend, const GgufFile& file, const GgufFile* mtp_file,
                             const LoadProgressCallback& progress) {
  Qwen35Weights& weights = *this;
  const uint64_t total = progress ? weights.placed_bytes(file, mtp_file) : 0;
  uint64_t bytes = 0;
  // Reports after each step and stops the load when the observer says so. A throw here leaves
  // the placed copies with the backend, which the failed load destroys.
  auto report = [&] {
    if (progress && !progress(bytes, total))
      throw LoadCancelled(fmt::format("{}: load cancelled after {} of {} bytes", file.display_name(), bytes, total));
  };
  report();
  if (backend.host_memory()) {
    // Nothing to copy: the operations read the mapping in place.
    bytes = total;
    report();
    return;
  }
  const TensorIndex index(file, mtp_file);
  std::map<const uint8_t*, const uint8_t*> placed;  // host tensor start → backend copy
  for_each_matrix(weights, [&](WeightView& v) {
    const GgufTensorInfo& t = index.containing(v);
    auto it = placed.find(t.data);
    if (it == placed.end()) {
      it = placed.emplace(t.data, backend.place_weights(t.data, t.n_bytes, t.name)).first;
      bytes += t.n_bytes;
      report();
    }
    v.data = it->second + (v.data - t.data);
  });
  for_each_float(weights, [&](FloatParam& p, const char* name) {
    const uint64_t n = p.host.size() * sizeof(float);
    p.placed = reinterpret_cast<const float*>(
        backend.place_weights(reinterpret_cast<const uint8_t*>(p.host.data()), n, name));
    bytes += n;
  });
  report();  // the float vectors are small: one report for all of them
  log::get("model")->info("placed {} tensors ({:.1f} MiB) and the norms in {} memory", placed.size(),
                          bytes / (1024.0 * 1024.0), backend.name());
}

}  // namespace peregrine
