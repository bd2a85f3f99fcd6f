// The CUDA backend's sampling operations (cuda_sampling.cu) on Qwen 3.6-sized rows: top_k_rows
// against a plain reference and the CPU backend (ids exact, values equal, tie order included),
// penalize_logits against the host reference bit for bit. Skips without a device.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "peregrine/error.h"
#include "peregrine/logit_select.h"
#include "test_sampling_util.h"

namespace peregrine {
namespace {

using test::CudaTest;
using test::reference_top_k;
using test::tied_logits;
using test::to_backend;
using test::to_host;

constexpr int64_t kVocab = 248320, kValid = 248077;  // Qwen 3.6: LM head rows, tokenizer ids

class CudaSampling : public CudaTest {};

void expect_rows(const std::vector<float>& rows, int64_t stride, int64_t n_rows, int64_t n_valid, int64_t k,
                 const std::vector<int32_t>& ids, const std::vector<float>& values, const std::string& what) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const auto want = reference_top_k(rows.data() + r * stride, n_valid, k);
    for (int64_t i = 0; i < k; ++i) {
      ASSERT_EQ(ids[r * k + i], want.ids[i]) << what << ", row " << r << ", slot " << i;
      // == : a -0 logit comes back as +0 (the sampler compares them as equal).
      ASSERT_TRUE(values[r * k + i] == want.values[i])
          << what << ", row " << r << ", slot " << i << ": " << values[r * k + i] << " vs " << want.values[i];
    }
  }
}

TEST_F(CudaSampling, TopKRowsMatchesTheReferenceOnTiedVocabularyRows) {
  const int64_t n_rows = 3;
  std::vector<float> rows;
  for (int64_t r = 0; r < n_rows; ++r) {
    const auto row = tied_logits(kVocab, static_cast<uint32_t>(17 + r));
    rows.insert(rows.end(), row.begin(), row.end());
  }
  const BackendArray<float> x = to_backend(*gpu, rows);
  for (int64_t k : {1, 2, 20, 256}) {
    std::vector<int32_t> ids(n_rows * k, 777), cpu_ids(n_rows * k);
    std::vector<float> values(n_rows * k, std::numeric_limits<float>::quiet_NaN()), cpu_values(n_rows * k);
    gpu->top_k_rows(x.data(), n_rows, kVocab, kValid, k, ids.data(), values.data());
    expect_rows(rows, kVocab, n_rows, kValid, k, ids, values, "k=" + std::to_string(k));
    cpu->top_k_rows(rows.data(), n_rows, kVocab, kValid, k, cpu_ids.data(), cpu_values.data());
    EXPECT_EQ(ids, cpu_ids) << "k=" << k;
  }
}

TEST_F(CudaSampling, TopKRowsOnShortRowsAndRowsWithoutCandidates) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  // Row 0: 300 tied values, then a region past n_valid that must be ignored. Row 1: only NaN and
  // -inf. Row 2: fewer candidates than k.
  const int64_t stride = 333, n_valid = 300, n_rows = 3;
  std::vector<float> rows = tied_logits(stride, 9, 20);
  for (int64_t i = n_valid; i < stride; ++i) rows[i] = 100.0f;
  for (int64_t i = 0; i < stride; ++i) rows.push_back(i % 2 ? nan : -inf);
  for (int64_t i = 0; i < stride; ++i) rows.push_back(i % 50 == 3 ? static_cast<float>(i % 7) : -inf);
  const BackendArray<float> x = to_backend(*gpu, rows);
  for (int64_t k : {1, 2, 20, 256}) {
    std::vector<int32_t> ids(n_rows * k, 777);
    std::vector<float> values(n_rows * k, nan);
    gpu->top_k_rows(x.data(), n_rows, stride, n_valid, k, ids.data(), values.data());
    expect_rows(rows, stride, n_rows, n_valid, k, ids, values, "k=" + std::to_string(k));
  }
}

TEST_F(CudaSampling, TopKRowsRejectsUnsupportedSizes) {
  const BackendArray<float> x = to_backend(*gpu, std::vector<float>(64, 1.0f));
  std::vector<int32_t> ids(300);
  std::vector<float> values(300);
  EXPECT_THROW(gpu->top_k_rows(x.data(), 1, 64, 64, 0, ids.data(), values.data()), Error);
  EXPECT_THROW(gpu->top_k_rows(x.data(), 1, 64, 64, kMaxLogitCandidates + 1, ids.data(), values.data()), Error);
  EXPECT_THROW(gpu->top_k_rows(x.data(), 1, 64, 65, 1, ids.data(), values.data()), Error);
}

TEST_F(CudaSampling, PenalizeLogitsEqualsTheHostReferenceBitForBit) {
  std::mt19937 rng(21);
  const std::vector<float> row = tied_logits(kVocab, 4, 100);
  for (float rep : {1.0f, 1.1f, 0.8f}) {
    std::vector<int32_t> ids;
    std::vector<float> subtract;
    for (int32_t id = static_cast<int32_t>(rng() % 97); id < kVocab; id += 1 + static_cast<int32_t>(rng() % 400)) {
      ids.push_back(id);
      const int count = static_cast<int>(rng() % 4);
      subtract.push_back(count == 0 ? 0.0f : 1.5f + 0.3f * static_cast<float>(count));
    }
    const LogitPenalties penalties{rep, ids, subtract};
    std::vector<float> expected = row;
    apply_logit_penalties(expected.data(), penalties);
    BackendArray<float> x = to_backend(*gpu, row);
    gpu->penalize_logits(x.data(), kVocab, penalties);
    const std::vector<float> got = to_host(*gpu, x);
    for (int64_t i = 0; i < kVocab; ++i)
      ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(expected[i]))
          << "repetition " << rep << ", id " << i;
  }
}

TEST_F(CudaSampling, PenalizeLogitsRejectsIdsOutsideTheRow) {
  BackendArray<float> x = to_backend(*gpu, std::vector<float>(64, 1.0f));
  const std::vector<int32_t> ids{3, 64};
  const std::vector<float> subtract{1.0f, 1.0f};
  EXPECT_THROW(gpu->penalize_logits(x.data(), 64, LogitPenalties{1.0f, ids, subtract}), Error);
}

}  // namespace
}  // namespace peregrine
