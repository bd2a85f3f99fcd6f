// CUDA attention against the CPU backend: F32 / F16 / Q8_0 caches (the cache bytes come from the
// CPU backend's kv_store, so both backends read identical caches), prefill and decode token
// counts, positions at an offset, GQA 4:1 and 1:1, head dims 64 / 128 / 256, and long contexts
// that take the split-K path (including tokens whose later splits are empty).
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "cuda_test_util.h"
#include "peregrine/error.h"
#include "peregrine/quant.h"

namespace peregrine::test {
namespace {

// Only the summation order differs between the backends (scores, softmax sums, weighted values),
// so the bound is a few float roundings of outputs of magnitude ≤ 1.
constexpr double kRelTol = 2e-4;
constexpr double kAbsTol = 2e-5;

struct AttentionCase {
  TensorType type;
  int64_t n_heads, n_kv_heads, head_dim;
  std::vector<int32_t> positions;
};

std::string describe(const AttentionCase& c) {
  std::string s = std::string(tensor_type_info(c.type).name) + " H" + std::to_string(c.n_heads) + " Hkv" +
                  std::to_string(c.n_kv_heads) + " hd" + std::to_string(c.head_dim) + " T" +
                  std::to_string(c.positions.size()) + " pos";
  for (size_t i = 0; i < c.positions.size() && i < 4; ++i) s += " " + std::to_string(c.positions[i]);
  return s;
}

// Runs one case on both backends and compares every output value.
void compare_attention(Backend& gpu, Backend& cpu, const AttentionCase& c, uint32_t seed) {
  const int64_t T = static_cast<int64_t>(c.positions.size());
  const int64_t hd = c.head_dim, H = c.n_heads;
  const int64_t n_ctx = *std::max_element(c.positions.begin(), c.positions.end()) + 1;
  const int64_t kv_row = c.n_kv_heads * hd;
  const uint64_t row_bytes = quant::row_bytes(c.type, kv_row);

  // The caches, encoded once by the CPU backend (its memory is host memory).
  const std::vector<float> k_values = cuda_random(static_cast<size_t>(n_ctx * kv_row), seed);
  const std::vector<float> v_values = cuda_random(static_cast<size_t>(n_ctx * kv_row), seed + 1);
  std::vector<uint8_t> k_bytes(n_ctx * row_bytes), v_bytes(n_ctx * row_bytes);
  cpu.kv_store(c.type, k_values.data(), n_ctx, kv_row, k_bytes.data());
  cpu.kv_store(c.type, v_values.data(), n_ctx, kv_row, v_bytes.data());

  // q as the model has it: each head's queries followed by its output-gate values (attn_q rows),
  // so the view has a head stride of 2·hd. ±2 makes the softmax peaky enough to matter.
  std::vector<float> q_host = cuda_random(static_cast<size_t>(T * H * 2 * hd), seed + 2, 2.0f);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  std::vector<float> expected(static_cast<size_t>(T * H * hd));
  const HeadView q_cpu{q_host.data(), T, H, hd, H * 2 * hd, 2 * hd};
  cpu.attention(q_cpu, KvView{c.type, k_bytes.data(), v_bytes.data(), row_bytes, c.n_kv_heads}, c.positions, scale,
                expected.data());

  BackendArray<uint8_t> k_dev = to_backend(gpu, k_bytes), v_dev = to_backend(gpu, v_bytes);
  BackendArray<float> q_dev = to_backend(gpu, q_host);
  BackendArray<float> out = poisoned(gpu, T * H * hd);
  const HeadView q_gpu{q_dev.data(), T, H, hd, H * 2 * hd, 2 * hd};
  gpu.attention(q_gpu, KvView{c.type, k_dev.data(), v_dev.data(), row_bytes, c.n_kv_heads}, c.positions, scale,
                out.data());
  expect_close(to_host(gpu, out), expected, kRelTol, kAbsTol, describe(c));
}

std::vector<int32_t> consecutive(int32_t start, int64_t n) {
  std::vector<int32_t> p(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) p[t] = start + static_cast<int32_t>(t);
  return p;
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
