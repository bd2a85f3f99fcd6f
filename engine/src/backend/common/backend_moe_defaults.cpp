// Backend's default MoE operations with the routing in backend memory (backend.h): written with
// the other operations, so any backend has them. They bring the routing back to the host (one
// download per call) and run one matmul per (token, slot); the CPU and CUDA backends override
// them with versions that stay on the backend. In peregrine_backend, which every backend links.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "peregrine/backend.h"
#include "peregrine/error.h"

namespace peregrine {
namespace {

void check_expert_ids(const std::vector<int32_t>& ids, const ExpertsView& w) {
  const int64_t count = w.count();
  for (const int32_t e : ids)
    if (e < 0 || e >= count)
      throw Error("matmul_experts: expert id " + std::to_string(e) + " outside the " + std::to_string(count) +
                  " experts of '" + std::string(w.stacked.name) + "'");
}

}  // namespace

void Backend::moe_route_device(const float* logits, int64_t n_tokens, int64_t n_expert, int64_t k,
                               int32_t* expert_ids, float* weights) {
  if (n_tokens <= 0) return;
  std::vector<int32_t> ids(static_cast<size_t>(n_tokens * k));
  std::vector<float> w(ids.size());
  moe_route(logits, n_tokens, n_expert, k, ids.data(), w.data());
  upload(expert_ids, ids.data(), ids.size() * sizeof(int32_t));
  upload(weights, w.data(), w.size() * sizeof(float));
}

void Backend::matmul_experts(const ExpertsView& w, const int32_t* ids, int64_t n_tokens, int64_t k, const float* x,
                             bool x_per_slot, float* y) {
  if (n_tokens <= 0 || k <= 0) return;
  std::vector<int32_t> host_ids(static_cast<size_t>(n_tokens * k));
  download(host_ids.data(), ids, host_ids.size() * sizeof(int32_t));
  check_expert_ids(host_ids, w);
  const int64_t n_in = w.stacked.n_in;
  for (int64_t s = 0; s < n_tokens * k; ++s) {
    const float* x_row = x + (x_per_slot ? s : s / k) * n_in;
    matmul(w.expert(host_ids[s]), x_row, y + s * w.rows, 1);
  }
}

void Backend::moe_combine(const float* expert_out, const int32_t* ids, const float* weights, int64_t n_tokens,
                          int64_t k, int64_t n, float* out) {
  if (n_tokens <= 0 || k <= 0) return;
  std::vector<int32_t> host_ids(static_cast<size_t>(n_tokens * k));
  std::vector<float> host_w(host_ids.size());
  download(host_ids.data(), ids, host_ids.size() * sizeof(int32_t));
  download(host_w.data(), weights, host_w.size() * sizeof(float));
  std::vector<int64_t> order(static_cast<size_t>(k));
  for (int64_t t = 0; t < n_tokens; ++t) {
    const int32_t* token_ids = host_ids.data() + t * k;
    std::iota(order.begin(), order.end(), int64_t{0});
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return token_ids[a] < token_ids[b]; });
    const int32_t row = static_cast<int32_t>(t);
    for (const int64_t j : order)
      scatter_add_rows(expert_out + (t * k + j) * n, std::span<const int32_t>(&row, 1),
                       std::span<const float>(host_w.data() + t * k + j, 1), n, out);
  }
}

}  // namespace peregrine
