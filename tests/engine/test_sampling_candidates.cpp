// Sampling from candidates selected next to the logits: the host selection and the backends'
// top_k_rows against a plain reference on rows full of ties, penalize_logits against the
// sampler's own penalty rule, and the Sampler's candidate path against its whole-row path (the
// same ids, probabilities and random draws over hundreds of steps).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "emulated_device_backend.h"
#include "peregrine/backend.h"
#include "peregrine/error.h"
#include "peregrine/logit_select.h"
#include "peregrine/sampler.h"
#include "test_sampling_util.h"

namespace peregrine {
namespace {

using test::reference_top_k;
using test::tied_logits;

void expect_top_k(const int32_t* ids, const float* values, const test::TopK& want, const std::string& what) {
  for (size_t i = 0; i < want.ids.size(); ++i) {
    EXPECT_EQ(ids[i], want.ids[i]) << what << ", slot " << i;
    // == : a -0 logit may come back as +0 (they compare equal, as the sampler compares them).
    EXPECT_TRUE(values[i] == want.values[i]) << what << ", slot " << i << ": " << values[i] << " vs " << want.values[i];
  }
}

TEST(SelectTopK, MatchesTheReferenceOnTiedRows) {
  const int64_t n = 5003, n_valid = 4990;
  for (int64_t k : {1, 2, 20, 256}) {
    for (uint32_t seed : {1u, 2u, 3u}) {
      const std::vector<float> row = tied_logits(n, seed * 31 + static_cast<uint32_t>(k), 200);
      std::vector<int32_t> ids(k, 7);
      std::vector<float> values(k, 7.0f);
      const int64_t found = select_top_k(row.data(), n_valid, k, ids.data(), values.data());
      const auto want = reference_top_k(row.data(), n_valid, k);
      EXPECT_EQ(found, k);
      expect_top_k(ids.data(), values.data(), want, "k=" + std::to_string(k));
    }
  }
}

TEST(SelectTopK, RowsWithFewerCandidatesThanKFillWithMinusOne) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> row = {-inf, 2.0f, nan, -inf, 2.0f, -1.5f, nan, 3.0f};
  std::vector<int32_t> ids(6);
  std::vector<float> values(6);
  EXPECT_EQ(select_top_k(row.data(), 7, 6, ids.data(), values.data()), 3);  // id 7 is past n_valid
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 4, 5, -1, -1, -1}));
  EXPECT_EQ(values, (std::vector<float>{2.0f, 2.0f, -1.5f, -inf, -inf, -inf}));
  EXPECT_EQ(select_top_k(row.data(), 1, 1, ids.data(), values.data()), 0);
  EXPECT_EQ(ids[0], -1);
}

// top_k_rows of a backend over several rows `stride` apart, against the reference per row.
void check_top_k_rows(Backend& be, bool default_impl, const std::string& what) {
  const int64_t n_rows = 3, stride = 4099, n_valid = 4000;
  for (int64_t k : {1, 2, 20, 256}) {
    std::vector<float> rows;
    for (int64_t r = 0; r < n_rows; ++r) {
      const auto row = tied_logits(stride, static_cast<uint32_t>(100 * k + r), 300);
      rows.insert(rows.end(), row.begin(), row.end());
    }
    BackendArray<float> x(be, n_rows * stride);
    be.upload(x.data(), rows.data(), rows.size() * sizeof(float));
    std::vector<int32_t> ids(n_rows * k, 12345);
    std::vector<float> values(n_rows * k, std::numeric_limits<float>::quiet_NaN());
    if (default_impl) be.Backend::top_k_rows(x.data(), n_rows, stride, n_valid, k, ids.data(), values.data());
    else be.top_k_rows(x.data(), n_rows, stride, n_valid, k, ids.data(), values.data());
    for (int64_t r = 0; r < n_rows; ++r)
      expect_top_k(ids.data() + r * k, values.data() + r * k, reference_top_k(rows.data() + r * stride, n_valid, k),
                   what + " k=" + std::to_string(k) + " row " + std::to_string(r));
  }
}

TEST(TopKRows, CpuBackendMatchesTheReference) {
  auto cpu = make_cpu_backend(2);
  check_top_k_rows(*cpu, false, "cpu");
}

TEST(TopKRows, TheDefaultImplementationMatchesTheReference) {
  test::EmulatedDeviceBackend device;  // downloads through the emulated device's checks
  check_top_k_rows(device, true, "default");
}

TEST(TopKRows, EmulatedDeviceBackendMatchesAndHandsBackOnlyCandidates) {
  test::EmulatedDeviceBackend device;
  check_top_k_rows(device, false, "emulated device");
  device.reset_counters();
  BackendArray<float> x(device, 1000);
  std::vector<int32_t> ids(20);
  std::vector<float> values(20);
  device.top_k_rows(x.data(), 1, 1000, 1000, 20, ids.data(), values.data());
  EXPECT_EQ(device.counters().download_bytes, 0u);
  EXPECT_EQ(device.counters().candidate_bytes, 20u * 8u);
}

// The sampler's rule (sampler.h steps 2–3) written out per id, as a second opinion.
float penalised(float x, float rep, int32_t count, float presence, float frequency) {
  if (rep != 1.0f) x = x > 0.0f ? x / rep : x * rep;
  if (count > 0) x -= presence + frequency * static_cast<float>(count);
  return x;
}

TEST(PenalizeLogits, BackendsApplyTheSamplersPenalties) {
  const int32_t V = 3000;
  std::mt19937 rng(5);
  for (float rep : {1.0f, 1.3f, 0.7f}) {
    SamplingParams p = SamplingParams::greedy();
    p.repetition_penalty = rep;
    p.presence_penalty = 0.75f;
    p.frequency_penalty = 0.3f;
    Sampler sampler(p, V, V);
    std::vector<int32_t> prompt(200), counts(V, 0);
    for (int32_t& id : prompt) id = static_cast<int32_t>(rng() % V);
    sampler.reset(prompt);
    for (int i = 0; i < 150; ++i) {
      const auto id = static_cast<int32_t>(rng() % 400);
      sampler.accept(id);
      ++counts[id];
    }
    std::vector<bool> in_prompt(V, false);
    for (int32_t id : prompt) in_prompt[id] = true;
    const std::vector<float> row = tied_logits(V, 77, 100);
    std::vector<float> expected = row;
    for (int32_t id = 0; id < V; ++id)
      if (in_prompt[id] || counts[id] > 0)
        expected[id] = penalised(row[id], rep, counts[id], p.presence_penalty, p.frequency_penalty);
    const LogitPenalties penalties = sampler.penalties();
    ASSERT_FALSE(penalties.empty());

    std::vector<float> host = row;
    apply_logit_penalties(host.data(), penalties);
    auto cpu = make_cpu_backend(1);
    test::EmulatedDeviceBackend device;
    std::vector<std::vector<float>> results{host};
    for (Backend* be : {cpu.get(), static_cast<Backend*>(&device)}) {
      for (bool default_impl : {false, true}) {
        BackendArray<float> x(*be, V);
        be->upload(x.data(), row.data(), V * sizeof(float));
        if (default_impl) be->Backend::penalize_logits(x.data(), V, penalties);
        else be->penalize_logits(x.data(), V, penalties);
        std::vector<float> out(V);
        be->download(out.data(), x.data(), V * sizeof(float));
        results.push_back(out);
      }
    }
    for (size_t r = 0; r < results.size(); ++r)
      for (int32_t id = 0; id < V; ++id)
        ASSERT_EQ(std::bit_cast<uint32_t>(results[r][id]), std::bit_cast<uint32_t>(expected[id]))
            << "repetition " << rep << ", result " << r << ", id " << id;
  }
}

// A row in "backend memory" read as candidates, counting what the sampler asked for.
class BackendRow final : public LogitsSource {
 public:
  BackendRow(Backend& be, int64_t n) : be_(be), row_(be, n), copy_(be, n), host_(static_cast<size_t>(n)) {}
  void set(const std::vector<float>& row) {
    be_.upload(row_.data(), row.data(), row.size() * sizeof(float));
    host_ = row;
  }
  std::span<const float> row() override {
    ++rows;
    return host_;
  }
  bool has_candidates() const override { return true; }
  void top_k(const LogitPenalties& penalties, int64_t n_valid, int64_t k, int32_t* ids, float* values) override {
    ++candidate_calls;
    be_.copy(copy_.data(), row_.data(), row_.bytes());
    be_.penalize_logits(copy_.data(), row_.size(), penalties);
    be_.top_k_rows(copy_.data(), 1, row_.size(), n_valid, k, ids, values);
  }
  int64_t rows = 0, candidate_calls = 0;

 private:
  Backend& be_;
  BackendArray<float> row_, copy_;
  std::vector<float> host_;
};

SamplingParams with_seed(SamplingParams p, uint64_t seed) {
  p.seed = seed;
  return p;
}

struct Profile {
  std::string name;
  SamplingParams params;
  bool candidates;  // whether the candidate path applies
};

std::vector<Profile> profiles() {
  SamplingParams penalised_greedy = SamplingParams::greedy();
  penalised_greedy.repetition_penalty = 1.2f;
  penalised_greedy.frequency_penalty = 0.4f;
  SamplingParams wide = SamplingParams::thinking_general();
  wide.top_k = 256;
  wide.repetition_penalty = 0.9f;
  wide.min_p = 0.05f;
  SamplingParams one = SamplingParams::instruct();
  one.top_k = 1;
  SamplingParams off = SamplingParams::instruct();  // top_k 0: every logit matters
  off.top_k = 0;
  SamplingParams beyond = SamplingParams::thinking_coding();  // more than a backend selects
  beyond.top_k = 300;
  return {{"greedy", SamplingParams::greedy(), true},
          {"greedy with penalties", penalised_greedy, true},
          {"thinking", with_seed(SamplingParams::thinking_general(), 11), true},
          {"coding", with_seed(SamplingParams::thinking_coding(), 12), true},
          {"instruct", with_seed(SamplingParams::instruct(), 13), true},
          {"top_k 256, repetition, min_p", with_seed(wide, 14), true},
          {"top_k 1 sampled", with_seed(one, 15), true},
          {"top_k 0 (whole row)", with_seed(off, 16), false},
          {"top_k 300 (whole row)", with_seed(beyond, 17), false}};
}

// Logits that look like a model's: a few likely ids (often tied), a long tail, masked padding.
std::vector<float> step_logits(std::mt19937& rng, int64_t n, int64_t valid) {
  std::normal_distribution<float> tail(-2.0f, 1.5f);
  std::vector<float> row(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) row[i] = std::round(tail(rng) * 8.0f) / 8.0f;
  for (int j = 0; j < 6; ++j) row[rng() % valid] = 4.0f + static_cast<float>(rng() % 5) * 0.5f;
  for (int64_t i = valid; i < n; ++i) row[i] = 50.0f;  // must never be chosen
  return row;
}

void run_candidate_path_against_whole_row(Backend& be, const std::string& backend_name) {
  const int32_t n = 6000, valid = 5900;
  for (const Profile& profile : profiles()) {
    SCOPED_TRACE(backend_name + ", " + profile.name);
    Sampler whole(profile.params, n, valid), from_candidates(profile.params, n, valid);
    EXPECT_EQ(from_candidates.candidates_needed() > 0, profile.candidates);
    std::mt19937 rng(3);
    std::vector<int32_t> prompt(64);
    for (int32_t& id : prompt) id = static_cast<int32_t>(rng() % valid);
    whole.reset(prompt);
    from_candidates.reset(prompt);
    BackendRow source(be, n);
    for (int step = 0; step < 300; ++step) {
      const std::vector<float> row = step_logits(rng, n, valid);
      source.set(row);
      if (step % 3 == 0) {  // the distributions too, probability for probability
        const auto a = whole.distribution(row);
        const std::vector<TokenProb> expected(a.begin(), a.end());
        const auto b = from_candidates.distribution(source);
        ASSERT_EQ(b.size(), expected.size()) << "step " << step;
        for (size_t i = 0; i < expected.size(); ++i) {
          ASSERT_EQ(b[i].id, expected[i].id) << "step " << step << ", candidate " << i;
          ASSERT_EQ(std::bit_cast<uint64_t>(b[i].p), std::bit_cast<uint64_t>(expected[i].p))
              << "step " << step << ", candidate " << i;
        }
      }
      const int32_t id = whole.sample(row);
      ASSERT_EQ(from_candidates.sample(source), id) << "step " << step;
      ASSERT_LT(id, valid);
      whole.accept(id);
      from_candidates.accept(id);
    }
    if (profile.candidates) {
      EXPECT_EQ(source.rows, 0) << "the candidate path read a whole row";
      EXPECT_EQ(source.candidate_calls, 400);
    } else {
      EXPECT_EQ(source.candidate_calls, 0) << "a whole-row distribution asked for candidates";
      EXPECT_EQ(source.rows, 400);
    }
  }
}

TEST(CandidateSampling, SameIdsAsTheWholeRowOnTheCpuBackend) {
  auto cpu = make_cpu_backend(2);
  run_candidate_path_against_whole_row(*cpu, "cpu");
}

TEST(CandidateSampling, SameIdsAsTheWholeRowOnAnEmulatedDevice) {
  test::EmulatedDeviceBackend device;
  run_candidate_path_against_whole_row(device, "emulated device");
}

TEST(CandidateSampling, NothingToSampleThrowsOnBothPaths) {
  const float inf = std::numeric_limits<float>::infinity();
  auto cpu = make_cpu_backend(1);
  const std::vector<float> row(64, -inf);
  for (const SamplingParams& p : {SamplingParams::greedy(), SamplingParams::instruct()}) {
    Sampler whole(p, 64, 64), from_candidates(p, 64, 64);
    BackendRow source(*cpu, 64);
    source.set(row);
    EXPECT_THROW(whole.sample(row), Error);
    EXPECT_THROW(from_candidates.sample(source), Error);
  }
}

}  // namespace
}  // namespace peregrine
