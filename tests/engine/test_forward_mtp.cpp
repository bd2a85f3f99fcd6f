// The MTP (NextN) head and the MoE routing against llama.cpp's reference outputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "test_forward_util.h"
#include "test_tensor_recorder.h"

namespace peregrine {
namespace {

using namespace test;

constexpr int64_t kVocab = 512;

// Row p of the head's input: trunk hidden row p − 1, zeros for p = 0.
std::vector<float> shifted_hidden(std::span<const float> hidden, int64_t n_tokens, int64_t n_embd) {
  std::vector<float> h(n_tokens * n_embd, 0.0f);
  std::copy(hidden.begin(), hidden.begin() + (n_tokens - 1) * n_embd, h.begin() + n_embd);
  return h;
}

class Mtp : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { fx = std::make_unique<TinyFixture>(GetParam()); }
  std::unique_ptr<TinyFixture> fx;
};

TEST_P(Mtp, AllPositionsInOneBatchMatchLlamaCpp) {
  auto model = fx->load();
  const int64_t n = model->config().n_embd, N = 64;
  Sequence seq = model->new_sequence();
  model->evaluate(seq, fx->tokens, 0, LogitsFor::LastToken);
  const auto h_in = shifted_hidden(seq.hidden(), N, n);
  const auto logits = model->evaluate_mtp(seq, fx->tokens, h_in, 0, LogitsFor::EveryToken);
  const auto ref = fx->ref("mtp_logits");
  EXPECT_LE(max_abs(logits, ref), kLogitTol);
  EXPECT_EQ(count_argmax_mismatches(logits, ref, kVocab), 0);
  if (!fx->quantized()) {
    EXPECT_LE(max_abs(seq.mtp_hidden(), fx->ref("mtp_hidden")), kHiddenTol);
  }

  // Chunked through the head's own KV cache: 10 + 1 + 53 rows.
  std::vector<float> chunked;
  int64_t at = 0;
  for (int64_t len : {10, 1, 53}) {
    auto l = model->evaluate_mtp(seq, std::span(fx->tokens).subspan(at, len),
                                 std::span(h_in).subspan(at * n, len * n), at, LogitsFor::EveryToken);
    chunked.insert(chunked.end(), l.begin(), l.end());
    at += len;
  }
  EXPECT_LE(max_abs(chunked, ref), kLogitTol);
  EXPECT_EQ(seq.mtp_n_past(), 64);
}

// JSON mtp.draft_after_prompt: the trunk runs prompt[0..14]; the head (its cache filled over
// those positions) gets (prompt[15], hidden[14]) at 15, then its own draft and its own
// shared_head_norm row at 16 and 17.
TEST_P(Mtp, ChainedDraftMatchesLlamaCpp) {
  if (fx->quantized()) GTEST_SKIP() << "draft reference only with llama.cpp's activation rounding";
  auto model = fx->load();
  const int64_t n = model->config().n_embd;
  const auto prompt = fx->meta["greedy"]["prompt"].get<std::vector<int32_t>>();
  const auto expected = fx->meta["mtp"]["draft_after_prompt"]["ids"].get<std::vector<int32_t>>();
  const auto ref = fx->ref("mtp_draft_logits");
  Sequence seq = model->new_sequence();
  const std::span<const int32_t> head(prompt.data(), 15);
  model->evaluate(seq, head, 0, LogitsFor::LastToken);
  const std::vector<float> hidden(seq.hidden().begin(), seq.hidden().end());
  model->evaluate_mtp(seq, head, shifted_hidden(hidden, 15, n), 0, LogitsFor::LastToken);

  int32_t token = prompt[15];
  const std::vector<float> h_prompt(hidden.end() - n, hidden.end());
  std::vector<int32_t> drafts;
  std::vector<float> logits_all;
  for (int64_t step = 0; step < 3; ++step) {
    // Chained steps feed the head's own previous row straight from the sequence (aliasing allowed).
    const std::span<const float> h_in = step == 0 ? std::span<const float>(h_prompt) : seq.mtp_hidden();
    auto l = model->evaluate_mtp(seq, std::span(&token, 1), h_in, 15 + step, LogitsFor::LastToken);
    logits_all.insert(logits_all.end(), l.begin(), l.end());
    token = argmax(l);
    drafts.push_back(token);
  }
  EXPECT_EQ(drafts, expected);
  EXPECT_LE(max_abs(logits_all, ref), kLogitTol);
}

INSTANTIATE_TEST_SUITE_P(Tiny, Mtp,
                         ::testing::Values("tiny-f32", "tiny-mtp-f32", "tiny256-f32", "tiny-moe-f32", "tiny-quant"),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

TEST(MoeRouting, Layer0FirstEightPositionsMatchTheCrossCheck) {
  TinyFixture fx("tiny-moe-f32");
  auto model = fx.load();
  Sequence seq = model->new_sequence();
  TensorRecorder seen(seq);
  model->evaluate(seq, fx.tokens, 0, LogitsFor::LastToken);
  const auto& r = fx.meta["moe_routing"]["layer0_first8"];
  const auto ids = r["expert_ids"].get<std::vector<std::vector<int32_t>>>();
  const auto wts = r["weights"].get<std::vector<std::vector<float>>>();
  const auto gates = r["shexp_gate_sigmoid"].get<std::vector<float>>();
  const auto experts = seen.ids(tensor_name::kMoeExperts, 0);
  const auto weights = seen.floats(tensor_name::kMoeWeights, 0);
  const auto shared_scales = seen.shared_expert_scales(0);
  ASSERT_EQ(experts.size(), size_t(64 * 2));
  for (size_t p = 0; p < ids.size(); ++p) {
    for (size_t j = 0; j < 2; ++j) {
      EXPECT_EQ(experts[p * 2 + j], ids[p][j]) << "position " << p;
      EXPECT_NEAR(weights[p * 2 + j], wts[p][j], 1e-5) << "position " << p;
    }
    EXPECT_NEAR(shared_scales[p], gates[p], 1e-5) << "position " << p;
  }
  // Every expert is used in every block over the 64 positions, as in the reference counts.
  for (int64_t il = 0; il < 4; ++il) {
    std::vector<int> counts(8, 0);
    for (int32_t e : seen.ids(tensor_name::kMoeExperts, il)) counts[e]++;
    EXPECT_EQ(counts, fx.meta["moe_routing"]["expert_use_counts"]["blk." + std::to_string(il)].get<std::vector<int>>())
        << "block " << il;
  }
}

}  // namespace
}  // namespace peregrine
