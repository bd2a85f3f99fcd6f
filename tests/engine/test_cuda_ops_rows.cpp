// CUDA row operations against the CPU backend: embedding lookups (get_rows), KV-cache stores
// (compared byte for byte), MoE routing, gathers, scatters and the shared-expert gate.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "peregrine/error.h"
#include "peregrine/quant.h"

namespace peregrine::test {
namespace {

using CudaRows = CudaTest;

// Bytes compared one by one; reports the first differences.
void expect_same_bytes(const std::vector<uint8_t>& actual, const std::vector<uint8_t>& expected,
                       const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  size_t differences = 0;
  for (size_t i = 0; i < actual.size(); ++i)
    if (actual[i] != expected[i] && ++differences <= 5)
      ADD_FAILURE() << what << ": byte " << i << " is " << int{actual[i]} << ", expected " << int{expected[i]};
  EXPECT_EQ(differences, 0u) << what << ": " << differences << " of " << actual.size() << " bytes differ";
}

// A table of n_out rows of n_in values encoded as `type`, on both backends.
struct Table {
  std::vector<uint8_t> bytes;
  WeightView cpu, gpu;
};

Table make_table(Backend& gpu, TensorType type, int64_t n_in, int64_t n_out, uint32_t seed) {
  Table t;
  const std::vector<float> values = cuda_random(n_in * n_out, seed);
  const uint64_t row_bytes = quant::row_bytes(type, n_in);
  t.bytes.resize(row_bytes * n_out);
  quant::quantize(type, values.data(), t.bytes.data(), n_out, n_in);
  t.cpu = WeightView{type, t.bytes.data(), n_in, n_out, row_bytes, "test_table"};
  t.gpu = t.cpu;
  t.gpu.data = gpu.place_weights(t.bytes.data(), t.bytes.size(), "test_table");
  return t;
}

TEST_F(CudaRows, GetRowsDecodesEveryTableTypeExactly) {
  // F32 / F16 / BF16 / Q8_0 decode on the device; Q4_K and Q6_K take the host fallback.
  const std::vector<int32_t> tokens = {3, 0, 49, 3, 17};
  const int64_t n_in = 512, n_out = 50, T = static_cast<int64_t>(tokens.size());
  for (const TensorType type :
       {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q8_0, TensorType::Q4_K, TensorType::Q6_K}) {
    const Table table = make_table(*gpu, type, n_in, n_out, 30);
    std::vector<float> expected(T * n_in);
    cpu->get_rows(table.cpu, tokens, expected.data());
    BackendArray<float> out = poisoned(*gpu, T * n_in);
    gpu->get_rows(table.gpu, tokens, out.data());
    expect_close(to_host(*gpu, out), expected, 0, 0,
                 std::string("get_rows ") + std::string(tensor_type_info(type).name));
  }
}

TEST_F(CudaRows, GetRowsRefusesBadTokensAndUndecodableTypes) {
  const Table table = make_table(*gpu, TensorType::F16, 64, 10, 31);
  BackendArray<float> out(*gpu, 64);
  EXPECT_THROW(gpu->get_rows(table.gpu, std::vector<int32_t>{10}, out.data()), Error);
  EXPECT_THROW(gpu->get_rows(table.gpu, std::vector<int32_t>{-1}, out.data()), Error);
  WeightView unknown = table.gpu;
  unknown.type = TensorType::IQ2_XXS;  // no decoder anywhere in this code base
  ASSERT_FALSE(quant::is_supported(TensorType::IQ2_XXS));
  EXPECT_THROW(gpu->get_rows(unknown, std::vector<int32_t>{0}, out.data()), Error);
}

// kv_store of `src` on both backends, the destination bytes compared exactly.
void compare_kv_store(Backend& gpu, Backend& cpu, TensorType type, const std::vector<float>& src, int64_t n_rows,
                      int64_t n) {
  const uint64_t bytes = quant::row_bytes(type, n) * n_rows;
  std::vector<uint8_t> expected(bytes, 0xFF);
  cpu.kv_store(type, src.data(), n_rows, n, expected.data());
  BackendArray<float> dsrc = to_backend(gpu, src);
  BackendArray<uint8_t> ddst = to_backend(gpu, std::vector<uint8_t>(bytes, 0xFF));
  gpu.kv_store(type, dsrc.data(), n_rows, n, ddst.data());
  expect_same_bytes(to_host(gpu, ddst), expected, std::string("kv_store ") + std::string(tensor_type_info(type).name));
}

TEST_F(CudaRows, KvStoreF32AndF16AreByteExact) {
  const int64_t n_rows = 7, n = 512;
  std::vector<float> src = cuda_random(n_rows * n, 32, 100.0f);
  // The corners of the conversion: overflow to inf, the largest half, ties at the subnormal end,
  // signed zero, infinities and NaN (0x7E00 with the sign, as ggml).
  const std::vector<float> special = {65504.0f,
                                      65519.0f,
                                      65520.0f,
                                      1e6f,
                                      -1e6f,
                                      0x1p-24f,
                                      0x1p-25f,
                                      0x1.8p-25f,
                                      0x1.8p-24f,
                                      1e-8f,
                                      -0.0f,
                                      0.0f,
                                      std::numeric_limits<float>::infinity(),
                                      -std::numeric_limits<float>::infinity(),
                                      std::nanf(""),
                                      -std::nanf(""),
                                      1.0f + 0x1p-11f,
                                      1.0f + 0x1.8p-11f,
                                      6.1e-5f};
  std::copy(special.begin(), special.end(), src.begin());
  compare_kv_store(*gpu, *cpu, TensorType::F32, src, n_rows, n);
  compare_kv_store(*gpu, *cpu, TensorType::F16, src, n_rows, n);
}

TEST_F(CudaRows, KvStoreQ8_0MatchesTheReferenceQuantizerByteForByte) {
  const int64_t n_rows = 9, n = 1024;
  std::vector<float> src = cuda_random(n_rows * n, 33, 5.0f);
  std::fill(src.begin() + 64, src.begin() + 96, 0.0f);  // an all-zero block: d = 0
  // amax 127 gives d = 1 exactly, so x.5 values are exact rounding ties (away from zero).
  for (int i = 0; i < 32; ++i) src[128 + i] = static_cast<float>(i - 16) + 0.5f;
  src[128] = 127.0f;
  src[300] = 1e30f;  // a scale beyond the half range: stored as inf
  compare_kv_store(*gpu, *cpu, TensorType::Q8_0, src, n_rows, n);
  // Tiny magnitudes: scales that are half subnormals.
  std::vector<float> tiny = cuda_random(4 * 256, 34, 1e-5f);
  compare_kv_store(*gpu, *cpu, TensorType::Q8_0, tiny, 4, 256);
}

TEST_F(CudaRows, KvStoreRefusesUnsupportedTypes) {
  BackendArray<float> src(*gpu, 64);
  BackendArray<uint8_t> dst(*gpu, 1024);
  EXPECT_THROW(gpu->kv_store(TensorType::Q4_0, src.data(), 1, 64, dst.data()), Error);
  EXPECT_THROW(gpu->kv_store(TensorType::Q8_0, src.data(), 1, 48, dst.data()), Error);
}

// moe_route on both backends: ids exactly, weights to a few float roundings (the softmax sums
// are ordered differently).
void compare_route(Backend& gpu, Backend& cpu, const std::vector<float>& logits, int64_t T, int64_t E, int64_t k,
                   const std::string& what) {
  std::vector<int32_t> ids_cpu(T * k), ids_gpu(T * k, -1);
  std::vector<float> w_cpu(T * k), w_gpu(T * k, std::numeric_limits<float>::quiet_NaN());
  cpu.moe_route(logits.data(), T, E, k, ids_cpu.data(), w_cpu.data());
  BackendArray<float> dlogits = to_backend(gpu, logits);
  gpu.moe_route(dlogits.data(), T, E, k, ids_gpu.data(), w_gpu.data());  // results land in host memory
  EXPECT_EQ(ids_gpu, ids_cpu) << what;
  expect_close(w_gpu, w_cpu, 1e-5, 1e-7, what + " weights");
}

TEST_F(CudaRows, MoeRouteTopKAndRenormalisation) {
  compare_route(*gpu, *cpu, cuda_random(7 * 256, 35, 4.0f), 7, 256, 8, "256 experts top 8");
  compare_route(*gpu, *cpu, cuda_random(3 * 512, 36, 4.0f), 3, 512, 10, "512 experts top 10");
  compare_route(*gpu, *cpu, cuda_random(2 * 64, 37, 4.0f), 2, 64, 64, "all 64 experts");
  compare_route(*gpu, *cpu, cuda_random(5 * 60, 38, 4.0f), 5, 60, 4, "60 experts top 4");
}

TEST_F(CudaRows, MoeRouteBreaksTiesTowardTheLowerId) {
  const int64_t E = 128, k = 8;
  std::vector<float> logits(2 * E, 0.5f);                                      // token 0: all equal
  for (int64_t e = 0; e < E; ++e) logits[E + e] = -static_cast<float>(e % 5);  // token 1: ties in groups
  logits[E + 100] = 3.0f;
  logits[E + 9] = 3.0f;
  compare_route(*gpu, *cpu, logits, 2, E, k, "ties");
  std::vector<int32_t> ids(2 * k);
  std::vector<float> weights(2 * k);
  BackendArray<float> dlogits = to_backend(*gpu, logits);
  gpu->moe_route(dlogits.data(), 2, E, k, ids.data(), weights.data());
  for (int64_t j = 0; j < k; ++j) {
    EXPECT_EQ(ids[j], j);
    EXPECT_FLOAT_EQ(weights[j], 1.0f / k);
  }
  EXPECT_EQ(ids[k], 9);
  EXPECT_EQ(ids[k + 1], 100);
  EXPECT_EQ(ids[k + 2], 0);  // then the zeros, lowest id first
  EXPECT_EQ(ids[k + 3], 5);
}

TEST_F(CudaRows, MoeRouteRefusesImpossibleShapes) {
  BackendArray<float> logits(*gpu, 64);
  std::vector<int32_t> ids(100);
  std::vector<float> weights(100);
  EXPECT_THROW(gpu->moe_route(logits.data(), 1, 64, 65, ids.data(), weights.data()), Error);
  EXPECT_THROW(gpu->moe_route(logits.data(), 1, 64, 0, ids.data(), weights.data()), Error);
}

TEST_F(CudaRows, GatherRowsInAnyOrderWithRepeats) {
  const int64_t n_rows = 20, n = 2049;
  const std::vector<float> x = cuda_random(n_rows * n, 39);
  const std::vector<int32_t> rows = {19, 0, 7, 7, 3};
  std::vector<float> expected(rows.size() * n);
  cpu->gather_rows(x.data(), rows, n, expected.data());
  BackendArray<float> dx = to_backend(*gpu, x), out = poisoned(*gpu, static_cast<int64_t>(rows.size()) * n);
  gpu->gather_rows(dx.data(), rows, n, out.data());
  expect_close(to_host(*gpu, out), expected, 0, 0, "gather_rows");
}

TEST_F(CudaRows, ScatterAddRowsDistinctAndRepeated) {
  // One product and one add per element when rows are distinct (the model's case): exact. With a
  // repeated row the two adds may happen in either order: one rounding apart.
  const int64_t n_rows = 12, n = 1500;
  for (const std::vector<int32_t>& rows : {std::vector<int32_t>{11, 2, 5, 0}, std::vector<int32_t>{4, 9, 4, 1, 4}}) {
    const int64_t m = static_cast<int64_t>(rows.size());
    const std::vector<float> x = cuda_random(m * n, 40), y = cuda_random(n_rows * n, 41);
    const std::vector<float> scale = cuda_random(m, 42);
    std::vector<float> expected = y;
    cpu->scatter_add_rows(x.data(), rows, scale, n, expected.data());
    BackendArray<float> dx = to_backend(*gpu, x), dy = to_backend(*gpu, y);
    gpu->scatter_add_rows(dx.data(), rows, scale, n, dy.data());
    expect_close(to_host(*gpu, dy), expected, 1e-6, 1e-6, "scatter_add_rows " + std::to_string(m) + " rows");
  }
  BackendArray<float> dx(*gpu, 8), dy(*gpu, 8);
  EXPECT_THROW(gpu->scatter_add_rows(dx.data(), std::vector<int32_t>{0}, std::vector<float>{}, 8, dy.data()), Error);
}

TEST_F(CudaRows, ScaleRowsSigmoid) {
  const int64_t T = 9, n = 3000;
  const std::vector<float> x = cuda_random(T * n, 43), logit = cuda_random(T, 44, 8.0f);
  std::vector<float> expected = x;
  cpu->scale_rows_sigmoid(expected.data(), logit.data(), T, n);
  BackendArray<float> dx = to_backend(*gpu, x), dl = to_backend(*gpu, logit);
  gpu->scale_rows_sigmoid(dx.data(), dl.data(), T, n);
  expect_close(to_host(*gpu, dx), expected, 1e-5, 1e-6, "scale_rows_sigmoid");
}

// stage() cycles through a ring of 16 pinned buffers per slot: 64 small ops in a row (every
// buffer reused four times), nothing waited for in between by the caller, must each see their
// own rows.
TEST_F(CudaRows, BackToBackStagedOpsSeeTheirOwnIndices) {
  const int64_t n_rows = 64, n = 256;
  const std::vector<float> x = cuda_random(n_rows * n, 45);
  BackendArray<float> dx = to_backend(*gpu, x), out = poisoned(*gpu, n_rows * n);
  for (int64_t r = 0; r < n_rows; ++r) {
    const std::vector<int32_t> rows = {static_cast<int32_t>(n_rows - 1 - r)};
    gpu->gather_rows(dx.data(), rows, n, out.data() + r * n);
  }
  const std::vector<float> got = to_host(*gpu, out);
  for (int64_t r = 0; r < n_rows; ++r)
    for (int64_t j = 0; j < n; ++j) ASSERT_EQ(got[r * n + j], x[(n_rows - 1 - r) * n + j]) << "row " << r;
}

// Repeated, prefix-equal, shorter, longer and growing index lists, all issued before anything is
// read back: the staging that skips unchanged data must never hand a kernel stale indices.
TEST_F(CudaRows, StagingOfRepeatedAndChangingIndices) {
  const int64_t n_rows = 30000, n = 4;
  const std::vector<float> x = cuda_random(n_rows * n, 46);
  std::vector<int32_t> many(20000);  // 80 KB: larger than the first staging buffer
  for (size_t i = 0; i < many.size(); ++i) many[i] = static_cast<int32_t>((i * 7919) % n_rows);
  const std::vector<std::vector<int32_t>> lists = {{1}, {1}, {2}, {1, 3}, {1}, {1, 3, 5}, many, {1}, {1, 3}, many, {4}};
  BackendArray<float> dx = to_backend(*gpu, x);
  std::vector<BackendArray<float>> outs;
  for (const auto& rows : lists) {
    outs.push_back(poisoned(*gpu, static_cast<int64_t>(rows.size()) * n));
    gpu->gather_rows(dx.data(), rows, n, outs.back().data());
  }
  for (size_t l = 0; l < lists.size(); ++l) {
    std::vector<float> expected(lists[l].size() * n);
    cpu->gather_rows(x.data(), lists[l], n, expected.data());
    expect_close(to_host(*gpu, outs[l]), expected, 0, 0, "gather list " + std::to_string(l));
  }
}

}  // namespace
}  // namespace peregrine::test
