// The MoE operations with the routing in backend memory (backend.h), on the CPU backend. Backend
// memory is host memory here, so the routing is read where moe_route wrote it. Every output row
// is the same matmul arithmetic as the host-grouped path (a CPU matmul row does not depend on the
// number of tokens in the call), and moe_combine adds in the grouped path's order, so the two
// paths give bit-identical results.
#include <algorithm>
#include <cstring>
#include <string>

#include "backend/cpu/cpu_backend.h"
#include "peregrine/error.h"

namespace peregrine::cpu {

void CpuBackend::moe_route_device(const float* logits, int64_t n_tokens, int64_t n_expert, int64_t k,
                                  int32_t* expert_ids, float* weights) {
  moe_route(logits, n_tokens, n_expert, k, expert_ids, weights);
}

// One matmul per selected expert over the slots that chose it: its weights are read once.
void CpuBackend::matmul_experts(const ExpertsView& w, const int32_t* ids, int64_t n_tokens, int64_t k, const float* x,
                                bool x_per_slot, float* y) {
  const int64_t n_slots = n_tokens * k, n_in = w.stacked.n_in, rows = w.rows, count = w.count();
  for (int64_t s = 0; s < n_slots; ++s) {
    const int32_t e = ids[s];
    if (e < 0 || e >= count)
      throw Error("cpu backend: matmul_experts got expert id " + std::to_string(e) + " outside the " +
                  std::to_string(count) + " experts of '" + std::string(w.stacked.name) + "'");
    if (std::find(ids, ids + s, e) != ids + s) continue;  // done with the expert's first slot
    expert_slots_.clear();
    for (int64_t s2 = s; s2 < n_slots; ++s2)
      if (ids[s2] == e) expert_slots_.push_back(s2);
    const WeightView expert = w.expert(e);
    auto x_row = [&](int64_t slot) { return x + (x_per_slot ? slot : slot / k) * n_in; };
    const int64_t m = static_cast<int64_t>(expert_slots_.size());
    if (m == 1) {
      matmul(expert, x_row(s), y + s * rows, 1);
      continue;
    }
    float* gathered = grow(expert_x_scratch_, m * n_in);
    float* out = grow(expert_y_scratch_, m * rows);
    for (int64_t i = 0; i < m; ++i) std::memcpy(gathered + i * n_in, x_row(expert_slots_[i]), n_in * sizeof(float));
    matmul(expert, gathered, out, m);
    for (int64_t i = 0; i < m; ++i) std::memcpy(y + expert_slots_[i] * rows, out + i * rows, rows * sizeof(float));
  }
}

void CpuBackend::moe_combine(const float* expert_out, const int32_t* ids, const float* weights, int64_t n_tokens,
                             int64_t k, int64_t n, float* out) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    const int32_t* token_ids = ids + t * k;
    float* yr = out + t * n;
    int32_t previous = -1;  // slots in ascending expert id: the smallest id above the last one added
    for (int64_t step = 0; step < k; ++step) {
      int64_t next = -1;
      for (int64_t j = 0; j < k; ++j)
        if (token_ids[j] > previous && (next < 0 || token_ids[j] < token_ids[next])) next = j;
      if (next < 0) throw Error("cpu backend: moe_combine got a token naming one expert twice");
      previous = token_ids[next];
      const float s = weights[t * k + next];
      const float* xr = expert_out + (t * k + next) * n;
      for (int64_t i = 0; i < n; ++i) yr[i] += s * xr[i];  // scatter_add_rows' expression
    }
  }
}

}  // namespace peregrine::cpu
