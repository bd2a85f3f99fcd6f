// The draft-length choice of adaptive speculative decoding, as a pure function (tested alone).
#pragma once

#include <array>

#include "peregrine/speculative.h"

namespace peregrine {

// accept_rates[i]: probability that draft i is accepted given draft i − 1 was; draft_cost: one
// head step; verify_costs[k]: a trunk pass over k + 1 positions. Returns the k in 0..8 that
// maximises E(k) / (k·draft_cost + verify_costs[k]) with E(k) = 1 + Σ_{i<k} Π_{j≤i} rate_j
// (ties: the smaller k).
int best_draft_length(const std::array<double, kMaxMtpDraftLength>& accept_rates, double draft_cost,
                      const std::array<double, kMaxVerifyTokens>& verify_costs);

}  // namespace peregrine
