// Host reference of the sampling steps a backend can run next to the logits (logit_select.h).
#include "peregrine/logit_select.h"

#include <algorithm>
#include <limits>

namespace peregrine {

void apply_logit_penalties(float* row, const LogitPenalties& penalties) {
  const float rep = penalties.repetition;
  for (size_t i = 0; i < penalties.ids.size(); ++i) {
    float& x = row[penalties.ids[i]];
    if (rep != 1.0f) x = x > 0.0f ? x / rep : x * rep;
    x -= penalties.subtract[i];
  }
}

int64_t select_top_k(const float* row, int64_t n_valid, int64_t k, int32_t* ids, float* values) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  // Higher value first; equal values: lower id first (a strict total order over distinct ids).
  auto better = [row](int32_t a, int32_t b) { return row[a] != row[b] ? row[a] > row[b] : a < b; };
  // A heap of the k best ids seen so far, the worst on top: most ids lose against the top at once.
  int64_t n = 0;
  for (int64_t i = 0; i < n_valid; ++i) {
    const float x = row[i];
    if (!(x > neg_inf)) continue;  // -inf and NaN
    const auto id = static_cast<int32_t>(i);
    if (n < k) {
      ids[n++] = id;
      std::push_heap(ids, ids + n, better);
    } else if (better(id, ids[0])) {
      std::pop_heap(ids, ids + k, better);
      ids[k - 1] = id;
      std::push_heap(ids, ids + k, better);
    }
  }
  std::sort_heap(ids, ids + n, better);  // best first
  for (int64_t i = 0; i < n; ++i) values[i] = row[ids[i]];
  for (int64_t i = n; i < k; ++i) {
    ids[i] = -1;
    values[i] = neg_inf;
  }
  return n;
}

}  // namespace peregrine
