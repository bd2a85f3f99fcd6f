// The two pieces of sampling that can run where the logits are (sampler.h steps 2–3 and the
// selection of the best candidates), as host reference functions. The Sampler uses them on host
// rows; the Backend operations penalize_logits / top_k_rows (backend.h) do the same on backend
// memory and must agree with them exactly.
#pragma once

#include <cstdint>
#include <span>

namespace peregrine {

// Penalties for a few ids of one logits row (sampler.h steps 2–3). For each ids[i], in this order:
//   x = x > 0 ? x / repetition : x · repetition    (skipped when repetition == 1)
//   x = x − subtract[i]
// subtract[i] is presence + frequency · count, computed by the Sampler (0 for ids seen only in the
// prompt); it is passed as a value so every implementation subtracts the same float.
struct LogitPenalties {
  float repetition = 1.0f;
  std::span<const int32_t> ids;       // distinct, each < the row length
  std::span<const float> subtract;    // one per id

  bool empty() const { return ids.empty(); }
};

// The most candidates one top-k selection returns (a backend's kernels are sized for it).
inline constexpr int64_t kMaxLogitCandidates = 256;

// Applies `penalties` in place to a host row.
void apply_logit_penalties(float* row, const LogitPenalties& penalties);

// The k largest values among row[0 .. n_valid), best first, equal values ordered by lower id;
// NaN and -inf never count. Writes k ids and values; slots past the values that count get id -1
// and value -inf. Returns how many slots hold a candidate.
int64_t select_top_k(const float* row, int64_t n_valid, int64_t k, int32_t* ids, float* values);

}  // namespace peregrine
