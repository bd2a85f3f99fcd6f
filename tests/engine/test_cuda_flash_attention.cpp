// CUDA prefill attention (the query-tiled flash kernel, cuda_flash_attention.cu, taken from 16
// tokens on) against the CPU backend: 16..300 tokens (partial and several query tiles), sequences
// that start at 0 and ones that continue a cache holding earlier rows, F32 / F16 / Q8_0 caches,
// GQA ratios 1, 2, 4, 6 and 8, head dims 40 / 64 / 96 / 128 / 256, and tokens at scattered positions
// inside one query tile. The caches are encoded once by the CPU backend's kv_store, so both
// backends read identical bytes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "peregrine/quant.h"

namespace peregrine::test {
namespace {

// Only the summation order differs (scores over the head dim, the softmax sums per tile, the
// weighted values), so the bound is a few float roundings of outputs of magnitude ≤ 1; the
// decode kernel's test uses the same.
constexpr double kRelTol = 2e-4;
constexpr double kAbsTol = 2e-5;

// expect_close, plus the largest error in scientific notation (max_error_sci: expect_close's
// property rounds to 6 decimals, which shows these errors as 0).
void expect_close_sci(const std::vector<float>& actual, const std::vector<float>& expected, double rel_tol,
                      double abs_tol, const std::string& what) {
  expect_close(actual, expected, rel_tol, abs_tol, what);
  double max_err = 0.0;
  for (size_t i = 0; i < actual.size() && i < expected.size(); ++i)
    max_err = std::max(max_err, std::abs(static_cast<double>(actual[i]) - expected[i]));
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", max_err);
  ::testing::Test::RecordProperty(what + "_max_error_sci", text);
}

struct FlashCase {
  TensorType type;
  int64_t n_heads, n_kv_heads, head_dim;
  std::vector<int32_t> positions;
};

std::string describe(const FlashCase& c) {
  std::string s = std::string(tensor_type_info(c.type).name) + " H" + std::to_string(c.n_heads) + " Hkv" +
                  std::to_string(c.n_kv_heads) + " hd" + std::to_string(c.head_dim) + " T" +
                  std::to_string(c.positions.size()) + " pos";
  for (size_t i = 0; i < c.positions.size() && i < 3; ++i) s += " " + std::to_string(c.positions[i]);
  return s;
}

void compare_attention(Backend& gpu, Backend& cpu, const FlashCase& c, uint32_t seed) {
  const int64_t T = static_cast<int64_t>(c.positions.size());
  const int64_t hd = c.head_dim, H = c.n_heads;
  const int64_t n_ctx = *std::max_element(c.positions.begin(), c.positions.end()) + 1;
  const int64_t kv_row = c.n_kv_heads * hd;
  const uint64_t row_bytes = quant::row_bytes(c.type, kv_row);

  const std::vector<float> k_values = cuda_random(static_cast<size_t>(n_ctx * kv_row), seed);
  const std::vector<float> v_values = cuda_random(static_cast<size_t>(n_ctx * kv_row), seed + 1);
  std::vector<uint8_t> k_bytes(n_ctx * row_bytes), v_bytes(n_ctx * row_bytes);
  cpu.kv_store(c.type, k_values.data(), n_ctx, kv_row, k_bytes.data());
  cpu.kv_store(c.type, v_values.data(), n_ctx, kv_row, v_bytes.data());

  // Queries as attn_q lays them out: each head's queries then its gate values (head stride
  // 2·hd). ±2 makes the softmax peaky enough that a wrong max or rescale shows.
  const std::vector<float> q_host = cuda_random(static_cast<size_t>(T * H * 2 * hd), seed + 2, 2.0f);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  std::vector<float> expected(static_cast<size_t>(T * H * hd));
  std::vector<float> q_cpu_data = q_host;
  cpu.attention(HeadView{q_cpu_data.data(), T, H, hd, H * 2 * hd, 2 * hd},
                KvView{c.type, k_bytes.data(), v_bytes.data(), row_bytes, c.n_kv_heads}, c.positions, scale,
                expected.data());

  BackendArray<uint8_t> k_dev = to_backend(gpu, k_bytes), v_dev = to_backend(gpu, v_bytes);
  BackendArray<float> q_dev = to_backend(gpu, q_host);
  BackendArray<float> out = poisoned(gpu, T * H * hd);
  gpu.attention(HeadView{q_dev.data(), T, H, hd, H * 2 * hd, 2 * hd},
                KvView{c.type, k_dev.data(), v_dev.data(), row_bytes, c.n_kv_heads}, c.positions, scale,
                out.data());
  expect_close_sci(to_host(gpu, out), expected, kRelTol, kAbsTol, describe(c));
}

std::vector<int32_t> consecutive(int32_t start, int64_t n) {
  std::vector<int32_t> p(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) p[t] = start + static_cast<int32_t>(t);
  return p;
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
