// Speculative sampling keeps the output distribution of plain sampling: the acceptance rule
// against its exact target, and the decoder end to end on tiny-mtp-f32 (first two tokens over
// many seeds against the exact two-token distribution of plain sampling), by chi-square.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "decode/speculative_accept.h"
#include "test_forward_util.h"
#include "test_mtp_util.h"

namespace peregrine {
namespace {

using namespace test;

// Pearson chi-square of observed counts against expected probabilities.
double chi_square(const std::map<int64_t, int64_t>& counts, const std::map<int64_t, double>& p, int64_t n) {
  double chi = 0;
  for (const auto& [cell, prob] : p) {
    const double expected = prob * static_cast<double>(n);
    const auto it = counts.find(cell);
    const double observed = it == counts.end() ? 0.0 : static_cast<double>(it->second);
    chi += (observed - expected) * (observed - expected) / expected;
  }
  for (const auto& [cell, c] : counts) EXPECT_TRUE(p.count(cell)) << "cell " << cell << " has probability 0";
  return chi;
}

TEST(MtpSampling, AcceptanceRuleReproducesTheTarget) {
  // p and q overlap only partly (q has an id p lacks, p has ids q lacks).
  const std::vector<TokenProb> p{{3, 0.4}, {1, 0.25}, {7, 0.2}, {0, 0.1}, {5, 0.05}};
  const std::vector<TokenProb> q{{1, 0.5}, {3, 0.2}, {6, 0.2}, {5, 0.1}};
  std::mt19937_64 rng(1234);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> dense(8, 0.0);
  std::map<int64_t, int64_t> counts;
  const int64_t N = 200000;
  int64_t accepted = 0;
  for (int64_t i = 0; i < N; ++i) {
    const int32_t d = draw(q, u(rng));
    const DraftVerdict v = judge_draft(p, q, d, u(rng), u(rng), dense);
    accepted += v.accepted;
    ++counts[v.token];
  }
  for (double x : dense) EXPECT_EQ(x, 0.0);  // scratch left clean
  std::map<int64_t, double> expected;
  for (const TokenProb& t : p) expected[t.id] = t.p;
  // 4 degrees of freedom: P(chi² > 23.5) = 1e-4.
  EXPECT_LT(chi_square(counts, expected, N), 23.5);
  // Acceptance probability is Σ min(p, q) = 0.2 + 0.25 + 0.05 = 0.5.
  EXPECT_NEAR(static_cast<double>(accepted) / N, 0.5, 0.01);
}

TEST(MtpSampling, GreedyRuleIsExactMatch) {
  const std::vector<TokenProb> p{{9, 1.0}};
  EXPECT_TRUE(judge_draft_greedy(p, 9).accepted);
  const DraftVerdict v = judge_draft_greedy(p, 4);
  EXPECT_FALSE(v.accepted);
  EXPECT_EQ(v.token, 9);
}

// End to end: temperature 1, top-k 3 → at most 9 two-token outcomes, whose exact plain-sampling
// probabilities come from the trunk's logits.
TEST(MtpSampling, FirstTwoTokensDistributedAsPlainSampling) {
  TinyFixture fx("tiny-mtp-f32");
  auto model = fx.load();
  const auto prompt = fx.meta["greedy"]["prompt"].get<std::vector<int32_t>>();
  const int32_t V = 512;
  SamplingParams params;
  params.temperature = 1.0f;
  params.top_k = 3;

  // Plain: p(x1) from the prompt's logits, p(x2 | x1) after evaluating x1.
  Sequence base = model->new_sequence();
  const auto logits0 = model->evaluate(base, prompt, 0, LogitsFor::LastToken);
  std::vector<float> first_logits(logits0.begin(), logits0.end());
  Sampler exact(params, V, V);
  const auto d1 = exact.distribution(first_logits);
  const std::vector<TokenProb> p1(d1.begin(), d1.end());
  std::map<int64_t, double> joint;
  const std::vector<uint8_t> after_prompt = model->snapshot(base);
  for (const TokenProb& a : p1) {
    Sequence s = model->new_sequence();
    model->restore(s, after_prompt);
    const auto l = model->evaluate(s, std::span<const int32_t>(&a.id, 1), s.n_past(), LogitsFor::LastToken);
    for (const TokenProb& b : exact.distribution(l)) joint[int64_t{a.id} * V + b.id] = a.p * b.p;
  }

  // Speculative: the prompt and its head rows once, then per seed: restore, sample x1 plainly,
  // one step with 2 drafts (x2 is its first token).
  Sequence seq = model->new_sequence();
  {
    SpeculativeDecoder observer(*model, seq, {});
    model->evaluate(seq, prompt, 0, LogitsFor::LastToken);
    observer.observe(prompt);
  }
  const std::vector<uint8_t> start = model->snapshot(seq);
  std::map<int64_t, int64_t> counts;
  const int64_t N = 3000;
  int64_t drafted = 0, accepted = 0;
  for (int64_t trial = 0; trial < N; ++trial) {
    model->restore(seq, start);
    SpeculativeOptions o;
    o.draft_length = 2;
    SpeculativeDecoder decoder(*model, seq, o);
    params.seed = static_cast<uint64_t>(trial) + 1;
    Sampler sampler(params, V, V);
    sampler.reset(prompt);
    SamplerTarget target(sampler);
    const int32_t x1 = sampler.sample(first_logits);
    sampler.accept(x1);
    const SpeculativeStep s = decoder.step(x1, target);
    ASSERT_FALSE(s.tokens.empty());
    ++counts[int64_t{x1} * V + s.tokens.front()];
    drafted += s.drafted;
    accepted += s.accepted;
  }
  // Both branches of the rule ran.
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, drafted);
  const double chi = chi_square(counts, joint, N);
  // ≤ 8 degrees of freedom: P(chi² > 31.8) = 1e-4.
  EXPECT_LT(chi, 31.8) << "cells " << joint.size();
  std::cout << "speculative sampling, " << N << " seeds, " << joint.size() << " cells: chi² " << chi
            << ", drafts accepted " << accepted << "/" << drafted << "\n";
}

}  // namespace
}  // namespace peregrine
