// The speculative-sampling acceptance rule for one draft position, separate from the decoder so
// that it can be tested against its exact distribution.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "peregrine/sampler.h"

namespace peregrine {

struct DraftVerdict {
  bool accepted = false;
  int32_t token = -1;  // the draft when accepted, otherwise the replacement
};

// Target p and draft q are distributions over ids (most likely first, summing to 1); the draft
// was drawn from q. Accept with probability min(1, p(d)/q(d)) (u_accept < p/q); otherwise draw
// from the normalised max(0, p − q) with u_resample. The output is then distributed as p.
// `dense` is scratch of at least the vocabulary size, all zeros on entry and on exit.
DraftVerdict judge_draft(std::span<const TokenProb> p, std::span<const TokenProb> q, int32_t draft, double u_accept,
                         double u_resample, std::vector<double>& dense);

// Greedy verification: the draft is accepted exactly when it is the target's argmax.
DraftVerdict judge_draft_greedy(std::span<const TokenProb> p, int32_t draft);

// Draws an id from a distribution with u in [0, 1).
int32_t draw(std::span<const TokenProb> dist, double u);

}  // namespace peregrine
