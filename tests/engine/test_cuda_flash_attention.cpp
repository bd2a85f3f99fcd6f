// CUDA prefill attention (the query-tiled flash kernel, cuda_flash_attention.cu, taken from 16
// tokens on) against the CPU backend: 16..300 tokens (partial and several query tiles), sequences
// that start at 0 and ones that continue a cache holding earlier rows, F32 / F16 / Q8_0 caches,
// GQA ratios 1, 2, 4, 6 and 8, head dims 40 / 64 / 96 / 128 / 256, and tokens at scattered positions
// inside one query tile. The caches are encoded once by the CPU backend's kv_store, so both
// backends read identical bytes.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cuda_test_util.h"

namespace peregrine::test {
namespace {

// Only the summation order differs (scores over the head dim, the softmax sums per tile, the
// weighted values), so the bound is a few float roundings of outputs of magnitude ≤ 1; the
// decode kernel's test uses the same.
constexpr double kRelTol = 2e-4;
constexpr double kAbsTol = 2e-5;

void compare_attention(Backend& gpu, Backend& cpu, const AttentionCase& c, uint32_t seed) {
  test::compare_attention(gpu, cpu, c, seed, kRelTol, kAbsTol);
}

const TensorType kCacheTypes[] = {TensorType::F32, TensorType::F16, TensorType::Q8_0};

class CudaFlashAttention : public CudaTest {};

// Every cache type × GQA ratio 1, 2, 4, 8, a sequence start and a continuation 37 rows in.
TEST_F(CudaFlashAttention, MatchesCpuOverCacheTypesAndGqaRatios) {
  uint32_t seed = 1;
  for (TensorType type : kCacheTypes)
    for (int64_t kv_heads : {4, 2, 1})
      for (int32_t start : {0, 37}) {
        compare_attention(*gpu, *cpu, {type, 4, kv_heads, 64, consecutive(start, 40)}, seed);
        seed += 3;
      }
  for (TensorType type : kCacheTypes) {  // GQA ratio 8
    compare_attention(*gpu, *cpu, {type, 8, 1, 64, consecutive(5, 20)}, seed);
    seed += 3;
  }
}

// Token counts at and around the query tile (32) and the routing threshold (16), up to 300.
TEST_F(CudaFlashAttention, MatchesCpuOverTokenCounts) {
  uint32_t seed = 100;
  for (int64_t n_tokens : {16, 31, 33, 65, 300}) {
    compare_attention(*gpu, *cpu, {TensorType::F16, 2, 1, 64, consecutive(0, n_tokens)}, seed);
    compare_attention(*gpu, *cpu, {TensorType::Q8_0, 2, 1, 64, consecutive(70, n_tokens)}, seed + 3);
    seed += 6;
  }
}

// The model's head dim (256, two key-channel tiles and two output channels per thread), 128, and
// dims that leave a key-channel tile partly empty (40, 96; F32 / F16 take any head dim).
TEST_F(CudaFlashAttention, MatchesCpuOverHeadDims) {
  uint32_t seed = 200;
  for (TensorType type : kCacheTypes) {
    compare_attention(*gpu, *cpu, {type, 2, 1, 256, consecutive(9, 18)}, seed);
    compare_attention(*gpu, *cpu, {type, 4, 2, 128, consecutive(0, 17)}, seed + 3);
    seed += 6;
  }
  // The 27B model's layout: 24 query heads over 4 KV heads (ratio 6), hd 256, a Q8_0 cache.
  compare_attention(*gpu, *cpu, {TensorType::Q8_0, 6, 1, 256, consecutive(100, 16)}, seed + 6);
  compare_attention(*gpu, *cpu, {TensorType::F32, 2, 2, 40, consecutive(3, 21)}, seed);
  compare_attention(*gpu, *cpu, {TensorType::F16, 3, 1, 96, consecutive(50, 25)}, seed + 3);
}

// Tokens of one call at unrelated positions (the contract allows any): a tile walks the rows up
// to its largest position and masks each token at its own; position 0 sees a single row.
TEST_F(CudaFlashAttention, ScatteredPositionsMatchCpu) {
  std::mt19937 rng(77);
  std::uniform_int_distribution<int32_t> pos(0, 250);
  std::vector<int32_t> positions(40);
  for (auto& p : positions) p = pos(rng);
  positions[3] = 0;
  uint32_t seed = 300;
  for (TensorType type : kCacheTypes) {
    compare_attention(*gpu, *cpu, {type, 4, 1, 64, positions}, seed);
    seed += 3;
  }
}

}  // namespace
}  // namespace peregrine::test
