// CUDA attention against the CPU backend: F32 / F16 / Q8_0 caches (the cache bytes come from the
// CPU backend's kv_store, so both backends read identical caches), prefill and decode token
// counts, positions at an offset, GQA 4:1 and 1:1, head dims 64 / 128 / 256, and long contexts
// that take the split-K path (including tokens whose later splits are empty).
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "cuda_test_util.h"
#include "peregrine/error.h"

namespace peregrine::test {
namespace {

// Only the summation order differs between the backends (scores, softmax sums, weighted values),
// so the bound is a few float roundings of outputs of magnitude ≤ 1.
constexpr double kRelTol = 2e-4;
constexpr double kAbsTol = 2e-5;

void compare_attention(Backend& gpu, Backend& cpu, const AttentionCase& c, uint32_t seed) {
  test::compare_attention(gpu, cpu, c, seed, kRelTol, kAbsTol);
}

const TensorType kCacheTypes[] = {TensorType::F32, TensorType::F16, TensorType::Q8_0};
// (query heads, KV heads): GQA 4:1 and plain multi-head attention.
const std::pair<int64_t, int64_t> kGqaShapes[] = {{8, 2}, {4, 4}};

class CudaAttention : public CudaTest {};

// Prefill and decode token counts at the start of a sequence and 100 positions in.
TEST_F(CudaAttention, MatchesCpuOverCacheTypesShapesAndOffsets) {
  uint32_t seed = 1;
  for (TensorType type : kCacheTypes)
    for (int64_t hd : {64, 128, 256})
      for (const auto& [heads, kv_heads] : kGqaShapes)
        for (int64_t n_tokens : {1, 3, 17})
          for (int32_t start : {0, 100}) {
            compare_attention(*gpu, *cpu, {type, heads, kv_heads, hd, consecutive(start, n_tokens)}, seed);
            seed += 3;
          }
}

// Few (token, head) pairs over thousands of rows: the split-K path and its combine kernel.
TEST_F(CudaAttention, LongContextDecodeMatchesCpu) {
  uint32_t seed = 1000;
  for (TensorType type : kCacheTypes)
    for (int64_t hd : {128, 256}) {
      compare_attention(*gpu, *cpu, {type, 8, 2, hd, {4999}}, seed);
      compare_attention(*gpu, *cpu, {type, 2, 1, hd, consecutive(3000, 2)}, seed + 3);
      seed += 6;
    }
}

// Tokens of one call at very different positions: the short ones leave later splits empty.
TEST_F(CudaAttention, ScatteredPositionsMatchCpu) {
  uint32_t seed = 2000;
  for (TensorType type : kCacheTypes) {
    compare_attention(*gpu, *cpu, {type, 8, 2, 128, {4000, 10, 2500, 0}}, seed);
    seed += 3;
  }
}

TEST_F(CudaAttention, RejectsHeadDimAbove256) {
  const int64_t hd = 288;
  BackendArray<float> q = to_backend(*gpu, cuda_random(static_cast<size_t>(hd), 7));
  BackendArray<float> cache = to_backend(*gpu, cuda_random(static_cast<size_t>(hd), 8));
  BackendArray<float> out(*gpu, hd);
  const std::vector<int32_t> positions{0};
  EXPECT_THROW(gpu->attention(HeadView::dense(q.data(), 1, 1, hd), cache.data(), cache.data(), 1, positions, 1.0f,
                              out.data()),
               Error);
}

}  // namespace
}  // namespace peregrine::test
