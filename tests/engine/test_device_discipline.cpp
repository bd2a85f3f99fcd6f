// The model on a backend whose memory the host cannot dereference (EmulatedDeviceBackend): every
// forward path, the MTP head, rollback, snapshots, the KV cache types and the diagnostics run
// without touching backend memory from the host, and give bit for bit what the CPU backend gives
// (the same CPU code runs underneath, so any difference is a bug in how the model moves data).
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "test_device_discipline_util.h"
#include "test_tensor_recorder.h"

namespace peregrine {
namespace {

using namespace test;

class DeviceDiscipline : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { fx = std::make_unique<TinyFixture>(GetParam()); }
  std::vector<int32_t> greedy_prompt() const { return fx->meta["greedy"]["prompt"].get<std::vector<int32_t>>(); }
  std::unique_ptr<TinyFixture> fx;
};

TEST_P(DeviceDiscipline, TheInjectedBackendRunsTheModel) {
  TwinModels m(*fx);
  EXPECT_EQ(&m.dev->backend(), m.device);
  EXPECT_FALSE(m.dev->backend().host_memory());
  const auto after_load = m.device->counters();
  EXPECT_GT(after_load.weight_placements, 0u) << "the weights were never placed in backend memory";
  Sequence seq = m.dev->new_sequence();
  m.dev->evaluate(seq, std::span(fx->tokens).first(4), 0, LogitsFor::LastToken);
  EXPECT_GT(m.device->counters().ops, after_load.ops) << "evaluate ran no operation on the injected backend";
}

TEST_P(DeviceDiscipline, OneBatchLogitsAndHiddenAreBitIdentical) {
  TwinModels m(*fx);
  Sequence sc = m.cpu->new_sequence(), sd = m.dev->new_sequence();
  const auto lc = copy_of(m.cpu->evaluate(sc, fx->tokens, 0, LogitsFor::EveryToken));
  const auto ld = copy_of(m.dev->evaluate(sd, fx->tokens, 0, LogitsFor::EveryToken));
  expect_bitwise_equal(ld, lc, "logits of all 64 positions");
  expect_bitwise_equal(sd.hidden(), sc.hidden(), "hidden rows");
  expect_bitwise_equal(sd.logits(), sc.logits(), "Sequence::logits()");
  // And still llama.cpp's numbers (so both runs really computed the model).
  EXPECT_LE(max_abs(ld, fx->ref("logits")), kLogitTol);
  EXPECT_EQ(sd.n_past(), 64);

  // Only the last row's logits.
  Sequence lc1 = m.cpu->new_sequence(), ld1 = m.dev->new_sequence();
  const auto last_c = copy_of(m.cpu->evaluate(lc1, fx->tokens, 0, LogitsFor::LastToken));
  expect_bitwise_equal(m.dev->evaluate(ld1, fx->tokens, 0, LogitsFor::LastToken), last_c, "last-row logits");
}

TEST_P(DeviceDiscipline, ChunkedPrefillAndSingleStepsAreBitIdentical) {
  ModelOptions o = fixture_options();
  o.max_batch = 7;  // the 52-token chunk is split across steps
  TwinModels m(*fx, o);
  Sequence sc = m.cpu->new_sequence(), sd = m.dev->new_sequence();
  size_t at = 0;
  for (size_t len : {10, 1, 1, 52}) {
    const auto part = std::span(fx->tokens).subspan(at, len);
    const auto lc = copy_of(m.cpu->evaluate(sc, part, sc.n_past(), LogitsFor::EveryToken));
    expect_bitwise_equal(m.dev->evaluate(sd, part, sd.n_past(), LogitsFor::EveryToken), lc,
                         "chunk at " + std::to_string(at));
    expect_bitwise_equal(sd.hidden(), sc.hidden(), "hidden of chunk at " + std::to_string(at));
    at += len;
  }
  sc.reset();
  sd.reset();
  EXPECT_EQ(sd.n_past(), 0);
  for (size_t t = 0; t < fx->tokens.size(); ++t) {
    const auto one = std::span(fx->tokens).subspan(t, 1);
    const auto lc = copy_of(m.cpu->evaluate(sc, one, sc.n_past(), LogitsFor::LastToken));
    expect_bitwise_equal(m.dev->evaluate(sd, one, sd.n_past(), LogitsFor::LastToken), lc,
                         "single step " + std::to_string(t));
  }
}

TEST_P(DeviceDiscipline, DeltaRuleFormsAreBitIdentical) {
  for (DeltaRuleMode mode : {DeltaRuleMode::Recurrent, DeltaRuleMode::Chunked}) {
    ModelOptions o = fixture_options();
    o.delta_rule = mode;
    o.delta_chunk = 16;
    TwinModels m(*fx, o);
    Sequence sc = m.cpu->new_sequence(), sd = m.dev->new_sequence();
    const auto lc = copy_of(m.cpu->evaluate(sc, fx->tokens, 0, LogitsFor::EveryToken));
    expect_bitwise_equal(m.dev->evaluate(sd, fx->tokens, 0, LogitsFor::EveryToken), lc,
                         mode == DeltaRuleMode::Recurrent ? "recurrent" : "chunked");
  }
}

TEST_P(DeviceDiscipline, MtpHeadIsBitIdentical) {
  TwinModels m(*fx);
  const int64_t n = m.cpu->config().n_embd, N = static_cast<int64_t>(fx->tokens.size());
  Sequence sc = m.cpu->new_sequence(), sd = m.dev->new_sequence();
  m.cpu->evaluate(sc, fx->tokens, 0, LogitsFor::LastToken);
  m.dev->evaluate(sd, fx->tokens, 0, LogitsFor::LastToken);
  const auto h_in = shifted_rows(sc.hidden(), N, n);
  const auto lc = copy_of(m.cpu->evaluate_mtp(sc, fx->tokens, h_in, 0, LogitsFor::EveryToken));
  expect_bitwise_equal(m.dev->evaluate_mtp(sd, fx->tokens, h_in, 0, LogitsFor::EveryToken), lc,
                       "MTP logits, one batch");
  expect_bitwise_equal(sd.mtp_hidden(), sc.mtp_hidden(), "MTP hidden rows");
  EXPECT_EQ(sd.mtp_n_past(), N);
  EXPECT_LE(max_abs(lc, fx->ref("mtp_logits")), kLogitTol);

  // A chained 3-step draft after the greedy prompt, the head's own rows fed back from the
  // sequence (aliasing evaluate_mtp's output, which must then be host-visible).
  const auto prompt = greedy_prompt();
  const std::span<const int32_t> head(prompt.data(), 15);
  sc.reset();
  sd.reset();
  m.cpu->evaluate(sc, head, 0, LogitsFor::LastToken);
  m.dev->evaluate(sd, head, 0, LogitsFor::LastToken);
  const auto hidden = copy_of(sc.hidden());
  m.cpu->evaluate_mtp(sc, head, shifted_rows(hidden, 15, n), 0, LogitsFor::LastToken);
  m.dev->evaluate_mtp(sd, head, shifted_rows(hidden, 15, n), 0, LogitsFor::LastToken);
  const std::vector<float> h_prompt(hidden.end() - n, hidden.end());
  int32_t token_c = prompt[15], token_d = prompt[15];
  for (int64_t step = 0; step < 3; ++step) {
    const std::span<const float> hc = step == 0 ? std::span<const float>(h_prompt) : sc.mtp_hidden();
    const std::span<const float> hd = step == 0 ? std::span<const float>(h_prompt) : sd.mtp_hidden();
    const auto l_c = copy_of(m.cpu->evaluate_mtp(sc, std::span(&token_c, 1), hc, 15 + step, LogitsFor::LastToken));
    const auto l_d = copy_of(m.dev->evaluate_mtp(sd, std::span(&token_d, 1), hd, 15 + step, LogitsFor::LastToken));
    expect_bitwise_equal(l_d, l_c, "chained draft step " + std::to_string(step));
    token_c = argmax(l_c);
    token_d = argmax(l_d);
  }
}

TEST_P(DeviceDiscipline, RollbackAfterCheckpointedEvaluateIsBitIdentical) {
  TwinModels m(*fx);
  const auto prompt = greedy_prompt();
  const std::span<const int32_t> verify = std::span(fx->tokens).subspan(16, 6);
  Sequence sc = m.cpu->new_sequence(), sd = m.dev->new_sequence();
  for (Sequence* s : {&sc, &sd}) s->set_delta_checkpoints(8);
  EXPECT_EQ(sd.delta_checkpoints(), 8);
  m.cpu->evaluate(sc, prompt, 0, LogitsFor::LastToken);
  m.dev->evaluate(sd, prompt, 0, LogitsFor::LastToken);
  m.cpu->evaluate(sc, verify, 16, LogitsFor::EveryToken);
  m.dev->evaluate(sd, verify, 16, LogitsFor::EveryToken);
  expect_bitwise_equal(sd.logits(), sc.logits(), "checkpointed evaluate");

  for (int64_t to : {19, 17}) {  // the second rollback still finds every row of the call
    m.cpu->rollback(sc, to);
    m.dev->rollback(sd, to);
    EXPECT_EQ(sd.n_past(), to);
    expect_bitwise_equal(sd.logits(), sc.logits(), "logits after rollback to " + std::to_string(to));
    expect_bitwise_equal(sd.hidden(), sc.hidden(), "hidden after rollback to " + std::to_string(to));
    expect_same_bytes(m.dev->snapshot(sd), m.cpu->snapshot(sc), "state after rollback to " + std::to_string(to));
  }
  EXPECT_THROW(m.dev->rollback(sd, 16), Error);  // outside the checkpointed call

  // Decoding on from the rolled-back state; and equal (to rounding) to never having gone past 17.
  const auto next = std::span(fx->tokens).subspan(17, 3);
  const auto lc = copy_of(m.cpu->evaluate(sc, next, 17, LogitsFor::EveryToken));
  const auto ld = copy_of(m.dev->evaluate(sd, next, 17, LogitsFor::EveryToken));
  expect_bitwise_equal(ld, lc, "evaluate after rollback");
  Sequence plain = m.dev->new_sequence();
  m.dev->evaluate(plain, std::span(fx->tokens).first(17), 0, LogitsFor::LastToken);
  const auto lp = copy_of(m.dev->evaluate(plain, next, 17, LogitsFor::EveryToken));
  // README: single-token steps vs one batch differ by up to 3e-5 in llama.cpp itself.
  EXPECT_LE(max_abs(ld, lp), 1e-4) << "rolled-back sequence vs plain decoding of the same tokens";
}

TEST_P(DeviceDiscipline, SnapshotRestoreRoundTripIsExact) {
  TwinModels m(*fx);
  const auto first = std::span(fx->tokens).first(40);
  const auto rest = std::span(fx->tokens).subspan(40);
  const int64_t n = m.cpu->config().n_embd;
  Sequence sc = m.cpu->new_sequence(), sd = m.dev->new_sequence();
  m.cpu->evaluate(sc, first, 0, LogitsFor::LastToken);
  m.dev->evaluate(sd, first, 0, LogitsFor::LastToken);
  const auto h_in = shifted_rows(sc.hidden(), 1, n);  // one MTP row so its cache is in the snapshot
  m.cpu->evaluate_mtp(sc, first.first(1), h_in, 0, LogitsFor::LastToken);
  m.dev->evaluate_mtp(sd, first.first(1), h_in, 0, LogitsFor::LastToken);

  const auto snap_c = m.cpu->snapshot(sc);
  const auto snap_d = m.dev->snapshot(sd);
  expect_same_bytes(snap_d, snap_c, "snapshot bytes");
  std::vector<uint8_t> reused;
  m.dev->snapshot(sd, reused);
  expect_same_bytes(reused, snap_c, "snapshot into a reused buffer");

  // Restored on the device from its own and from the CPU's snapshot, and on the CPU from the
  // device's: each continues exactly as the original.
  Sequence from_own = m.dev->new_sequence(), from_cpu = m.dev->new_sequence(), on_cpu = m.cpu->new_sequence();
  m.dev->restore(from_own, snap_d);
  m.dev->restore(from_cpu, snap_c);
  m.cpu->restore(on_cpu, snap_d);
  EXPECT_EQ(from_own.n_past(), 40);
  EXPECT_EQ(from_own.mtp_n_past(), 1);
  expect_bitwise_equal(from_own.logits(), sc.logits(), "restored last-token logits");
  expect_bitwise_equal(from_own.hidden(), sc.hidden().last(n), "restored last-token hidden");
  expect_same_bytes(m.dev->snapshot(from_own), snap_c, "snapshot of the restored sequence");

  const auto expected = copy_of(m.cpu->evaluate(sc, rest, 40, LogitsFor::EveryToken));
  expect_bitwise_equal(m.dev->evaluate(sd, rest, 40, LogitsFor::EveryToken), expected, "original continued");
  expect_bitwise_equal(m.dev->evaluate(from_own, rest, 40, LogitsFor::EveryToken), expected,
                       "restored from own snapshot");
  expect_bitwise_equal(m.dev->evaluate(from_cpu, rest, 40, LogitsFor::EveryToken), expected,
                       "restored from the CPU's snapshot");
  expect_bitwise_equal(m.cpu->evaluate(on_cpu, rest, 40, LogitsFor::EveryToken), expected,
                       "CPU restored from the device's");

  // A refused restore leaves the sequence untouched.
  std::vector<uint8_t> corrupt = snap_d;
  corrupt[corrupt.size() / 2] ^= 0x5a;
  const auto before = m.dev->snapshot(from_own);
  EXPECT_THROW(m.dev->restore(from_own, corrupt), SnapshotError);
  expect_same_bytes(m.dev->snapshot(from_own), before, "state after a refused restore");
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DeviceDiscipline, ::testing::ValuesIn(kAllFixtures));

// Every fixture with an F16 and a Q8_0 KV cache (F32 is what the tests above use).
class DeviceDisciplineKv : public ::testing::TestWithParam<std::tuple<std::string, TensorType>> {};

TEST_P(DeviceDisciplineKv, KvCacheTypesAreBitIdentical) {
  const auto& [name, kv_type] = GetParam();
  TinyFixture fx(name);
  ModelOptions o = fixture_options();
  o.kv_type = kv_type;
  TwinModels m(fx, o);
  Sequence sc = m.cpu->new_sequence(), sd = m.dev->new_sequence();
  EXPECT_EQ(sd.kv_type(), kv_type);
  EXPECT_EQ(sd.memory().kv_bytes, sc.memory().kv_bytes);
  const auto batch = std::span(fx.tokens).first(48);
  const auto lc = copy_of(m.cpu->evaluate(sc, batch, 0, LogitsFor::EveryToken));
  expect_bitwise_equal(m.dev->evaluate(sd, batch, 0, LogitsFor::EveryToken), lc, "48-token batch");
  const auto ref = fx.ref("logits");
  EXPECT_LE(max_abs(lc, std::span(ref).first(lc.size())), 5e-2);  // README: Q8_0 within 3.2e-2 of F32
  for (size_t t = 48; t < 56; ++t) {
    const auto one = std::span(fx.tokens).subspan(t, 1);
    const auto l1 = copy_of(m.cpu->evaluate(sc, one, sc.n_past(), LogitsFor::LastToken));
    expect_bitwise_equal(m.dev->evaluate(sd, one, sd.n_past(), LogitsFor::LastToken), l1, "step " + std::to_string(t));
  }
  const int64_t n = m.cpu->config().n_embd;
  const auto h_in = shifted_rows(sc.hidden(), 1, n);
  const auto mc = copy_of(m.cpu->evaluate_mtp(sc, std::span(fx.tokens).first(1), h_in, 0, LogitsFor::LastToken));
  expect_bitwise_equal(m.dev->evaluate_mtp(sd, std::span(fx.tokens).first(1), h_in, 0, LogitsFor::LastToken), mc,
                       "MTP step");
  expect_same_bytes(m.dev->snapshot(sd), m.cpu->snapshot(sc), "snapshot");
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DeviceDisciplineKv,
                         ::testing::Combine(::testing::ValuesIn(kAllFixtures),
                                            ::testing::Values(TensorType::F16, TensorType::Q8_0)),
                         [](const auto& info) {
                           std::string s = std::get<0>(info.param) +
                                           (std::get<1>(info.param) == TensorType::F16 ? "_F16" : "_Q8_0");
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

// The named tensors an observer sees on the device (layer inputs, MoE routing and FFN rows) equal
// the CPU's, trunk and MTP block.
TEST(DeviceDisciplineDiagnostics, ObservedTensorsAreBitIdentical) {
  TinyFixture fx("tiny-moe-f32");
  TwinModels m(fx);
  const int64_t n = m.cpu->config().n_embd, N = static_cast<int64_t>(fx.tokens.size());
  const int64_t n_layer = m.cpu->config().n_layer;
  Sequence sc = m.cpu->new_sequence(), sd = m.dev->new_sequence();
  TensorRecorder on_cpu(sc), on_dev(sd);
  m.cpu->evaluate(sc, fx.tokens, 0, LogitsFor::LastToken);
  m.dev->evaluate(sd, fx.tokens, 0, LogitsFor::LastToken);
  const auto h_in = shifted_rows(sc.hidden(), N, n);
  m.cpu->evaluate_mtp(sc, fx.tokens, h_in, 0, LogitsFor::LastToken);
  m.dev->evaluate_mtp(sd, fx.tokens, h_in, 0, LogitsFor::LastToken);

  EXPECT_EQ(on_dev.shown(), on_cpu.shown());
  const auto inputs = on_dev.floats_of_layers(tensor_name::kLayerInput, n_layer);
  ASSERT_EQ(inputs.size(), static_cast<size_t>(n_layer * N * n));
  expect_bitwise_equal(inputs, on_cpu.floats_of_layers(tensor_name::kLayerInput, n_layer), "layer inputs");
  EXPECT_LE(max_abs(inputs, read_floats(kTinyDir / "tiny-moe-f32.layer_inputs.f32")), kHiddenTol);
  for (int64_t il = 0; il <= n_layer; ++il) {  // il == n_layer: the MTP block
    const std::string where = "layer " + std::to_string(il);
    ASSERT_FALSE(on_cpu.ids(tensor_name::kMoeExperts, il).empty()) << where;
    expect_same_values(on_dev.ids(tensor_name::kMoeExperts, il), on_cpu.ids(tensor_name::kMoeExperts, il),
                       "experts, " + where);
    for (const std::string_view name : {tensor_name::kMoeWeights, tensor_name::kSharedExpertGate,
                                        tensor_name::kMoeInput, tensor_name::kMoeOutput})
      expect_bitwise_equal(on_dev.floats(name, il), on_cpu.floats(name, il), std::string(name) + ", " + where);
  }
  // README "moe_routing.layer0_first8": position 0 of blk.0 picks experts [3, 1].
  EXPECT_EQ(on_dev.ids(tensor_name::kMoeExperts, 0)[0], 3);
  EXPECT_EQ(on_dev.ids(tensor_name::kMoeExperts, 0)[1], 1);
}

}  // namespace
}  // namespace peregrine
