// The CUDA backend's MoE ops with the routing in device memory (cuda_moe.cu, moe_route_device in
// cuda_elementwise.cu): matmul_experts against float64 references for every weight type the
// dense GEMV supports (and against the backend's own matmul on the expert's rows), moe_combine
// bit for bit against scatter_add_rows in the grouped path's order, moe_route_device against
// moe_route, and the tiny-moe fixture decoding on CUDA with each MoE path. Skips without a device
// (runs on the host under -DPEREGRINE_CUDA_EMULATION=ON).
#include <gtest/gtest.h>

#include <bit>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cuda_test_util.h"
#include "peregrine/model.h"
#include "test_forward_util.h"
#include "test_moe_device_util.h"

namespace peregrine::test {
namespace {

constexpr int64_t kExperts = 6, kSlots = 4, kRows = 10;
// Float activations, products of at most 264 terms: each lane sums its groups of 8 with FMAs and
// a 5-step warp tree adds the lanes, well inside γ_40 = 40·2⁻²⁴ ≈ 2.4e-6 of Σ|w·x|.
constexpr double kGemvTol = 40.0 / (1 << 24);

size_t count_bit_differences(const std::vector<float>& a, const std::vector<float>& b) {
  size_t n = a.size() == b.size() ? 0 : std::max(a.size(), b.size());
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    n += std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i]);
  return n;
}

class CudaMoeTest : public CudaTest {
 protected:
  // One matmul_experts call on the GPU, outputs poisoned first.
  std::vector<float> run_experts(const ExpertsView& view, const std::vector<int32_t>& ids, int64_t T,
                                 const std::vector<float>& x, bool per_slot) {
    const auto ids_gpu = to_backend(*gpu, ids);
    const auto x_gpu = to_backend(*gpu, x);
    BackendArray<float> y_gpu = poisoned(*gpu, T * kSlots * view.rows);
    gpu->matmul_experts(view, ids_gpu.data(), T, kSlots, x_gpu.data(), per_slot, y_gpu.data());
    return to_host(*gpu, y_gpu);
  }

  void check_type(TensorType type) {
    std::vector<int64_t> widths = {256, 512};
    if (tensor_type_info(type).block_elems == 1) widths.push_back(260);  // a partial group of 8 at the end
    uint32_t seed = 300u + static_cast<uint32_t>(type);
    double worst = 0;
    for (const int64_t n_in : widths) {
      for (const int64_t stride : {kRows, 2 * kRows}) {
        const StackedExperts w(type, kExperts, kRows, stride, n_in, seed++);
        const ExpertsView view = w.view(gpu->place_weights(w.bytes.data(), w.bytes.size(), "experts"));
        for (const int64_t T : {1, 2, 5, 9, 11}) {  // 11: more than a GEMV takes, the default path
          for (const bool per_slot : {false, true}) {
            const std::vector<int32_t> ids = random_routing(T, kSlots, kExperts, seed++);
            const std::vector<float> x =
                moe_random(static_cast<size_t>((per_slot ? T * kSlots : T) * n_in), seed++, 2.0f);
            const std::string what = std::string(tensor_type_info(type).name) + " n_in " + std::to_string(n_in) +
                                     " stride " + std::to_string(stride) + " T " + std::to_string(T) +
                                     (per_slot ? " x per slot" : " x per token");
            const std::vector<float> y = run_experts(view, ids, T, x, per_slot);
            worst = std::max(worst, expect_experts_close(y, experts_reference(w, ids, T, kSlots, x, per_slot),
                                                         kGemvTol, what));
          }
        }
      }
    }
    RecordProperty("worst_err_over_magnitude", fmt::format("{:.3e}", worst));
  }
};

TEST_F(CudaMoeTest, MatmulExpertsF32) { check_type(TensorType::F32); }
TEST_F(CudaMoeTest, MatmulExpertsF16) { check_type(TensorType::F16); }
TEST_F(CudaMoeTest, MatmulExpertsBF16) { check_type(TensorType::BF16); }
TEST_F(CudaMoeTest, MatmulExpertsQ8_0) { check_type(TensorType::Q8_0); }
TEST_F(CudaMoeTest, MatmulExpertsQ4_0) { check_type(TensorType::Q4_0); }
TEST_F(CudaMoeTest, MatmulExpertsQ4_1) { check_type(TensorType::Q4_1); }
TEST_F(CudaMoeTest, MatmulExpertsQ5_0) { check_type(TensorType::Q5_0); }
TEST_F(CudaMoeTest, MatmulExpertsQ5_1) { check_type(TensorType::Q5_1); }
TEST_F(CudaMoeTest, MatmulExpertsQ4_K) { check_type(TensorType::Q4_K); }
TEST_F(CudaMoeTest, MatmulExpertsQ5_K) { check_type(TensorType::Q5_K); }
TEST_F(CudaMoeTest, MatmulExpertsQ6_K) { check_type(TensorType::Q6_K); }
TEST_F(CudaMoeTest, MatmulExpertsIQ4_XS) { check_type(TensorType::IQ4_XS); }

// Against the backend's own matmul on each slot's expert rows (the grouped path's products):
// the same decoded weights and float activations, only the summation order differs.
TEST_F(CudaMoeTest, MatmulExpertsAgreesWithMatmulOnTheExpertRows) {
  const int64_t n_in = 512, T = 3;
  const StackedExperts w(TensorType::Q4_K, kExperts, kRows, kRows, n_in, 5);
  const ExpertsView view = w.view(gpu->place_weights(w.bytes.data(), w.bytes.size(), "experts"));
  const std::vector<int32_t> ids = random_routing(T, kSlots, kExperts, 6);
  const std::vector<float> x = moe_random(static_cast<size_t>(T * n_in), 7, 2.0f);
  const std::vector<float> y = run_experts(view, ids, T, x, false);
  const ExpertsReference ref = experts_reference(w, ids, T, kSlots, x, false);
  const auto x_gpu = to_backend(*gpu, x);
  BackendArray<float> row = poisoned(*gpu, kRows);
  for (int64_t s = 0; s < T * kSlots; ++s) {
    gpu->matmul(view.expert(ids[s]), x_gpu.data() + (s / kSlots) * n_in, row.data(), 1);
    const std::vector<float> expected = to_host(*gpu, row);
    for (int64_t r = 0; r < kRows; ++r)
      EXPECT_LE(std::abs(y[s * kRows + r] - expected[r]), 2 * kGemvTol * ref.magnitude[s * kRows + r])
          << "slot " << s << " row " << r;
  }
}

TEST_F(CudaMoeTest, CombineEqualsScatterAddInTheGroupedOrder) {
  const int64_t n = 300, k = 8, E = 12;
  for (const int64_t T : {1, 4, 9}) {
    const auto seed = static_cast<uint32_t>(T);
    const std::vector<int32_t> ids = random_routing(T, k, E, 60 + seed);
    const std::vector<float> expert_out = moe_random(static_cast<size_t>(T * k * n), 70 + seed, 3.0f);
    std::vector<float> weights = moe_random(static_cast<size_t>(T * k), 80 + seed);
    for (float& w : weights) w = std::abs(w);
    const std::vector<float> out0 = moe_random(static_cast<size_t>(T * n), 90 + seed);

    const auto expert_out_gpu = to_backend(*gpu, expert_out);
    const auto ids_gpu = to_backend(*gpu, ids);
    const auto weights_gpu = to_backend(*gpu, weights);
    auto grouped_gpu = to_backend(*gpu, out0);
    for (int32_t e = 0; e < E; ++e)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t j = 0; j < k; ++j)
          if (ids[t * k + j] == e) {
            const int32_t row = static_cast<int32_t>(t);
            gpu->scatter_add_rows(expert_out_gpu.data() + (t * k + j) * n, std::span(&row, 1),
                                  std::span(weights.data() + t * k + j, 1), n, grouped_gpu.data());
          }
    auto out_gpu = to_backend(*gpu, out0);
    gpu->moe_combine(expert_out_gpu.data(), ids_gpu.data(), weights_gpu.data(), T, k, n, out_gpu.data());
    const std::vector<float> out = to_host(*gpu, out_gpu), grouped = to_host(*gpu, grouped_gpu);
    EXPECT_EQ(count_bit_differences(out, grouped), 0u) << "T " << T;
    std::vector<double> sum, magnitude;
    combine_reference(out0, expert_out, weights, T, k, n, sum, magnitude);
    for (size_t i = 0; i < out.size(); ++i)
      ASSERT_LE(std::abs(out[i] - sum[i]), (2 * k + 2) * magnitude[i] / (1 << 24)) << "T " << T << " value " << i;
  }
}

// A token naming one expert twice is never produced by the router; the CPU backend throws, the
// kernel cannot, so that token's outputs become NaN while the other tokens add normally.
TEST_F(CudaMoeTest, CombineGivesNaNForATokenNamingAnExpertTwice) {
  const int64_t n = 300, k = 4, T = 3;
  std::vector<int32_t> ids = random_routing(T, k, 8, 41);
  ids[1 * k + 3] = ids[1 * k + 0];  // token 1 repeats its first expert
  const std::vector<float> expert_out = moe_random(static_cast<size_t>(T * k * n), 42, 3.0f);
  std::vector<float> weights = moe_random(static_cast<size_t>(T * k), 43);
  for (float& w : weights) w = std::abs(w);
  const std::vector<float> out0 = moe_random(static_cast<size_t>(T * n), 44);
  const auto expert_out_gpu = to_backend(*gpu, expert_out);
  const auto ids_gpu = to_backend(*gpu, ids);
  const auto weights_gpu = to_backend(*gpu, weights);
  auto out_gpu = to_backend(*gpu, out0);
  gpu->moe_combine(expert_out_gpu.data(), ids_gpu.data(), weights_gpu.data(), T, k, n, out_gpu.data());
  const std::vector<float> out = to_host(*gpu, out_gpu);
  std::vector<double> sum, magnitude;
  combine_reference(out0, expert_out, weights, T, k, n, sum, magnitude);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < n; ++i) {
      const float v = out[t * n + i];
      if (t == 1)
        ASSERT_TRUE(std::isnan(v)) << "value " << i << " of the repeating token: " << v;
      else
        ASSERT_LE(std::abs(v - sum[t * n + i]), (2 * k + 2) * magnitude[t * n + i] / (1 << 24))
            << "token " << t << " value " << i;
    }
}

TEST_F(CudaMoeTest, RouteDeviceEqualsRoute) {
  const int64_t T = 9, E = 256, k = 8;  // Qwen 3.6 35B-A3B's router
  const std::vector<float> logits = moe_random(static_cast<size_t>(T * E), 99, 4.0f);
  const auto logits_gpu = to_backend(*gpu, logits);
  std::vector<int32_t> ids(T * k, -1);
  std::vector<float> w(T * k, NAN);
  gpu->moe_route(logits_gpu.data(), T, E, k, ids.data(), w.data());
  BackendArray<int32_t> ids_gpu(*gpu, T * k);
  BackendArray<float> w_gpu = poisoned(*gpu, T * k);
  gpu->moe_route_device(logits_gpu.data(), T, E, k, ids_gpu.data(), w_gpu.data());
  EXPECT_EQ(to_host(*gpu, ids_gpu), ids);
  EXPECT_EQ(count_bit_differences(to_host(*gpu, w_gpu), w), 0u);
  std::vector<int32_t> cpu_ids(T * k);
  std::vector<float> cpu_w(T * k);
  cpu->moe_route(logits.data(), T, E, k, cpu_ids.data(), cpu_w.data());
  EXPECT_EQ(ids, cpu_ids);
}

// The tiny-moe fixture on CUDA: a prompt, greedy decode steps and a 4-token verify with the
// backend-routed path against the grouped path. The expert products differ only in summation
// order (kGemvTol), so the ids must agree and the logits stay within kLogitTol of each other.
TEST_F(CudaMoeTest, TinyMoeFixtureDecodesLikeTheGroupedPath) {
  TinyFixture fx("tiny-moe-f32");
  auto run = [&](MoeRoutingMode mode) {
    ModelOptions o;
    o.context_length = 256;
    o.backend = BackendKind::Cuda;
    o.moe_routing = mode;
    auto model = Model::load(fx.file, o);
    const int64_t V = model->config().n_vocab;
    Sequence seq = model->new_sequence();
    std::vector<int32_t> ids;
    std::vector<float> logits;
    auto keep = [&](std::span<const float> l) { logits.insert(logits.end(), l.begin(), l.end()); };
    keep(model->evaluate(seq, std::span(fx.tokens.data(), 6), 0, LogitsFor::EveryToken));
    for (int s = 0; s < 8; ++s) {
      const int32_t id = argmax(seq.logits().subspan(seq.logits().size() - V));
      ids.push_back(id);
      keep(model->evaluate(seq, std::span(&id, 1), seq.n_past(), LogitsFor::LastToken));
    }
    keep(model->evaluate(seq, std::span(ids.data(), 4), seq.n_past(), LogitsFor::EveryToken));
    return std::pair{ids, logits};
  };
  const auto [grouped_ids, grouped_logits] = run(MoeRoutingMode::Grouped);
  const auto [routed_ids, routed_logits] = run(MoeRoutingMode::Auto);
  EXPECT_EQ(routed_ids, grouped_ids);
  const double diff = max_abs(routed_logits, grouped_logits);
  EXPECT_LE(diff, kLogitTol);
  RecordProperty("max_logit_diff", fmt::format("{:.3e}", diff));
}

}  // namespace
}  // namespace peregrine::test
