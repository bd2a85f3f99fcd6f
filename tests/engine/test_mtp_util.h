// Shared helpers of the MTP speculative-decoding tests: plain and speculative greedy runs.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <span>
#include <vector>

#include "peregrine/model.h"
#include "peregrine/sampler.h"
#include "peregrine/speculative.h"

namespace peregrine::test {

inline int32_t argmax_row(std::span<const float> logits, int64_t n_vocab) {
  const auto row = logits.last(static_cast<size_t>(n_vocab));
  return static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
}

// Plain greedy decoding: the prompt in one batch, then one token per step; n generated ids.
inline std::vector<int32_t> plain_greedy(Model& model, std::span<const int32_t> prompt, int64_t n) {
  Sequence seq = model.new_sequence();
  const int64_t V = model.config().n_vocab;
  auto logits = model.evaluate(seq, prompt, 0, LogitsFor::LastToken);
  std::vector<int32_t> out;
  while (static_cast<int64_t>(out.size()) < n) {
    const int32_t id = argmax_row(logits, V);
    out.push_back(id);
    if (static_cast<int64_t>(out.size()) == n) break;
    logits = model.evaluate(seq, std::span<const int32_t>(&id, 1), seq.n_past(), LogitsFor::LastToken);
  }
  return out;
}

// The same through the SpeculativeDecoder (draft_length 0 = adaptive): the prompt is evaluated
// and observed, the first id is sampled from its logits, then steps until n ids.
inline std::vector<int32_t> speculative_greedy(Model& model, std::span<const int32_t> prompt, int64_t n,
                                               int draft_length, SpeculativeStats* stats = nullptr,
                                               bool* active = nullptr) {
  Sequence seq = model.new_sequence();
  const int32_t V = static_cast<int32_t>(model.config().n_vocab);
  SpeculativeOptions o;
  o.draft_length = draft_length;
  SpeculativeDecoder decoder(model, seq, o);
  auto logits = model.evaluate(seq, prompt, 0, LogitsFor::LastToken);
  decoder.observe(prompt);
  Sampler sampler(SamplingParams::greedy(), V, V);
  sampler.reset(prompt);
  SamplerTarget target(sampler);
  int32_t last = sampler.sample(logits.last(V));
  sampler.accept(last);
  std::vector<int32_t> out{last};
  while (static_cast<int64_t>(out.size()) < n) {
    const SpeculativeStep s = decoder.step(last, target);
    EXPECT_FALSE(s.tokens.empty());
    EXPECT_EQ(s.tokens.size(), static_cast<size_t>(s.accepted + 1));
    out.insert(out.end(), s.tokens.begin(), s.tokens.end());
    last = s.tokens.back();
  }
  out.resize(n);
  if (stats) *stats = decoder.stats();
  if (active) *active = decoder.mtp_active();
  return out;
}

}  // namespace peregrine::test
