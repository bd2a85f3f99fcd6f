// Decoding with the logits left where the model computed them: the generation loop and the
// speculative decoder, which sample from candidates selected on the backend (Model::top_logits),
// give exactly the ids of whole-row sampling on the fixtures, on the CPU backend and on the
// EmulatedDeviceBackend; and a decode step on a device moves candidates, not the logits row.
#include <gtest/gtest.h>

#include <span>
#include <string>
#include <vector>

#include "decode/generation_loop.h"
#include "peregrine/sequence_logits.h"
#include "peregrine/speculative.h"
#include "peregrine/tokenizer.h"
#include "test_device_discipline_util.h"

namespace peregrine {
namespace {

using namespace test;

constexpr int64_t kGenerated = 40;

std::vector<int32_t> fixture_prompt(const TinyFixture& fx) {
  return fx.meta["greedy"]["prompt"].get<std::vector<int32_t>>();
}

struct Profile {
  std::string name;
  SamplingParams params;
};

std::vector<Profile> profiles() {
  SamplingParams repetition = SamplingParams::thinking_general();
  repetition.repetition_penalty = 1.15f;
  repetition.frequency_penalty = 0.2f;
  repetition.seed = 9;
  SamplingParams penalised_greedy = SamplingParams::greedy();
  penalised_greedy.repetition_penalty = 1.3f;
  SamplingParams whole_row = SamplingParams::thinking_coding();  // top_k 0: the whole row
  whole_row.top_k = 0;
  whole_row.seed = 3;
  SamplingParams instruct = SamplingParams::instruct();
  instruct.seed = 7;
  return {{"greedy", SamplingParams::greedy()},
          {"greedy with repetition penalty", penalised_greedy},
          {"instruct", instruct},
          {"thinking with repetition and frequency", repetition},
          {"top_k 0", whole_row}};
}

// Plain decoding the way it was done before candidates: every row downloaded, the sampler over it.
std::vector<int32_t> whole_row_decoding(Model& model, const Tokenizer& tokenizer, std::span<const int32_t> prompt,
                                        const SamplingParams& params) {
  Sequence seq = model.new_sequence();
  const auto V = static_cast<int32_t>(model.config().n_vocab);
  Sampler sampler(params, V, std::min<int32_t>(tokenizer.vocab_size(), V));
  sampler.reset(prompt);
  std::span<const float> logits = model.evaluate(seq, prompt, 0, LogitsFor::LastToken);
  std::vector<int32_t> out;
  while (static_cast<int64_t>(out.size()) < kGenerated) {
    const int32_t id = sampler.sample(logits);
    sampler.accept(id);
    out.push_back(id);
    logits = model.evaluate(seq, std::span<const int32_t>(&id, 1), seq.n_past(), LogitsFor::LastToken);
  }
  return out;
}

struct LoopRun {
  std::vector<int32_t> ids;
  std::string text;
};

LoopRun generation_loop(Model& model, const Tokenizer& tokenizer, std::span<const int32_t> prompt,
                        const SamplingParams& params, MtpSetting mtp) {
  Sequence seq = model.new_sequence();
  std::vector<int32_t> history;
  GenerationLoop loop(model, seq, history, tokenizer);
  request::Generate r;
  r.prompt = std::vector<int32_t>(prompt.begin(), prompt.end());
  r.sampling = params;
  r.max_tokens = kGenerated;
  r.ignore_eos = true;
  r.mtp = mtp;
  LoopRun run;
  GenerationCallbacks callbacks;
  callbacks.on_text = [&](event::TokenText&& t) {
    run.ids.insert(run.ids.end(), t.ids.begin(), t.ids.end());
    run.text += t.text;
  };
  loop.run(prompt, r, callbacks);
  return run;
}

TEST(CandidateDecoding, GenerationLoopGivesTheWholeRowIdsAndText) {
  for (const std::string name : {"tiny-mtp-f32", "tiny-moe-f32"}) {
    TinyFixture fx(name);
    TwinModels m(fx);
    const Tokenizer tokenizer = Tokenizer::from_gguf(fx.file);
    const auto prompt = fixture_prompt(fx);
    for (const Profile& p : profiles()) {
      SCOPED_TRACE(name + ", " + p.name);
      const std::vector<int32_t> expected = whole_row_decoding(*m.cpu, tokenizer, prompt, p.params);
      const LoopRun cpu = generation_loop(*m.cpu, tokenizer, prompt, p.params, MtpSetting::off());
      const LoopRun dev = generation_loop(*m.dev, tokenizer, prompt, p.params, MtpSetting::off());
      EXPECT_EQ(cpu.ids, expected);
      EXPECT_EQ(dev.ids, expected);
      EXPECT_EQ(dev.text, cpu.text);
    }
  }
}

// The target side with every row read whole (the path before candidates), for comparison.
class WholeRowTarget final : public TargetDistribution {
 public:
  explicit WholeRowTarget(Sampler& sampler) : inner_(sampler) {}
  bool greedy() const override { return inner_.greedy(); }
  std::span<const TokenProb> distribution(LogitsSource& logits) override { return inner_.distribution(logits.row()); }
  void record(int32_t id) override { inner_.record(id); }
  double uniform() override { return inner_.uniform(); }

 private:
  SamplerTarget inner_;
};

std::vector<int32_t> speculative_decoding(Model& model, std::span<const int32_t> prompt, const SamplingParams& params,
                                          bool whole_rows) {
  Sequence seq = model.new_sequence();
  const auto V = static_cast<int32_t>(model.config().n_vocab);
  SpeculativeOptions o;
  o.draft_length = 3;
  SpeculativeDecoder decoder(model, seq, o);
  model.evaluate_lazy(seq, prompt, 0, LogitsFor::LastToken);
  decoder.observe(prompt);
  Sampler sampler(params, V, V);
  sampler.reset(prompt);
  SamplerTarget candidates(sampler);
  WholeRowTarget rows(sampler);
  TargetDistribution& target = whole_rows ? static_cast<TargetDistribution&>(rows) : candidates;
  SequenceLogits first(model, seq, LogitRows::Trunk);
  first.refresh(1);
  int32_t last = whole_rows ? sampler.sample(seq.logits()) : sampler.sample(first);
  sampler.accept(last);
  std::vector<int32_t> out{last};
  while (static_cast<int64_t>(out.size()) < kGenerated) {
    const SpeculativeStep s = decoder.step(last, target);
    out.insert(out.end(), s.tokens.begin(), s.tokens.end());
    last = s.tokens.back();
  }
  out.resize(kGenerated);
  EXPECT_GT(decoder.stats().drafted, 0);
  return out;
}

TEST(CandidateDecoding, SpeculativeDecodingGivesTheWholeRowIds) {
  TinyFixture fx("tiny-mtp-f32");
  TwinModels m(fx);
  const auto prompt = fixture_prompt(fx);
  for (const Profile& p : profiles()) {
    SCOPED_TRACE(p.name);
    const std::vector<int32_t> expected = speculative_decoding(*m.cpu, prompt, p.params, true);
    EXPECT_EQ(speculative_decoding(*m.cpu, prompt, p.params, false), expected) << "cpu";
    EXPECT_EQ(speculative_decoding(*m.dev, prompt, p.params, false), expected) << "emulated device";
  }
}

// Bytes a decode step moves device -> host: the whole logits row before, candidates now.
TEST(CandidateDecodingTraffic, ADecodeStepNoLongerDownloadsTheLogitsRow) {
  TinyFixture fx("tiny-mtp-f32");
  TwinModels m(fx);
  const int64_t V = m.dev->config().n_vocab, n = m.dev->config().n_embd;
  const auto prompt = fixture_prompt(fx);
  for (const Profile& p : {profiles()[0], profiles()[3]}) {
    SCOPED_TRACE(p.name);
    Sequence seq = m.dev->new_sequence();
    Sampler sampler(p.params, static_cast<int32_t>(V), static_cast<int32_t>(V));
    sampler.reset(prompt);
    SequenceLogits logits(*m.dev, seq, LogitRows::Trunk);
    m.dev->evaluate_lazy(seq, prompt, 0, LogitsFor::LastToken);
    logits.refresh(1);
    int32_t id = sampler.sample(logits);
    sampler.accept(id);
    auto moved_down = [&] {
      const auto c = m.device->counters();
      return c.download_bytes + c.candidate_bytes;
    };
    for (int warm = 0; warm < 2; ++warm) {  // buffers sized once
      m.dev->evaluate_lazy(seq, std::span<const int32_t>(&id, 1), seq.n_past(), LogitsFor::LastToken);
      logits.refresh(1);
      sampler.accept(id = sampler.sample(logits));
    }

    // Before: the step hands its row to the host (Model::evaluate) and the sampler reads it whole.
    m.device->reset_counters();
    const std::span<const float> row =
        m.dev->evaluate(seq, std::span<const int32_t>(&id, 1), seq.n_past(), LogitsFor::LastToken);
    sampler.accept(id = sampler.sample(row));
    const uint64_t whole_row_bytes = moved_down(), whole_row_up = m.device->counters().upload_bytes;

    // Now: the logits stay on the device, the sampler gets its candidates.
    m.device->reset_counters();
    m.dev->evaluate_lazy(seq, std::span<const int32_t>(&id, 1), seq.n_past(), LogitsFor::LastToken);
    logits.refresh(1);
    sampler.accept(id = sampler.sample(logits));
    const auto c = m.device->counters();
    const uint64_t candidate_bytes = moved_down();
    EXPECT_EQ(c.allocations, 0u);

    const uint64_t row_bytes = static_cast<uint64_t>(V) * sizeof(float), hidden_bytes = n * sizeof(float);
    EXPECT_GE(whole_row_bytes, row_bytes + hidden_bytes);
    const uint64_t k = static_cast<uint64_t>(std::max<int64_t>(1, p.params.is_greedy() ? 1 : p.params.top_k));
    EXPECT_EQ(candidate_bytes, hidden_bytes + k * 8) << "a step moved " << candidate_bytes << " bytes down";
    // Up: what the whole-row step uploads (the embedding row) plus the penalised ids and their
    // values; the hidden row is not uploaded again (the LM head writes the backend's logits).
    EXPECT_LE(c.upload_bytes, whole_row_up + 2 * sizeof(float) * sampler.penalties().ids.size() + 64);
    RecordProperty(p.params.is_greedy() ? "greedy_whole_row_bytes_down" : "sampled_whole_row_bytes_down",
                   std::to_string(whole_row_bytes));
    RecordProperty(p.params.is_greedy() ? "greedy_candidate_bytes_down" : "sampled_candidate_bytes_down",
                   std::to_string(candidate_bytes));
    RecordProperty(p.params.is_greedy() ? "greedy_candidate_bytes_up" : "sampled_candidate_bytes_up",
                   std::to_string(c.upload_bytes));
    RecordProperty(p.params.is_greedy() ? "greedy_whole_row_bytes_up" : "sampled_whole_row_bytes_up",
                   std::to_string(whole_row_up));
  }
}

}  // namespace
}  // namespace peregrine
