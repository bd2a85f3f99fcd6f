// MTP speculative decoding, greedy: identical output to plain greedy decoding on every fixture
// and on a synthetic model, acceptance counts against llama.cpp, models without an MTP block,
// cancellation.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "peregrine/gguf.h"
#include "peregrine/synthetic.h"
#include "test_forward_util.h"
#include "test_model_util.h"
#include "test_mtp_util.h"
#include "decode/speculative_policy.h"

namespace peregrine {
namespace {

using namespace test;

constexpr int64_t kTokens = 220;  // ≥ 200 generated ids

ModelOptions long_context() {
  ModelOptions o;
  o.context_length = 320;  // prompt 16 + 220 ids + drafts
  return o;
}

class MtpGreedy : public ::testing::TestWithParam<std::string> {};

TEST_P(MtpGreedy, IdenticalToPlainGreedyForEveryDraftLength) {
  TinyFixture fx(GetParam());
  auto model = Model::load(fx.file, long_context());
  const auto prompt = fx.meta["greedy"]["prompt"].get<std::vector<int32_t>>();
  const auto plain = plain_greedy(*model, prompt, kTokens);
  // The fixture's own 32 greedy ids (float models; the quantized one rounds activations in llama.cpp).
  if (!fx.quantized()) {
    const auto ref = fx.meta["greedy"]["generated"].get<std::vector<int32_t>>();
    EXPECT_TRUE(std::equal(ref.begin(), ref.end(), plain.begin()));
  }

  for (int k : {1, 2, 3, 0}) {
    SpeculativeStats stats;
    bool active = false;
    const auto spec = speculative_greedy(*model, prompt, kTokens, k, &stats, &active);
    EXPECT_TRUE(active);
    ASSERT_EQ(spec, plain) << GetParam() << " k=" << k;
    if (k > 0) {
      EXPECT_EQ(stats.drafted, stats.steps * k) << "k=" << k;
    }
    std::cout << GetParam() << " k=" << (k ? std::to_string(k) : std::string("auto")) << ": accepted "
              << stats.accepted << "/" << stats.drafted << " drafts in " << stats.steps << " steps; ms per step: draft "
              << stats.draft_ms / stats.steps << ", verify " << stats.verify_ms / stats.steps << ", sampling "
              << stats.sample_ms / stats.steps << "\n";
    RecordProperty("k" + std::to_string(k) + "_accepted",
                   std::to_string(stats.accepted) + "/" + std::to_string(stats.drafted));
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, MtpGreedy,
                         ::testing::Values("tiny-f32", "tiny-mtp-f32", "tiny256-f32", "tiny-moe-f32", "tiny-quant"));

// llama.cpp's speculative example (JSON speculative_simple_mtp): the trunk evaluates prompt[0..14],
// the loop drafts from the last prompt token, and stops once more than 32 ids were produced.
struct LlamaStyleRun {
  int64_t steps = 0, drafted = 0, accepted = 0;
  std::vector<int32_t> ids;
};

LlamaStyleRun llama_style(Model& model, const std::vector<int32_t>& prompt, int k) {
  Sequence seq = model.new_sequence();
  SpeculativeOptions o;
  o.draft_length = k;
  SpeculativeDecoder decoder(model, seq, o);
  const std::span<const int32_t> head(prompt.data(), prompt.size() - 1);
  model.evaluate(seq, head, 0, LogitsFor::LastToken);
  decoder.observe(head);
  const int32_t V = static_cast<int32_t>(model.config().n_vocab);
  Sampler sampler(SamplingParams::greedy(), V, V);
  SamplerTarget target(sampler);
  LlamaStyleRun run;
  int32_t last = prompt.back();
  while (static_cast<int64_t>(run.ids.size()) <= 32) {
    const SpeculativeStep s = decoder.step(last, target);
    run.ids.insert(run.ids.end(), s.tokens.begin(), s.tokens.end());
    last = s.tokens.back();
  }
  run.steps = decoder.stats().steps;
  run.drafted = decoder.stats().drafted;
  run.accepted = decoder.stats().accepted;
  return run;
}

TEST(MtpAcceptance, TinyMtpAcceptsDraftsLikeLlamaCpp) {
  TinyFixture fx("tiny-mtp-f32");
  auto model = fx.load();
  const auto prompt = fx.meta["greedy"]["prompt"].get<std::vector<int32_t>>();
  const auto generated = fx.meta["greedy"]["generated"].get<std::vector<int32_t>>();
  const auto& runs = fx.meta["speculative_simple_mtp"]["runs"];

  // Draft length 1: the same semantics as llama.cpp (one draft per step, always made).
  const LlamaStyleRun one = llama_style(*model, prompt, 1);
  EXPECT_EQ(one.drafted, runs[0]["n_drafted"].get<int64_t>());  // 27
  EXPECT_EQ(one.accepted, runs[0]["n_accept"].get<int64_t>());  // 6
  EXPECT_EQ(static_cast<int64_t>(one.ids.size()), runs[0]["n_predict"].get<int64_t>());
  EXPECT_TRUE(std::equal(generated.begin(), generated.end(), one.ids.begin()));

  // Draft length 3: llama.cpp ends a chain early when the draft's top probability is below its
  // p_min, so it drafted 72 in its 25 steps where we draft 3 × 25 = 75; the drafts it skipped
  // were not accepted by us either, so the accepted count (8) and the steps agree.
  const LlamaStyleRun three = llama_style(*model, prompt, 3);
  EXPECT_EQ(three.drafted, 3 * three.steps);
  EXPECT_EQ(three.accepted, runs[1]["n_accept"].get<int64_t>());  // 8
  EXPECT_EQ(three.steps, runs[1]["n_predict"].get<int64_t>() - runs[1]["n_accept"].get<int64_t>());  // 25
  EXPECT_TRUE(std::equal(generated.begin(), generated.end(), three.ids.begin()));
  RecordProperty("k1", std::to_string(one.accepted) + "/" + std::to_string(one.drafted));
  RecordProperty("k3", std::to_string(three.accepted) + "/" + std::to_string(three.drafted));
  std::cout << "tiny-mtp-f32 llama.cpp-style run: k=1 accepted " << one.accepted << "/" << one.drafted
            << " in " << one.steps << " steps; k=3 accepted " << three.accepted << "/" << three.drafted << " in "
            << three.steps << " steps\n";
}

TEST(MtpPolicy, AdaptiveDraftLengthMaximisesTokensPerTime) {
  std::array<double, kMaxVerifyTokens> verify{};
  for (int k = 0; k <= kMaxMtpDraftLength; ++k) verify[k] = 1.0 + 0.05 * k;  // verify nearly flat in k
  std::array<double, kMaxMtpDraftLength> rates{};
  // Nothing accepted: plain steps.
  EXPECT_EQ(best_draft_length(rates, 0.1, verify), 0);
  // Everything accepted and drafts cheap: the longest chain.
  rates.fill(1.0);
  EXPECT_EQ(best_draft_length(rates, 0.05, verify), kMaxMtpDraftLength);
  // Acceptance 0.8, 0.6, 0.45, then nothing: at most three drafts are worth making, and with
  // drafts as expensive as a verify none is.
  rates = {0.8, 0.6, 0.45, 0, 0, 0, 0, 0};
  EXPECT_EQ(best_draft_length(rates, 0.05, verify), 3);
  EXPECT_EQ(best_draft_length(rates, 1.0, verify), 0);
  // Hand-checked middle case: E(1) = 1.8 over 1.25, E(2) = 2.28 over 1.5 → 1.44 vs 1.52 → k = 2;
  // E(3) = 2.496 over 1.75 = 1.426.
  EXPECT_EQ(best_draft_length(rates, 0.2, verify), 2);
}

// A synthetic model made in the test, with and without an MTP block.
class MtpSynthetic : public ::testing::Test {
 protected:
  std::filesystem::path make(bool mtp) {
    synthetic::Options o;
    o.shape = *synthetic::builtin_shape("tiny");
    o.type = synthetic::FileType::Q8_0;
    o.seed = 5;
    o.mtp = mtp;
    o.threads = 1;
    o.out = dir / (mtp ? "with-mtp.gguf" : "no-mtp.gguf");
    synthetic::write_model(o);
    return o.out;
  }
  ModelScratch dir{"mtp"};
  const std::vector<int32_t> prompt{1, 2, 3, 100, 200, 42, 7, 300, 11};
};

TEST_F(MtpSynthetic, GreedyIdenticalToPlain) {
  const GgufFile file = GgufFile::open(make(true));
  auto model = Model::load(file, long_context());
  const auto plain = plain_greedy(*model, prompt, kTokens);
  for (int k : {1, 2, 3, 0}) {
    bool active = false;
    EXPECT_EQ(speculative_greedy(*model, prompt, kTokens, k, nullptr, &active), plain) << "k=" << k;
    EXPECT_TRUE(active);
  }
}

TEST_F(MtpSynthetic, ModelWithoutMtpDecodesNormally) {
  const GgufFile file = GgufFile::open(make(false));
  auto model = Model::load(file, long_context());
  ASSERT_FALSE(model->config().has_mtp());
  const auto plain = plain_greedy(*model, prompt, kTokens);
  SpeculativeStats stats;
  bool active = true;
  EXPECT_EQ(speculative_greedy(*model, prompt, kTokens, 3, &stats, &active), plain);
  EXPECT_FALSE(active);
  EXPECT_EQ(stats.drafted, 0);
  EXPECT_EQ(stats.steps, kTokens - 1);
}

TEST(MtpDecoder, CancelMidDraftLeavesTheTrunkUntouched) {
  TinyFixture fx("tiny-mtp-f32");
  auto model = fx.load();
  const auto prompt = fx.meta["greedy"]["prompt"].get<std::vector<int32_t>>();
  const auto plain = plain_greedy(*model, prompt, 40);
  Sequence seq = model->new_sequence();
  SpeculativeOptions o;
  o.draft_length = 3;
  SpeculativeDecoder decoder(*model, seq, o);
  auto logits = model->evaluate(seq, prompt, 0, LogitsFor::LastToken);
  decoder.observe(prompt);
  Sampler sampler(SamplingParams::greedy(), 512, 512);
  SamplerTarget target(sampler);
  int32_t last = argmax_row(logits, 512);
  std::vector<int32_t> out{last};
  int polls = 0;
  const auto cancel_on_second_poll = [&] { return ++polls == 2; };  // after the first draft
  const int64_t before = seq.n_past();
  const SpeculativeStep cancelled = decoder.step(last, target, cancel_on_second_poll);
  EXPECT_TRUE(cancelled.cancelled);
  EXPECT_TRUE(cancelled.tokens.empty());
  EXPECT_EQ(seq.n_past(), before);
  // Resuming continues exactly like plain decoding.
  while (out.size() < 40) {
    const SpeculativeStep s = decoder.step(last, target);
    out.insert(out.end(), s.tokens.begin(), s.tokens.end());
    last = s.tokens.back();
  }
  out.resize(40);
  EXPECT_EQ(out, plain);
}

TEST(MtpDecoder, ALaterDecoderContinuesTheSequenceAfterSync) {
  TinyFixture fx("tiny-mtp-f32");
  auto model = fx.load();
  const auto prompt = fx.meta["greedy"]["prompt"].get<std::vector<int32_t>>();
  const auto plain = plain_greedy(*model, prompt, 120);
  Sequence seq = model->new_sequence();
  Sampler sampler(SamplingParams::greedy(), 512, 512);
  SamplerTarget target(sampler);
  SpeculativeOptions o;
  o.draft_length = 2;
  std::vector<int32_t> out;
  int32_t last = -1;
  {
    SpeculativeDecoder first(*model, seq, o);  // made before the prompt: it sees every position
    auto logits = model->evaluate(seq, prompt, 0, LogitsFor::LastToken);
    first.observe(prompt);
    last = argmax_row(logits, 512);
    out.push_back(last);
    while (out.size() < 60) {
      const SpeculativeStep s = first.step(last, target);
      out.insert(out.end(), s.tokens.begin(), s.tokens.end());
      last = s.tokens.back();
    }
    first.sync();
  }
  SpeculativeDecoder second(*model, seq, o);
  EXPECT_TRUE(second.mtp_active());
  while (out.size() < 120) {
    const SpeculativeStep s = second.step(last, target);
    out.insert(out.end(), s.tokens.begin(), s.tokens.end());
    last = s.tokens.back();
  }
  out.resize(120);
  EXPECT_EQ(out, plain);
  EXPECT_GT(second.stats().accepted, 0);
  // Without the head's rows (a sequence evaluated without any decoder) drafting stays off.
  Sequence bare = model->new_sequence();
  model->evaluate(bare, prompt, 0, LogitsFor::LastToken);
  EXPECT_FALSE(SpeculativeDecoder(*model, bare, o).mtp_active());
}

TEST(MtpDecoder, RejectsBadDraftLengthsAndRollbacks) {
  TinyFixture fx("tiny-f32");
  auto model = fx.load();
  Sequence seq = model->new_sequence();
  SpeculativeOptions o;
  o.draft_length = 9;
  EXPECT_THROW(SpeculativeDecoder(*model, seq, o), Error);
  seq.set_delta_checkpoints(4);
  model->evaluate(seq, std::vector<int32_t>{1, 2, 3, 4, 5, 6}, 0, LogitsFor::LastToken);  // longer than the slots
  EXPECT_THROW(model->rollback(seq, 5), Error);
  model->evaluate(seq, std::vector<int32_t>{7, 8, 9}, 6, LogitsFor::EveryToken);
  EXPECT_THROW(model->rollback(seq, 6), Error);  // before the call's first token
  EXPECT_THROW(model->rollback(seq, 10), Error);
  model->rollback(seq, 7);
  EXPECT_EQ(seq.n_past(), 7);
  EXPECT_EQ(seq.logits().size(), 512u);
}

}  // namespace
}  // namespace peregrine
