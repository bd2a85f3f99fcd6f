#include "decode/speculative_accept.h"

#include <algorithm>

#include "peregrine/error.h"

namespace peregrine {

int32_t draw(std::span<const TokenProb> dist, double u) {
  if (dist.empty()) throw Error("speculative: empty distribution to draw from");
  double total = 0;
  for (const TokenProb& t : dist) total += t.p;
  double x = u * total, acc = 0;
  for (const TokenProb& t : dist) {
    acc += t.p;
    if (x < acc) return t.id;
  }
  return dist.back().id;  // rounding at the very end of the mass
}

DraftVerdict judge_draft_greedy(std::span<const TokenProb> p, int32_t draft) {
  if (p.empty()) throw Error("speculative: empty target distribution");
  return {p.front().id == draft, p.front().id};
}

DraftVerdict judge_draft(std::span<const TokenProb> p, std::span<const TokenProb> q, int32_t draft, double u_accept,
                         double u_resample, std::vector<double>& dense) {
  double p_d = 0, q_d = 0;
  for (const TokenProb& t : p)
    if (t.id == draft) p_d = t.p;
  for (const TokenProb& t : q)
    if (t.id == draft) q_d = t.p;
  if (q_d > 0 && u_accept * q_d < p_d) return {true, draft};

  // Residual max(0, p − q): only ids in p's support can be positive.
  for (const TokenProb& t : p) dense[t.id] = t.p;
  for (const TokenProb& t : q) dense[t.id] -= t.p;
  double total = 0;
  for (const TokenProb& t : p) total += std::max(0.0, dense[t.id]);
  int32_t token = p.back().id;
  if (total <= 0) {
    token = draw(p, u_resample);  // p == q up to rounding: rejection has probability ~0
  } else {
    const double x = u_resample * total;
    double acc = 0;
    for (const TokenProb& t : p) {
      const double r = std::max(0.0, dense[t.id]);
      if (r <= 0) continue;
      acc += r;
      token = t.id;
      if (x < acc) break;
    }
  }
  for (const TokenProb& t : p) dense[t.id] = 0;
  for (const TokenProb& t : q) dense[t.id] = 0;
  return {false, token};
}

}  // namespace peregrine
