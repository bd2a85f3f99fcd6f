// MoE with the routing kept in backend memory (backend.h: moe_route_device, matmul_experts,
// moe_combine) on the CPU backend and through Backend's default implementations:
//  - the ops against float64 references on random inputs for F32 / F16 / Q8_0 / Q4_K / Q6_K
//    experts, and bit for bit against what the host-grouped path computes (matmul on the
//    expert's rows, scatter_add_rows in ascending expert order);
//  - whole models (the tiny-moe fixture, a Q4_K_M make-synthetic qwen35moe) decoding with the
//    backend-routed path against the grouped path (ModelOptions::moe_routing): the same greedy
//    ids and bit-identical logits;
//  - on the emulated device, the host round trips of one MoE decode step with each path.
#include <gtest/gtest.h>

#include <bit>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "emulated_device_backend.h"
#include "peregrine/model.h"
#include "peregrine/synthetic.h"
#include "test_forward_util.h"
#include "test_model_util.h"
#include "test_moe_device_util.h"

namespace peregrine::test {
namespace {

constexpr int64_t kExperts = 6, kSlots = 4, kRows = 10, kInputs = 256;

// Float activations, 256-term products: the CPU's dot() keeps 8 partial sums of 32 products and
// adds them in a tree, so each output is within γ_36 = 36·2⁻²⁴ ≈ 2.2e-6 of Σ|w·x| of the exact sum.
constexpr double kFloatProductTol = 36.0 / (1 << 24);

size_t count_bit_differences(const std::vector<float>& a, const std::vector<float>& b) {
  size_t n = a.size() == b.size() ? 0 : std::max(a.size(), b.size());
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    n += std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i]);
  return n;
}

// What matmul on each slot's expert rows gives (the grouped path's arithmetic for each row).
std::vector<float> per_slot_matmul(Backend& be, const ExpertsView& w, const std::vector<int32_t>& ids, int64_t T,
                                   int64_t k, const std::vector<float>& x, bool x_per_slot) {
  std::vector<float> y(static_cast<size_t>(T * k * w.rows));
  for (int64_t s = 0; s < T * k; ++s)
    be.matmul(w.expert(ids[s]), x.data() + (x_per_slot ? s : s / k) * w.stacked.n_in, y.data() + s * w.rows, 1);
  return y;
}

class MoeDeviceOps : public ::testing::TestWithParam<TensorType> {};

TEST_P(MoeDeviceOps, MatmulExpertsMatchesFloat64AndPerSlotMatmul) {
  const TensorType type = GetParam();
  auto cpu = make_cpu_backend(2, ActivationMode::Float);
  auto cpu_q8 = make_cpu_backend(2, ActivationMode::Quantized8);
  double worst = 0;
  uint32_t seed = 11;
  for (const int64_t stride : {kRows, 2 * kRows}) {  // plain stack, one half of a fused gate_up
    const StackedExperts w(type, kExperts, kRows, stride, kInputs, seed++);
    const ExpertsView view = w.view(w.bytes.data());
    ASSERT_EQ(view.count(), kExperts);
    for (const int64_t T : {1, 3, 9}) {
      for (const bool per_slot : {false, true}) {
        const std::vector<int32_t> ids = random_routing(T, kSlots, kExperts, seed++);
        const std::vector<float> x = moe_random(static_cast<size_t>((per_slot ? T * kSlots : T) * kInputs), seed++, 2.0f);
        const std::string what = std::string(tensor_type_info(type).name) + " stride " + std::to_string(stride) +
                                 " T " + std::to_string(T) + (per_slot ? " x per slot" : " x per token");
        const ExpertsReference ref = experts_reference(w, ids, T, kSlots, x, per_slot);
        const std::vector<float> grouped = per_slot_matmul(*cpu, view, ids, T, kSlots, x, per_slot);

        std::vector<float> y(ref.y.size(), NAN);
        cpu->matmul_experts(view, ids.data(), T, kSlots, x.data(), per_slot, y.data());
        worst = std::max(worst, expect_experts_close(y, ref, kFloatProductTol, what + ", CPU override"));
        EXPECT_EQ(count_bit_differences(y, grouped), 0u) << what << ": the CPU override differs from matmul";

        std::vector<float> y_default(ref.y.size(), NAN);
        cpu->Backend::matmul_experts(view, ids.data(), T, kSlots, x.data(), per_slot, y_default.data());
        EXPECT_EQ(count_bit_differences(y_default, grouped), 0u) << what << ": the default differs from matmul";

        std::vector<float> y_q8(ref.y.size(), NAN);
        cpu_q8->matmul_experts(view, ids.data(), T, kSlots, x.data(), per_slot, y_q8.data());
        EXPECT_EQ(count_bit_differences(y_q8, per_slot_matmul(*cpu_q8, view, ids, T, kSlots, x, per_slot)), 0u)
            << what << ": the Quantized8 override differs from its matmul";
      }
    }
  }
  RecordProperty("worst_err_over_magnitude", fmt::format("{:.3e}", worst));
}

INSTANTIATE_TEST_SUITE_P(Types, MoeDeviceOps,
                         ::testing::Values(TensorType::F32, TensorType::F16, TensorType::Q8_0, TensorType::Q4_0,
                                           TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q4_K,
                                           TensorType::Q6_K),
                         [](const auto& info) { return std::string(tensor_type_info(info.param).name); });

TEST(MoeDeviceOps, MatmulExpertsRejectsAnExpertOutsideTheTensor) {
  auto cpu = make_cpu_backend(1);
  const StackedExperts w(TensorType::F32, kExperts, kRows, kRows, 16, 3);
  const std::vector<int32_t> ids = {0, static_cast<int32_t>(kExperts)};
  const std::vector<float> x = moe_random(16, 4);
  std::vector<float> y(2 * kRows);
  EXPECT_THROW(cpu->matmul_experts(w.view(w.bytes.data()), ids.data(), 1, 2, x.data(), false, y.data()), Error);
  EXPECT_THROW(cpu->Backend::matmul_experts(w.view(w.bytes.data()), ids.data(), 1, 2, x.data(), false, y.data()),
               Error);
}

// The weighted sum equals scatter_add_rows run expert by expert in ascending id (the grouped
// path) bit for bit, and a float64 sum within 2k+2 roundings of the magnitudes.
TEST(MoeDeviceOps, CombineAddsInTheGroupedOrder) {
  auto cpu = make_cpu_backend(1);
  const int64_t n = 37, k = 5, E = 9;
  for (const int64_t T : {1, 4, 9}) {
    const std::vector<int32_t> ids = random_routing(T, k, E, 20 + static_cast<uint32_t>(T));
    const std::vector<float> expert_out = moe_random(static_cast<size_t>(T * k * n), 30 + static_cast<uint32_t>(T), 3.0f);
    std::vector<float> weights = moe_random(static_cast<size_t>(T * k), 40 + static_cast<uint32_t>(T));
    for (float& w : weights) w = std::abs(w);
    const std::vector<float> out0 = moe_random(static_cast<size_t>(T * n), 50 + static_cast<uint32_t>(T));

    std::vector<float> grouped = out0;
    for (int32_t e = 0; e < E; ++e)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t j = 0; j < k; ++j)
          if (ids[t * k + j] == e) {
            const int32_t row = static_cast<int32_t>(t);
            cpu->scatter_add_rows(expert_out.data() + (t * k + j) * n, std::span(&row, 1),
                                  std::span(weights.data() + t * k + j, 1), n, grouped.data());
          }
    std::vector<double> sum, magnitude;
    combine_reference(out0, expert_out, weights, T, k, n, sum, magnitude);

    std::vector<float> out = out0, out_default = out0;
    cpu->moe_combine(expert_out.data(), ids.data(), weights.data(), T, k, n, out.data());
    cpu->Backend::moe_combine(expert_out.data(), ids.data(), weights.data(), T, k, n, out_default.data());
    EXPECT_EQ(count_bit_differences(out, grouped), 0u) << "T " << T;
    EXPECT_EQ(count_bit_differences(out_default, grouped), 0u) << "T " << T << ", default";
    for (size_t i = 0; i < out.size(); ++i)
      ASSERT_LE(std::abs(out[i] - sum[i]), (2 * k + 2) * magnitude[i] / (1 << 24)) << "T " << T << " value " << i;
  }
}

TEST(MoeDeviceOps, RouteDeviceEqualsRoute) {
  auto cpu = make_cpu_backend(1);
  const int64_t T = 5, E = 16, k = 4;
  const std::vector<float> logits = moe_random(static_cast<size_t>(T * E), 77, 4.0f);
  std::vector<int32_t> ids(T * k, -1), ids_device(T * k, -1), ids_default(T * k, -1);
  std::vector<float> w(T * k, NAN), w_device(T * k, NAN), w_default(T * k, NAN);
  cpu->moe_route(logits.data(), T, E, k, ids.data(), w.data());
  cpu->moe_route_device(logits.data(), T, E, k, ids_device.data(), w_device.data());
  cpu->Backend::moe_route_device(logits.data(), T, E, k, ids_default.data(), w_default.data());
  EXPECT_EQ(ids_device, ids);
  EXPECT_EQ(ids_default, ids);
  EXPECT_EQ(count_bit_differences(w_device, w), 0u);
  EXPECT_EQ(count_bit_differences(w_default, w), 0u);
}

// ---- whole models: backend-routed against grouped ----

struct DecodeTrace {
  std::vector<int32_t> ids;
  std::vector<std::vector<float>> logits;  // every step's rows
};

// A prompt step, `steps` greedy single-token steps, a 4-token verify step with all logits and
// checkpoints, a rollback, then an MTP step over the prompt.
DecodeTrace run_trace(Model& model, std::span<const int32_t> prompt, int steps) {
  DecodeTrace tr;
  const int64_t V = model.config().n_vocab, n = model.config().n_embd;
  Sequence seq = model.new_sequence();
  auto keep = [&](std::span<const float> l) { tr.logits.emplace_back(l.begin(), l.end()); };
  keep(model.evaluate(seq, prompt, 0, LogitsFor::EveryToken));
  const std::vector<float> hidden(seq.hidden().begin(), seq.hidden().end());
  for (int s = 0; s < steps; ++s) {
    const int32_t id = argmax(seq.logits().subspan(seq.logits().size() - V));
    tr.ids.push_back(id);
    keep(model.evaluate(seq, std::span(&id, 1), seq.n_past(), LogitsFor::LastToken));
  }
  seq.set_delta_checkpoints(4);
  const std::vector<int32_t> verify(tr.ids.begin(), tr.ids.begin() + 4);
  keep(model.evaluate(seq, verify, seq.n_past(), LogitsFor::EveryToken));
  model.rollback(seq, seq.n_past() - 2);
  const int32_t id = tr.ids.back();
  keep(model.evaluate(seq, std::span(&id, 1), seq.n_past(), LogitsFor::LastToken));
  if (model.config().has_mtp()) {
    std::vector<float> h_in(hidden.size(), 0.0f);
    std::copy(hidden.begin(), hidden.end() - n, h_in.begin() + n);
    keep(model.evaluate_mtp(seq, prompt, h_in, 0, LogitsFor::EveryToken));
  }
  return tr;
}

void expect_same_trace(const DecodeTrace& got, const DecodeTrace& want, const std::string& what) {
  EXPECT_EQ(got.ids, want.ids) << what << ": greedy ids";
  ASSERT_EQ(got.logits.size(), want.logits.size()) << what;
  for (size_t i = 0; i < got.logits.size(); ++i)
    EXPECT_EQ(count_bit_differences(got.logits[i], want.logits[i]), 0u) << what << ": logits of call " << i;
}

void compare_paths(const GgufFile& file, ModelOptions o, std::span<const int32_t> prompt, const std::string& what) {
  o.moe_routing = MoeRoutingMode::Grouped;
  const DecodeTrace grouped = run_trace(*Model::load(file, o), prompt, 12);
  o.moe_routing = MoeRoutingMode::Auto;
  const DecodeTrace routed = run_trace(*Model::load(file, o), prompt, 12);
  expect_same_trace(routed, grouped, what);
}

TEST(MoeDeviceModel, TinyMoeFixtureDecodesBitIdenticallyToTheGroupedPath) {
  TinyFixture fx("tiny-moe-f32");
  ModelOptions o;
  o.context_length = 256;
  o.n_threads = 2;
  const std::span<const int32_t> prompt(fx.tokens.data(), 8);  // 8 tokens: the prompt step is backend-routed too
  compare_paths(fx.file, o, prompt, "tiny-moe-f32");
  const std::span<const int32_t> long_prompt(fx.tokens.data(), 20);  // grouped prompt, routed decode
  compare_paths(fx.file, o, long_prompt, "tiny-moe-f32, 20-token prompt");
}

TEST(MoeDeviceModel, QuantizedSyntheticMoeDecodesBitIdenticallyToTheGroupedPath) {
  ModelScratch scratch("moe-device");
  synthetic::Options so;
  so.shape = synthetic::shape_from_json_text(
      R"({"base": "qwen3.6-35b-a3b", "name": "moe-device", "n_embd": 256, "n_layer": 4, "n_head": 2,
          "n_head_kv": 1, "head_dim": 64, "ssm_group_count": 2, "ssm_time_step_rank": 4, "ssm_state_size": 32,
          "n_expert": 16, "n_expert_used": 8, "n_ff_expert": 256, "n_ff_shared_expert": 256, "n_vocab": 512})",
      "moe-device");
  so.type = synthetic::FileType::Q4_K_M;
  so.seed = 3;
  so.mtp = true;
  so.threads = 2;
  so.out = scratch / "moe-device.gguf";
  synthetic::write_model(so);
  const GgufFile file = GgufFile::open(so.out);
  const std::vector<int32_t> prompt = {5, 77, 300, 12, 9, 401};
  for (const ActivationMode mode : {ActivationMode::Float, ActivationMode::Quantized8}) {
    ModelOptions o;
    o.context_length = 64;
    o.n_threads = 2;
    o.activations = mode;
    compare_paths(file, o, prompt, mode == ActivationMode::Float ? "Q4_K_M, float activations" : "Q4_K_M, Quantized8");
  }
}

// One MoE decode step on the emulated device: the grouped path hands the routing to the host once
// per MoE layer; the backend-routed path not at all, and downloads only the step's output rows.
TEST(MoeDeviceModel, ADecodeStepHasNoRoutingRoundTrip) {
  TinyFixture fx("tiny-moe-f32");
  struct StepCount {
    uint64_t routing_readbacks, downloads, download_bytes, allocations;
    std::vector<float> logits;
  };
  auto one_step = [&](MoeRoutingMode mode) {
    ModelOptions o;
    o.context_length = 256;
    o.moe_routing = mode;
    auto backend = std::make_unique<EmulatedDeviceBackend>();
    EmulatedDeviceBackend* device = backend.get();
    auto model = Model::load(fx.file, o, nullptr, std::move(backend));
    Sequence seq = model->new_sequence();
    model->evaluate(seq, std::span(fx.tokens.data(), 12), 0, LogitsFor::LastToken);
    int32_t token = argmax(seq.logits());
    model->evaluate(seq, std::span(&token, 1), seq.n_past(), LogitsFor::LastToken);  // warm-up: outputs sized once
    token = argmax(seq.logits());
    device->reset_counters();
    const auto l = model->evaluate(seq, std::span(&token, 1), seq.n_past(), LogitsFor::LastToken);
    const auto c = device->counters();
    return StepCount{c.routing_readbacks, c.downloads, c.download_bytes, c.allocations, {l.begin(), l.end()}};
  };
  const StepCount grouped = one_step(MoeRoutingMode::Grouped);
  const StepCount routed = one_step(MoeRoutingMode::Auto);
  const auto& c = Model::load(fx.file, {})->config();
  const uint64_t moe_layers = static_cast<uint64_t>(c.n_layer);

  EXPECT_EQ(grouped.routing_readbacks, moe_layers);  // the "before"
  EXPECT_EQ(routed.routing_readbacks, 0u);
  EXPECT_EQ(routed.downloads, grouped.downloads);  // the step's output rows only
  EXPECT_LE(routed.download_bytes, static_cast<uint64_t>(c.n_vocab + c.n_embd) * sizeof(float));
  EXPECT_EQ(routed.allocations, 0u);
  EXPECT_EQ(count_bit_differences(routed.logits, grouped.logits), 0u);
  RecordProperty("grouped_step_routing_readbacks", std::to_string(grouped.routing_readbacks));
  RecordProperty("grouped_step_downloads", std::to_string(grouped.downloads));
  RecordProperty("routed_step_routing_readbacks", std::to_string(routed.routing_readbacks));
  RecordProperty("routed_step_downloads", std::to_string(routed.downloads));
  RecordProperty("routed_step_download_bytes", std::to_string(routed.download_bytes));
}

}  // namespace
}  // namespace peregrine::test
