// The trunk forward pass against llama.cpp's reference outputs (tests/data/qwen35-tiny): one
// 64-token batch, chunked prefill, single-token steps, greedy decoding, delta-rule forms.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "model/qwen35_state.h"
#include "peregrine/error.h"
#include "test_forward_util.h"
#include "test_tensor_recorder.h"

namespace peregrine {
namespace {

using namespace test;

class Forward : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { fx = std::make_unique<TinyFixture>(GetParam()); }
  std::vector<float> logits_of(Model& model, Sequence& seq, std::span<const int32_t> toks) {
    auto l = model.evaluate(seq, toks, seq.n_past(), LogitsFor::EveryToken);
    return {l.begin(), l.end()};
  }
  int64_t vocab() const { return 512; }
  std::unique_ptr<TinyFixture> fx;
};

TEST_P(Forward, OneBatchMatchesLlamaCpp) {
  auto model = fx->load();
  Sequence seq = model->new_sequence();
  TensorRecorder recorder(seq);
  const auto logits = model->evaluate(seq, fx->tokens, 0, LogitsFor::EveryToken);
  const auto ref = fx->ref("logits");
  EXPECT_LE(max_abs(logits, ref), kLogitTol);
  EXPECT_EQ(count_argmax_mismatches(logits, ref, vocab()), 0);
  EXPECT_EQ(seq.n_past(), 64);
  if (fx->quantized()) return;  // hidden / layer inputs exist only with llama.cpp's activation rounding

  // Layer by layer first, so a failure names the first layer that went wrong.
  const auto layer_ref = read_floats(kTinyDir / (fx->name + ".layer_inputs.f32"));
  const auto layer_inputs = recorder.floats_of_layers(tensor_name::kLayerInput, model->config().n_layer);
  ASSERT_EQ(layer_inputs.size(), layer_ref.size());
  const size_t per_layer = layer_ref.size() / model->config().n_layer;
  for (int64_t il = 0; il < model->config().n_layer; ++il)
    EXPECT_LE(max_abs(std::span(layer_inputs).subspan(il * per_layer, per_layer),
                      std::span(layer_ref).subspan(il * per_layer, per_layer)),
              kHiddenTol)
        << "residual stream entering layer " << il;
  EXPECT_LE(max_abs(seq.hidden(), fx->ref("hidden")), kHiddenTol);
}

TEST_P(Forward, ChunkedPrefillAndSingleStepsMatchOneBatch) {
  auto model = fx->load();
  const auto ref = fx->ref("logits");
  // Chunks 10 + 1 + 1 + 52, as llama.cpp's consistency run.
  Sequence seq = model->new_sequence();
  std::vector<float> chunked;
  size_t at = 0;
  for (size_t len : {10, 1, 1, 52}) {
    auto l = logits_of(*model, seq, std::span(fx->tokens).subspan(at, len));
    chunked.insert(chunked.end(), l.begin(), l.end());
    at += len;
  }
  EXPECT_LE(max_abs(chunked, ref), kLogitTol);
  EXPECT_EQ(count_argmax_mismatches(chunked, ref, vocab()), 0);

  // 64 single-token steps (recurrent delta rule).
  seq.reset();
  std::vector<float> steps;
  for (size_t t = 0; t < fx->tokens.size(); ++t) {
    auto l = logits_of(*model, seq, std::span(fx->tokens).subspan(t, 1));
    steps.insert(steps.end(), l.begin(), l.end());
  }
  EXPECT_LE(max_abs(steps, ref), kLogitTol);
  EXPECT_EQ(count_argmax_mismatches(steps, ref, vocab()), 0);
}

TEST_P(Forward, GreedyDecodingMatches) {
  auto model = fx->load();
  Sequence seq = model->new_sequence();
  const auto& g = fx->meta["greedy"];
  const auto prompt = g["prompt"].get<std::vector<int32_t>>();
  const auto expected = fx->quantized()
                            ? fx->meta["independent_numpy_crosscheck"]["float_activations"]["greedy"]["generated"]
                                  .get<std::vector<int32_t>>()
                            : g["generated"].get<std::vector<int32_t>>();
  const auto ref = fx->ref("greedy_logits");
  std::vector<int32_t> generated;
  std::vector<float> all;
  auto logits = model->evaluate(seq, prompt, 0, LogitsFor::LastToken);
  for (size_t i = 0; i < expected.size(); ++i) {
    all.insert(all.end(), logits.begin(), logits.end());
    generated.push_back(argmax(logits));
    if (i + 1 < expected.size()) {
      const int32_t next = generated.back();
      logits = model->evaluate(seq, std::span(&next, 1), seq.n_past(), LogitsFor::LastToken);
    }
  }
  EXPECT_EQ(generated, expected);
  EXPECT_LE(max_abs(all, ref), kLogitTol);
}

TEST_P(Forward, RecurrentAndChunkedDeltaRuleAgree) {
  ModelOptions rec, chk;
  rec.delta_rule = DeltaRuleMode::Recurrent;
  chk.delta_rule = DeltaRuleMode::Chunked;
  chk.delta_chunk = 16;  // several chunks in the 64-token batch
  auto m_rec = fx->load(rec);
  auto m_chk = fx->load(chk);
  Sequence s_rec = m_rec->new_sequence(), s_chk = m_chk->new_sequence();
  const auto l_rec = logits_of(*m_rec, s_rec, fx->tokens);
  const auto l_chk = logits_of(*m_chk, s_chk, fx->tokens);
  EXPECT_LE(max_abs(l_rec, l_chk), 1e-4);
  // The carried states agree too: layer 0's conv state exactly (same inputs), the rest to rounding.
  // (The CPU backend's memory is host memory, so the states can be read in place.)
  auto values = [](const BackendArray<float>& a) { return std::vector<float>(a.data(), a.data() + a.size()); };
  EXPECT_EQ(values(sequence_state(s_rec).delta[0].conv), values(sequence_state(s_chk).delta[0].conv));
  int checked = 0;
  for (int64_t il = 0; il < m_rec->config().n_layer; ++il) {
    const auto& a = sequence_state(s_rec).delta[il];
    const auto& b = sequence_state(s_chk).delta[il];
    if (a.recurrent.empty()) continue;
    ++checked;
    EXPECT_LE(max_abs(values(a.conv), values(b.conv)), 1e-5) << "layer " << il;
    EXPECT_LE(max_abs(values(a.recurrent), values(b.recurrent)), 1e-5) << "layer " << il;
  }
  EXPECT_EQ(checked, 3);
}

TEST_P(Forward, SmallBatchesAndThreadsGiveTheSameLogits) {
  ModelOptions small;
  small.max_batch = 7;  // 64 tokens in 10 steps, chunks split across steps
  small.n_threads = 2;
  auto model = fx->load(small);
  Sequence seq = model->new_sequence();
  const auto l = logits_of(*model, seq, fx->tokens);
  EXPECT_LE(max_abs(l, fx->ref("logits")), kLogitTol);
  // Threads split rows and heads but never a sum: bit-identical to one thread.
  small.n_threads = 1;
  auto single = fx->load(small);
  Sequence s0 = single->new_sequence();
  EXPECT_EQ(logits_of(*single, s0, fx->tokens), l);
  // Last-row-only logits equal the last row of the full logits.
  auto one = fx->load();
  Sequence s1 = one->new_sequence();
  const auto all = logits_of(*one, s1, fx->tokens);
  Sequence s2 = one->new_sequence();
  const auto last = one->evaluate(s2, fx->tokens, 0, LogitsFor::LastToken);
  ASSERT_EQ(last.size(), size_t(vocab()));
  EXPECT_EQ(max_abs(last, std::span(all).subspan(63 * vocab(), vocab())), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Tiny, Forward,
                         ::testing::Values("tiny-f32", "tiny-mtp-f32", "tiny256-f32", "tiny-moe-f32", "tiny-quant"),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

TEST(ForwardErrors, BadCallsThrowWithoutChangingState) {
  TinyFixture fx("tiny-f32");
  auto model = fx.load();
  Sequence seq = model->new_sequence();
  const std::vector<int32_t> toks = {1, 2, 3};
  EXPECT_THROW(model->evaluate(seq, toks, 5, LogitsFor::EveryToken), Error);  // not at the sequence's position
  EXPECT_THROW(model->evaluate(seq, {}, 0, LogitsFor::EveryToken), Error);
  const std::vector<int32_t> bad = {512};
  EXPECT_THROW(model->evaluate(seq, bad, 0, LogitsFor::EveryToken), Error);
  std::vector<int32_t> too_long(257, 1);
  EXPECT_THROW(model->evaluate(seq, too_long, 0, LogitsFor::EveryToken), Error);
  EXPECT_EQ(seq.n_past(), 0);
  ModelOptions o;
  o.max_batch = 0;
  EXPECT_THROW(Model::load(fx.file, o), Error);
}

}  // namespace
}  // namespace peregrine
