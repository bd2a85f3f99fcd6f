// Sampler against a float64 reference of the same pipeline (penalties, temperature, top-k,
// top-p, min-p), the empirical distribution of draws, determinism, padding and allocation.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <map>
#include <new>
#include <numeric>
#include <random>
#include <vector>

#include "peregrine/error.h"
#include "peregrine/sampler.h"

// The replacement operator delete below frees what the replacement operator new malloc'ed;
// GCC cannot see that pairing once both are inlined.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

// Counts heap allocations so a test can assert that sampling does not allocate.
static std::atomic<long> g_allocations{0};
void* operator new(std::size_t n) {
  ++g_allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace peregrine {
namespace {

struct RefToken {
  int32_t id;
  double p;
};

// The documented pipeline, written plainly in float64 with full sorts.
std::vector<RefToken> reference_distribution(const std::vector<float>& logits, int32_t valid, const SamplingParams& sp,
                                             const std::vector<int32_t>& prompt, const std::vector<int32_t>& generated) {
  // Penalties in float, as the definition works on float logits; everything after in double.
  std::vector<float> x(logits.begin(), logits.begin() + valid);
  std::map<int32_t, int> count;
  for (int32_t id : generated) ++count[id];
  std::vector<bool> seen(valid, false);
  for (int32_t id : prompt) seen[id] = true;
  for (int32_t id : generated) seen[id] = true;
  for (int32_t id = 0; id < valid; ++id) {
    if (!seen[id]) continue;
    const float rep = sp.repetition_penalty;
    if (rep != 1.0f) x[id] = x[id] > 0 ? x[id] / rep : x[id] * rep;
    if (count.count(id)) x[id] -= sp.presence_penalty + sp.frequency_penalty * static_cast<float>(count[id]);
  }
  std::vector<RefToken> c;
  for (int32_t id = 0; id < valid; ++id) c.push_back({id, static_cast<double>(x[id]) / sp.temperature});
  std::sort(c.begin(), c.end(), [](auto& a, auto& b) { return a.p != b.p ? a.p > b.p : a.id < b.id; });
  if (sp.top_k > 0 && static_cast<size_t>(sp.top_k) < c.size()) c.resize(sp.top_k);
  const double mx = c[0].p;
  auto softmax = [&](std::vector<RefToken> v) {
    double z = 0;
    for (auto& t : v) z += std::exp(t.p - mx);
    for (auto& t : v) t.p = std::exp(t.p - mx) / z;
    return v;
  };
  if (sp.top_p < 1.0f) {
    auto probs = softmax(c);
    double cum = 0;
    size_t keep = probs.size();
    for (size_t i = 0; i < probs.size(); ++i) {
      cum += probs[i].p;
      if (cum >= sp.top_p) {
        keep = i + 1;
        break;
      }
    }
    c.resize(keep);
  }
  if (sp.min_p > 0.0f) {
    std::vector<RefToken> kept;
    for (auto& t : c)
      if (std::exp(t.p - mx) >= sp.min_p) kept.push_back(t);
    c = kept;
  }
  return softmax(c);
}

std::vector<float> random_logits(int n, uint64_t seed, float scale = 2.5f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

SamplingParams params(float t, int k, float p, float min_p) {
  SamplingParams sp;
  sp.temperature = t;
  sp.top_k = k;
  sp.top_p = p;
  sp.min_p = min_p;
  return sp;
}

void expect_same(std::span<const TokenProb> got, const std::vector<RefToken>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double sum = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].id, want[i].id) << what << " rank " << i;
    EXPECT_NEAR(got[i].p, want[i].p, 1e-9) << what << " rank " << i;
    sum += got[i].p;
  }
  EXPECT_NEAR(sum, 1.0, 1e-12) << what;
}

TEST(Sampler, GreedyPicksArgmaxWithTiesToLowestId) {
  Sampler s(SamplingParams::greedy(), 8, 8);
  EXPECT_EQ(s.sample(std::vector<float>{0, 3, 1, 3, 2, -1, 3, 0}), 1);
  EXPECT_EQ(s.sample(std::vector<float>{-5, -4, -4, -6, -9, -9, -9, -9}), 1);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(s.sample(std::vector<float>{nan, -inf, -3, nan, -3, -inf, -inf, -inf}), 2);
  EXPECT_THROW(s.sample(std::vector<float>(8, -inf)), Error);
  EXPECT_THROW(s.sample(std::vector<float>(7, 0.0f)), Error);  // wrong row length
}

TEST(Sampler, PaddingIdsAreNeverProduced) {
  // 12 logits, only 10 real tokens: the padding rows have the largest logits.
  std::vector<float> logits = random_logits(12, 3);
  logits[10] = 50.0f;
  logits[11] = 60.0f;
  Sampler greedy(SamplingParams::greedy(), 12, 10);
  EXPECT_LT(greedy.sample(logits), 10);
  Sampler s(params(1.5f, 0, 1.0f, 0.0f), 12, 10);
  for (const TokenProb& t : s.distribution(logits)) EXPECT_LT(t.id, 10);
  for (int i = 0; i < 2000; ++i) ASSERT_LT(s.sample(logits), 10);
  EXPECT_THROW(Sampler(SamplingParams::greedy(), 10, 12), Error);
}

TEST(Sampler, FilteredSetsAndProbabilitiesMatchFloat64Reference) {
  const int n = 300, valid = 290;
  int cases = 0;
  for (uint64_t seed : {1u, 2u, 3u}) {
    const std::vector<float> logits = random_logits(n, seed);
    for (float t : {0.3f, 0.7f, 1.0f, 1.6f})
      for (int k : {0, 1, 5, 40, 1000})
        for (float p : {1.0f, 0.95f, 0.8f, 0.3f})
          for (float mp : {0.0f, 0.05f, 0.3f}) {
            const SamplingParams sp = params(t, k, p, mp);
            Sampler s(sp, n, valid);
            const auto want = reference_distribution(logits, valid, sp, {}, {});
            expect_same(s.distribution(logits), want,
                        "seed " + std::to_string(seed) + " T " + std::to_string(t) + " k " + std::to_string(k) +
                            " p " + std::to_string(p) + " min_p " + std::to_string(mp));
            ++cases;
          }
  }
  EXPECT_EQ(cases, 3 * 4 * 5 * 4 * 3);
}

TEST(Sampler, TopKKeepsExactlyKWithTiesToLowerIds) {
  std::vector<float> logits = {1, 5, 3, 5, 5, 0, 3, 2};
  Sampler s(params(1.0f, 2, 1.0f, 0.0f), 8, 8);
  auto d = s.distribution(logits);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].id, 1);
  EXPECT_EQ(d[1].id, 3);
  EXPECT_DOUBLE_EQ(d[0].p, 0.5);
}

TEST(Sampler, TopPKeepsSmallestPrefixReachingTheMass) {
  // Probabilities 0.5, 0.25, 0.125, 0.0625, 0.0625 (log-space logits).
  std::vector<float> logits = {std::log(0.125f), std::log(0.5f), std::log(0.0625f), std::log(0.25f), std::log(0.0625f)};
  for (auto [p, want] : std::vector<std::pair<float, size_t>>{{0.4f, 1}, {0.6f, 2}, {0.8f, 3}, {0.9f, 4}, {0.99f, 5}}) {
    Sampler s(params(1.0f, 0, p, 0.0f), 5, 5);
    EXPECT_EQ(s.distribution(logits).size(), want) << "top_p " << p;
  }
  // min_p 0.2 of p_max 0.5: keeps p >= 0.1 -> 3 tokens.
  Sampler m(params(1.0f, 0, 1.0f, 0.2f), 5, 5);
  auto d = m.distribution(logits);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].id, 1);
  EXPECT_EQ(d[1].id, 3);
  EXPECT_EQ(d[2].id, 0);
  EXPECT_NEAR(d[2].p, 0.125 / 0.875, 1e-6);
}

TEST(Sampler, TopPOnLargeVocabularyWithoutTopK) {
  // The incremental partial sort must find a nucleus far larger than its first window.
  const int n = 20000;
  const std::vector<float> logits = random_logits(n, 9, 0.5f);
  for (float p : {0.5f, 0.9f, 0.999f}) {
    const SamplingParams sp = params(1.0f, 0, p, 0.0f);
    Sampler s(sp, n, n);
    expect_same(s.distribution(logits), reference_distribution(logits, n, sp, {}, {}), "top_p " + std::to_string(p));
  }
}

TEST(Sampler, PenaltiesMatchReference) {
  const int n = 50;
  std::vector<float> logits = random_logits(n, 17);
  logits[3] = 4.0f;   // positive, in the prompt only
  logits[4] = -3.0f;  // negative, generated twice
  const std::vector<int32_t> prompt = {3, 7, 7, 9};
  const std::vector<int32_t> generated = {4, 9, 4, 12};
  SamplingParams sp = params(0.8f, 0, 1.0f, 0.0f);
  sp.repetition_penalty = 1.3f;
  sp.presence_penalty = 1.5f;
  sp.frequency_penalty = 0.25f;
  Sampler s(sp, n, n);
  s.reset(prompt);
  for (int32_t id : generated) s.accept(id);
  expect_same(s.distribution(logits), reference_distribution(logits, n, sp, prompt, generated), "penalties");

  // Presence counts once per distinct generated id and ignores the prompt; repetition
  // divides positives and multiplies negatives.
  SamplingParams only_presence = params(1.0f, 0, 1.0f, 0.0f);
  only_presence.presence_penalty = 2.0f;
  Sampler pres(only_presence, 3, 3);
  pres.reset(std::vector<int32_t>{0});
  pres.accept(1);
  pres.accept(1);
  auto d = pres.distribution(std::vector<float>{1.0f, 1.0f, 1.0f});
  std::map<int32_t, double> p;
  for (auto t : d) p[t.id] = t.p;
  EXPECT_NEAR(p[0], p[2], 1e-12);
  EXPECT_NEAR(p[1] / p[0], std::exp(-2.0), 1e-12);

  SamplingParams rep = SamplingParams::greedy();
  rep.repetition_penalty = 4.0f;
  Sampler g(rep, 3, 3);
  g.reset(std::vector<int32_t>{0});
  EXPECT_EQ(g.sample(std::vector<float>{4.0f, 1.5f, -1.0f}), 1);  // 4/4 = 1 < 1.5
  g.reset(std::vector<int32_t>{2});
  EXPECT_EQ(g.sample(std::vector<float>{-1.0f, -2.0f, -0.3f}), 0);  // -0.3*4 = -1.2 < -1
  g.reset();  // history forgotten
  EXPECT_EQ(g.sample(std::vector<float>{-1.0f, -2.0f, -0.3f}), 2);
}

// Pearson chi-square of observed counts against expected probabilities; outside the support
// any count fails outright.
double chi_square(const std::map<int32_t, int>& counts, const std::vector<RefToken>& expected, int n) {
  std::map<int32_t, double> p;
  for (auto& t : expected) p[t.id] = t.p;
  double chi = 0;
  for (auto& [id, c] : counts)
    if (!p.count(id)) return 1e30;
  for (auto& [id, prob] : p) {
    const double e = prob * n;
    const double o = counts.count(id) ? counts.at(id) : 0;
    chi += (o - e) * (o - e) / e;
  }
  return chi;
}

// A loose bound: mean dof, sd sqrt(2 dof); 6 sd is a false alarm rate far below 1e-6.
double chi_bound(size_t support) {
  const double dof = static_cast<double>(support) - 1;
  return dof + 6 * std::sqrt(2 * dof) + 5;
}

TEST(Sampler, DrawsFollowTheFilteredDistributionAcrossSeeds) {
  const int n = 40;
  const std::vector<float> logits = random_logits(n, 21, 0.7f);
  for (SamplingParams sp : {params(0.8f, 12, 0.95f, 0.0f), params(1.0f, 0, 0.9f, 0.02f), SamplingParams::instruct()}) {
    sp.presence_penalty = 0.0f;
    const auto expected = reference_distribution(logits, n, sp, {}, {});
    ASSERT_GE(expected.size(), 6u);
    // First draw of many independently seeded samplers.
    const int draws = 20000;
    std::map<int32_t, int> first;
    Sampler s(sp, n, n);
    for (int seed = 0; seed < draws; ++seed) {
      SamplingParams seeded = sp;
      seeded.seed = static_cast<uint64_t>(seed) * 7919 + 1;
      Sampler one(seeded, n, n);
      ++first[one.sample(logits)];
    }
    EXPECT_LT(chi_square(first, expected, draws), chi_bound(expected.size())) << "T " << sp.temperature;
    // A long stream from one seed.
    std::map<int32_t, int> stream;
    for (int i = 0; i < draws; ++i) ++stream[s.sample(logits)];
    EXPECT_LT(chi_square(stream, expected, draws), chi_bound(expected.size())) << "T " << sp.temperature;
  }
}

TEST(Sampler, SameSeedSameIdsDifferentSeedDifferentIds) {
  const int n = 64;
  const std::vector<float> logits = random_logits(n, 5, 1.0f);
  SamplingParams a = params(1.0f, 0, 1.0f, 0.0f);
  a.seed = 42;
  SamplingParams b = a;
  b.seed = 43;
  Sampler s1(a, n, n), s2(a, n, n), s3(b, n, n);
  std::vector<int32_t> x, y, z;
  for (int i = 0; i < 200; ++i) {
    x.push_back(s1.sample(logits));
    y.push_back(s2.sample(logits));
    z.push_back(s3.sample(logits));
  }
  EXPECT_EQ(x, y);
  EXPECT_NE(x, z);
  s1.reset();  // re-seeds
  std::vector<int32_t> again;
  for (int i = 0; i < 200; ++i) again.push_back(s1.sample(logits));
  EXPECT_EQ(again, x);
}

TEST(Sampler, ModelCardProfilesAndValidation) {
  const auto t = SamplingParams::thinking_general();
  EXPECT_FLOAT_EQ(t.temperature, 1.0f);
  EXPECT_FLOAT_EQ(t.top_p, 0.95f);
  EXPECT_EQ(t.top_k, 20);
  EXPECT_FLOAT_EQ(t.min_p, 0.0f);
  EXPECT_FLOAT_EQ(t.presence_penalty, 1.5f);
  EXPECT_FLOAT_EQ(t.repetition_penalty, 1.0f);
  const auto c = SamplingParams::thinking_coding();
  EXPECT_FLOAT_EQ(c.temperature, 0.6f);
  EXPECT_FLOAT_EQ(c.top_p, 0.95f);
  EXPECT_EQ(c.top_k, 20);
  EXPECT_FLOAT_EQ(c.presence_penalty, 0.0f);
  const auto i = SamplingParams::instruct();
  EXPECT_FLOAT_EQ(i.temperature, 0.7f);
  EXPECT_FLOAT_EQ(i.top_p, 0.8f);
  EXPECT_EQ(i.top_k, 20);
  EXPECT_FLOAT_EQ(i.presence_penalty, 1.5f);
  EXPECT_TRUE(SamplingParams::profile("greedy")->is_greedy());
  EXPECT_FLOAT_EQ(SamplingParams::profile("coding")->temperature, 0.6f);
  EXPECT_FALSE(SamplingParams::profile("creative").has_value());

  EXPECT_THROW(Sampler(params(1.0f, 0, 0.0f, 0.0f), 4, 4), Error);
  EXPECT_THROW(Sampler(params(1.0f, 0, 1.5f, 0.0f), 4, 4), Error);
  EXPECT_THROW(Sampler(params(1.0f, -1, 1.0f, 0.0f), 4, 4), Error);
  EXPECT_THROW(Sampler(params(1.0f, 0, 1.0f, -0.1f), 4, 4), Error);
  SamplingParams bad_rep;
  bad_rep.repetition_penalty = 0.0f;
  EXPECT_THROW(bad_rep.validate(), Error);
}

TEST(Sampler, SamplingDoesNotAllocate) {
  const int n = 248320, valid = 248077;  // the real Qwen 3.6 LM head and vocabulary
  const std::vector<float> logits = random_logits(n, 11);
  for (SamplingParams sp : {SamplingParams::greedy(), SamplingParams::thinking_general(), params(0.9f, 0, 0.9f, 0.05f)}) {
    Sampler s(sp, n, valid);
    s.reset(std::vector<int32_t>{1, 2, 3});
    s.accept(s.sample(logits));  // warm-up
    const long before = g_allocations.load();
    for (int i = 0; i < 5; ++i) s.accept(s.sample(logits));
    EXPECT_EQ(g_allocations.load() - before, 0) << "T " << sp.temperature;
  }
}

}  // namespace
}  // namespace peregrine
