// Decoding on the EmulatedDeviceBackend: greedy and sampled generation with MTP on and off (the
// speculative decoder and the engine's generation loop) give the CPU backend's ids, a decode step
// moves only a row or two between host and device and allocates nothing, and the load refuses a
// model that does not fit the device's free memory.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "decode/generation_loop.h"
#include "peregrine/tokenizer.h"
#include "test_device_discipline_util.h"
#include "test_mtp_util.h"

namespace peregrine {
namespace {

using namespace test;

constexpr int64_t kGenerated = 24;

std::vector<int32_t> greedy_prompt(const TinyFixture& fx) {
  return fx.meta["greedy"]["prompt"].get<std::vector<int32_t>>();
}

class DeviceDecode : public ::testing::TestWithParam<std::string> {};

TEST_P(DeviceDecode, GreedyWithAndWithoutMtpGivesTheCpuIds) {
  TinyFixture fx(GetParam());
  ModelOptions o = fixture_options();
  TwinModels m(fx, o);
  const auto prompt = greedy_prompt(fx);
  const auto expected = plain_greedy(*m.cpu, prompt, kGenerated);
  if (!fx.quantized()) {  // llama.cpp's ids too (the quantized reference rounds activations)
    const auto ref = fx.meta["greedy"]["generated"].get<std::vector<int32_t>>();
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(), ref.begin()));
  }
  EXPECT_EQ(plain_greedy(*m.dev, prompt, kGenerated), expected) << "plain decoding";
  for (int k : {1, 3, 0}) {
    SpeculativeStats stats;
    bool active = false;
    EXPECT_EQ(speculative_greedy(*m.dev, prompt, kGenerated, k, &stats, &active), expected) << "MTP k=" << k;
    EXPECT_TRUE(active);
    EXPECT_GT(stats.steps, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DeviceDecode, ::testing::ValuesIn(kAllFixtures));

// What the Engine runs on its thread: the GenerationLoop over a model and its sequence.
struct LoopRun {
  std::vector<int32_t> ids;
  GenerationStats done;
};

LoopRun run_loop(Model& model, const Tokenizer& tokenizer, std::span<const int32_t> prompt, MtpSetting mtp,
                 const SamplingParams& sampling) {
  Sequence seq = model.new_sequence();
  std::vector<int32_t> history;
  GenerationLoop loop(model, seq, history, tokenizer);
  request::Generate r;
  r.prompt = std::vector<int32_t>(prompt.begin(), prompt.end());
  r.sampling = sampling;
  r.max_tokens = kGenerated;
  r.ignore_eos = true;
  r.mtp = mtp;
  LoopRun run;
  GenerationCallbacks callbacks;
  callbacks.on_text = [&](event::TokenText&& t) { run.ids.insert(run.ids.end(), t.ids.begin(), t.ids.end()); };
  run.done = loop.run(prompt, r, callbacks);
  return run;
}

TEST(DeviceDecodeLoop, GenerationLoopGivesTheCpuIdsWithMtpOnAndOff) {
  TinyFixture fx("tiny-mtp-f32");
  TwinModels m(fx);
  const Tokenizer tokenizer = Tokenizer::from_gguf(fx.file);
  const auto prompt = greedy_prompt(fx);
  SamplingParams sampled = SamplingParams::instruct();
  sampled.seed = 7;
  for (const SamplingParams& sampling : {SamplingParams::greedy(), sampled}) {
    const std::string what = sampling.is_greedy() ? "greedy" : "sampled";
    const LoopRun expected = run_loop(*m.cpu, tokenizer, prompt, MtpSetting::off(), sampling);
    ASSERT_EQ(expected.done.generated_tokens, kGenerated) << what;
    for (const MtpSetting mtp : {MtpSetting::off(), MtpSetting::fixed(3), MtpSetting::automatic()}) {
      // The adaptive draft length follows measured step times, so only greedy output is
      // reproducible with it.
      if (!sampling.is_greedy() && mtp == MtpSetting::automatic()) continue;
      const LoopRun got = run_loop(*m.dev, tokenizer, prompt, mtp, sampling);
      EXPECT_EQ(got.done.generated_tokens, kGenerated) << what << ", mtp " << mtp_setting_name(mtp);
      EXPECT_EQ(got.done.mtp.active, mtp != MtpSetting::off());
      // Greedy: identical whatever the setting. Sampled: identical to the CPU with the same setting
      // (speculative sampling keeps the distribution, not the exact draws of plain sampling).
      const LoopRun& reference =
          sampling.is_greedy() ? expected : run_loop(*m.cpu, tokenizer, prompt, mtp, sampling);
      EXPECT_EQ(got.ids, reference.ids) << what << ", mtp " << mtp_setting_name(mtp);
    }
  }
}

// A decode step transfers its output rows, not the caches, and allocates nothing.
TEST(DeviceDecodeTraffic, ADecodeStepMovesRowsNotCaches) {
  TinyFixture fx("tiny-mtp-f32");
  TwinModels m(fx);
  const int64_t V = m.dev->config().n_vocab, n = m.dev->config().n_embd;
  const uint64_t rows_bytes = static_cast<uint64_t>(V + n) * sizeof(float);  // one logits + one hidden row
  const auto prompt = greedy_prompt(fx);
  Sequence seq = m.dev->new_sequence();
  const uint64_t state_bytes = seq.memory().total();
  ASSERT_GT(state_bytes, 8 * rows_bytes);  // so the bounds below can tell a row from a cache

  m.dev->evaluate(seq, prompt, 0, LogitsFor::LastToken);
  const auto h_in = shifted_rows(seq.hidden(), static_cast<int64_t>(prompt.size()), n);
  m.dev->evaluate_mtp(seq, prompt, h_in, 0, LogitsFor::LastToken);
  int32_t token = argmax_row(seq.logits(), V);
  m.dev->evaluate(seq, std::span(&token, 1), seq.n_past(), LogitsFor::LastToken);  // warm-up: outputs sized once
  const std::vector<float> h_row = copy_of(seq.hidden());
  m.dev->evaluate_mtp(seq, std::span(&token, 1), h_row, seq.mtp_n_past(), LogitsFor::LastToken);

  token = argmax_row(seq.logits(), V);
  m.device->reset_counters();
  const auto l = m.dev->evaluate(seq, std::span(&token, 1), seq.n_past(), LogitsFor::LastToken);
  ASSERT_EQ(l.size(), static_cast<size_t>(V));
  auto c = m.device->counters();
  EXPECT_EQ(c.allocations, 0u) << "a trunk decode step allocated backend memory";
  EXPECT_LE(c.download_bytes, 2 * rows_bytes) << "a trunk decode step downloaded " << c.download_bytes << " bytes";
  EXPECT_LE(c.upload_bytes, 2 * rows_bytes) << "a trunk decode step uploaded " << c.upload_bytes << " bytes";
  RecordProperty("trunk_step_download_bytes", std::to_string(c.download_bytes));
  RecordProperty("trunk_step_upload_bytes", std::to_string(c.upload_bytes));

  const std::vector<float> h_next = copy_of(seq.hidden());
  m.device->reset_counters();
  m.dev->evaluate_mtp(seq, std::span(&token, 1), h_next, seq.mtp_n_past(), LogitsFor::LastToken);
  c = m.device->counters();
  EXPECT_EQ(c.allocations, 0u) << "an MTP step allocated backend memory";
  EXPECT_LE(c.download_bytes, 2 * rows_bytes) << "an MTP step downloaded " << c.download_bytes << " bytes";
  EXPECT_LE(c.upload_bytes, 2 * rows_bytes) << "an MTP step uploaded " << c.upload_bytes << " bytes";

  // Checkpointed verify of 4 tokens and a rollback: state copies stay on the device.
  seq.set_delta_checkpoints(4);
  const std::vector<int32_t> verify(4, token);
  m.dev->evaluate(seq, verify, seq.n_past(), LogitsFor::EveryToken);
  m.device->reset_counters();
  m.dev->rollback(seq, seq.n_past() - 2);
  c = m.device->counters();
  EXPECT_EQ(c.allocations, 0u) << "rollback allocated backend memory";
  EXPECT_LE(c.download_bytes, 2 * rows_bytes) << "rollback downloaded " << c.download_bytes << " bytes";
  EXPECT_LE(c.upload_bytes, 2 * rows_bytes) << "rollback uploaded " << c.upload_bytes << " bytes";
}

// ---- the VRAM budget ----

struct Footprint {
  uint64_t after_load = 0;      // weights and scratch
  uint64_t after_sequence = 0;  // plus one sequence's state
};

Footprint measure(const TinyFixture& fx, const ModelOptions& o) {
  auto backend = std::make_unique<EmulatedDeviceBackend>();
  EmulatedDeviceBackend* device = backend.get();
  auto model = Model::load(fx.file, o, nullptr, std::move(backend));
  Footprint f;
  f.after_load = device->counters().bytes_in_use;
  Sequence seq = model->new_sequence();
  f.after_sequence = device->counters().bytes_in_use;
  model->evaluate(seq, std::span(fx.tokens).first(8), 0, LogitsFor::LastToken);
  f.after_sequence = std::max(f.after_sequence, device->counters().peak_bytes);
  return f;
}

std::unique_ptr<Model> load_with_budget(const TinyFixture& fx, const ModelOptions& o, uint64_t budget) {
  return Model::load(fx.file, o, nullptr, std::make_unique<EmulatedDeviceBackend>(budget));
}

TEST(DeviceMemoryBudget, LoadIsRefusedWhenTheModelAndOneSequenceDoNotFit) {
  TinyFixture fx("tiny256-f32");
  ModelOptions o = fixture_options();
  o.context_length = 16384;  // the sequence state (16 MiB) is then most of what is allocated
  const Footprint f = measure(fx, o);
  ASSERT_GT(f.after_sequence, f.after_load + (8u << 20));
  // The load also keeps headroom for a device backend's own workspaces (cuBLAS and the like),
  // which this backend never allocates; the estimate may round up by a little more.
  constexpr uint64_t kHeadroom = uint64_t{512} << 20, kSlack = uint64_t{64} << 20;

  // Enough: loads, and a sequence evaluates.
  {
    auto model = load_with_budget(fx, o, f.after_sequence + kHeadroom + kSlack);
    Sequence seq = model->new_sequence();
    EXPECT_NO_THROW(model->evaluate(seq, std::span(fx.tokens).first(8), 0, LogitsFor::LastToken));
  }
  // Room for the weights and the headroom but only half the sequence; and not even the weights:
  // refused by the load itself (not by an allocation failing later), naming the numbers.
  const uint64_t budgets[] = {f.after_load + kHeadroom + (f.after_sequence - f.after_load) / 2, f.after_load / 2};
  for (uint64_t budget : budgets) {
    try {
      auto model = load_with_budget(fx, o, budget);
      Sequence seq = model->new_sequence();
      ADD_FAILURE() << "a budget of " << budget << " bytes was accepted (the model needs about "
                    << f.after_sequence + kHeadroom << ")";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.find("emulated device: out of memory"), std::string::npos)
          << "the load did not check the budget before allocating: " << message;
      // Two numbers at least: what is needed and what is free.
      const std::regex number("[0-9]+(\\.[0-9]+)?");
      const auto count = std::distance(std::sregex_iterator(message.begin(), message.end(), number),
                                       std::sregex_iterator());
      EXPECT_GE(count, 2) << "the refusal does not name the numbers: " << message;
      RecordProperty("refusal_message", message);
    }
  }
}

TEST(DeviceMemoryBudget, UnknownFreeMemoryIsNotARefusal) {
  TinyFixture fx("tiny-f32");
  EXPECT_NO_THROW(Model::load(fx.file, fixture_options(), nullptr, std::make_unique<EmulatedDeviceBackend>()));
}

}  // namespace
}  // namespace peregrine
