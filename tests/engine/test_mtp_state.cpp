// After any mix of accepted and rejected drafts (and after keep()), the trunk state — KV rows,
// conv and recurrent states, the last token's outputs — equals that of plain decoding of the
// same tokens. The verify pass runs the same per-token kernels as single-token decoding, so the
// states are expected bit for bit; the assertion allows 1e-5 (the bound) and the test
// reports whether they were bitwise.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "model/qwen35_state.h"
#include "test_forward_util.h"
#include "test_mtp_util.h"

namespace peregrine {
namespace {

using namespace test;

struct StateDiff {
  double max_abs = 0;
  bool bitwise = true;
};

void compare_floats(const float* a, const float* b, size_t n, StateDiff& d) {
  if (std::memcmp(a, b, n * sizeof(float)) != 0) d.bitwise = false;
  for (size_t i = 0; i < n; ++i) d.max_abs = std::max(d.max_abs, std::abs(double(a[i]) - b[i]));
}

StateDiff compare_states(const Sequence& spec, const Sequence& plain) {
  const Sequence::Impl& a = sequence_state(spec);
  const Sequence::Impl& b = sequence_state(plain);
  EXPECT_EQ(a.n_past, b.n_past);
  StateDiff d;
  for (size_t il = 0; il < a.kv.size(); ++il) {
    const KvCache& x = a.kv[il];
    const KvCache& y = b.kv[il];
    const size_t bytes = static_cast<size_t>(a.n_past) * x.row_bytes;
    if (bytes == 0) continue;
    compare_floats(reinterpret_cast<const float*>(x.k.data()), reinterpret_cast<const float*>(y.k.data()),
                   bytes / sizeof(float), d);
    compare_floats(reinterpret_cast<const float*>(x.v.data()), reinterpret_cast<const float*>(y.v.data()),
                   bytes / sizeof(float), d);
  }
  for (size_t il = 0; il < a.delta.size(); ++il) {
    compare_floats(a.delta[il].conv.data(), b.delta[il].conv.data(), a.delta[il].conv.size(), d);
    compare_floats(a.delta[il].recurrent.data(), b.delta[il].recurrent.data(), a.delta[il].recurrent.size(), d);
  }
  // The last token's hidden row and logits: the last rows of the speculative sequence's outputs
  // (one row after a rollback, k + 1 rows when every draft was accepted).
  const auto ha = spec.hidden(), hb = plain.hidden();
  EXPECT_TRUE(ha.size() >= hb.size() && !hb.empty());
  if (ha.size() >= hb.size()) compare_floats(ha.data() + ha.size() - hb.size(), hb.data(), hb.size(), d);
  const auto la = spec.logits(), lb = plain.logits();
  EXPECT_TRUE(la.size() >= lb.size() && !lb.empty());
  if (la.size() >= lb.size()) compare_floats(la.data() + la.size() - lb.size(), lb.data(), lb.size(), d);
  return d;
}

TEST(MtpState, RollbackEqualsPlainDecodingOfTheSameTokens) {
  TinyFixture fx("tiny-mtp-f32");
  auto model = fx.load();
  const auto prompt = fx.meta["greedy"]["prompt"].get<std::vector<int32_t>>();
  Sequence spec = model->new_sequence();
  Sequence plain = model->new_sequence();
  SpeculativeOptions o;
  o.draft_length = 3;
  SpeculativeDecoder decoder(*model, spec, o);
  auto logits = model->evaluate(spec, prompt, 0, LogitsFor::LastToken);
  model->evaluate(plain, prompt, 0, LogitsFor::LastToken);
  decoder.observe(prompt);
  Sampler sampler(SamplingParams::greedy(), 512, 512);
  SamplerTarget target(sampler);
  int32_t last = argmax_row(logits, 512);
  // Every evaluated token and its trunk hidden row, for the head-cache reference.
  std::vector<int32_t> tokens(prompt);
  std::vector<float> hidden_rows(plain.hidden().begin(), plain.hidden().end());
  const auto plain_step = [&](int32_t id) {
    model->evaluate(plain, std::span<const int32_t>(&id, 1), plain.n_past(), LogitsFor::LastToken);
    tokens.push_back(id);
    hidden_rows.insert(hidden_rows.end(), plain.hidden().begin(), plain.hidden().end());
  };

  std::array<int, 4> by_accepted{};  // steps that accepted 0, 1, 2, 3 drafts
  StateDiff worst;
  int64_t steps = 0;
  while (spec.n_past() < 150) {
    const SpeculativeStep s = decoder.step(last, target);
    ++by_accepted[s.accepted];
    // Plain decoding evaluates the same tokens one at a time: last, then the accepted drafts.
    plain_step(last);
    for (int i = 0; i < s.accepted; ++i) plain_step(s.tokens[i]);
    const StateDiff d = compare_states(spec, plain);
    ASSERT_LE(d.max_abs, 1e-5) << "after step " << steps << " (accepted " << s.accepted << ")";
    worst.max_abs = std::max(worst.max_abs, d.max_abs);
    worst.bitwise = worst.bitwise && d.bitwise;
    last = s.tokens.back();
    ++steps;
  }
  // The mix really happened: full rejections and partial acceptances.
  EXPECT_GT(by_accepted[0], 0);
  EXPECT_GT(by_accepted[1] + by_accepted[2], 0);
  std::cout << "state vs plain decoding over " << steps << " steps (accepted 0/1/2/3: " << by_accepted[0] << "/"
            << by_accepted[1] << "/" << by_accepted[2] << "/" << by_accepted[3] << "): max |diff| " << worst.max_abs
            << (worst.bitwise ? " (bitwise identical)" : "") << "\n";
  RecordProperty("bitwise", worst.bitwise ? "yes" : "no");

  // The head's cache, once the pending rows are written, holds for every evaluated position p the
  // row of (token p, trunk hidden p − 1) — what one batched head pass over the sequence gives.
  decoder.sync();
  const int64_t n = model->config().n_embd, N = static_cast<int64_t>(tokens.size());
  ASSERT_EQ(N, spec.n_past());
  std::vector<float> shifted(N * n, 0.0f);
  std::copy(hidden_rows.begin(), hidden_rows.end() - n, shifted.begin() + n);
  Sequence reference = model->new_sequence();
  model->evaluate_mtp(reference, tokens, shifted, 0, LogitsFor::LastToken);
  const KvCache& got = sequence_state(spec).mtp_kv;
  const KvCache& want = sequence_state(reference).mtp_kv;
  StateDiff mtp;
  const size_t values = static_cast<size_t>(N) * got.row_bytes / sizeof(float);
  compare_floats(reinterpret_cast<const float*>(got.k.data()), reinterpret_cast<const float*>(want.k.data()), values,
                 mtp);
  compare_floats(reinterpret_cast<const float*>(got.v.data()), reinterpret_cast<const float*>(want.v.data()), values,
                 mtp);
  EXPECT_LE(mtp.max_abs, 1e-5);
  std::cout << "MTP cache vs one batched head pass over " << N << " positions: max |diff| " << mtp.max_abs
            << (mtp.bitwise ? " (bitwise identical)" : "") << "\n";

  // keep(1) after a step: the caller stopped at the step's first token (as on EOS).
  const SpeculativeStep s = decoder.step(last, target);
  decoder.keep(1);
  plain_step(last);
  EXPECT_LE(compare_states(spec, plain).max_abs, 1e-5);
  EXPECT_GE(s.tokens.size(), 1u);
}

TEST(MtpState, KeepAfterAcceptedDraftsMatchesPlain) {
  TinyFixture fx("tiny-mtp-f32");
  auto model = fx.load();
  const auto prompt = fx.meta["greedy"]["prompt"].get<std::vector<int32_t>>();
  // Run until a step accepts at least two drafts, then keep only 2 of its tokens.
  Sequence spec = model->new_sequence();
  SpeculativeOptions o;
  o.draft_length = 3;
  SpeculativeDecoder decoder(*model, spec, o);
  auto logits = model->evaluate(spec, prompt, 0, LogitsFor::LastToken);
  decoder.observe(prompt);
  Sampler sampler(SamplingParams::greedy(), 512, 512);
  SamplerTarget target(sampler);
  std::vector<int32_t> history(prompt);
  int32_t last = argmax_row(logits, 512);
  for (int guard = 0; guard < 200; ++guard) {
    const SpeculativeStep s = decoder.step(last, target);
    history.push_back(last);
    if (s.accepted >= 2) {
      decoder.keep(2);  // tokens d1, d2 used; d2 is not evaluated in plain decoding
      history.push_back(s.tokens[0]);
      Sequence plain = model->new_sequence();
      model->evaluate(plain, std::span<const int32_t>(history.data(), prompt.size()), 0, LogitsFor::LastToken);
      for (size_t i = prompt.size(); i < history.size(); ++i)
        model->evaluate(plain, std::span<const int32_t>(&history[i], 1), plain.n_past(), LogitsFor::LastToken);
      EXPECT_LE(compare_states(spec, plain).max_abs, 1e-5);
      // And decoding continues from there like plain decoding.
      const SpeculativeStep next = decoder.step(s.tokens[1], target);
      const auto l =
          model->evaluate(plain, std::span<const int32_t>(&s.tokens[1], 1), plain.n_past(), LogitsFor::LastToken);
      EXPECT_EQ(next.tokens.front(), argmax_row(l, 512));
      return;
    }
    for (int i = 0; i < s.accepted; ++i) history.push_back(s.tokens[i]);
    last = s.tokens.back();
  }
  FAIL() << "no step accepted two drafts";
}

}  // namespace
}  // namespace peregrine
