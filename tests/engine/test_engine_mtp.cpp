// MTP speculative decoding through the Engine's worker thread (docs/mtp.md, docs/engine.md): the
// output equals plain decoding token for token, stops end where plain decoding ends and leave
// the sequence where plain decoding leaves it, cancel works mid-stream, statistics arrive in Done.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>

#include <nlohmann/json.hpp>

#include "peregrine/engine.h"
#include "peregrine/synthetic.h"
#include "test_engine_events.h"
#include "test_model_util.h"

namespace peregrine {
namespace {

using namespace std::chrono_literals;
using test::Outcome;
using test::wait_for;

std::string fixture(const std::string& name) {
  return std::string(PEREGRINE_TEST_DATA_DIR) + "/qwen35-tiny/" + name + ".gguf";
}

std::vector<int32_t> fixture_prompt(const std::string& name) {
  std::ifstream in(std::string(PEREGRINE_TEST_DATA_DIR) + "/qwen35-tiny/" + name + ".json");
  return nlohmann::json::parse(in).at("greedy").at("prompt").get<std::vector<int32_t>>();
}

ModelOptions options() {
  ModelOptions o;
  o.context_length = 512;
  o.n_threads = 1;
  return o;
}

request::Generate request_for(std::vector<int32_t> prompt, int32_t max_tokens, MtpSetting mtp) {
  request::Generate g;
  g.prompt = std::move(prompt);
  g.max_tokens = max_tokens;
  g.ignore_eos = true;
  g.reuse_prefix = false;
  g.mtp = mtp;
  return g;
}

Outcome generate(Engine& engine, request::Generate request) {
  Outcome out = wait_for(engine, engine.generate(std::move(request)));
  EXPECT_NE(out.done(), nullptr) << (out.error() ? out.error()->message : std::string("no Done"));
  return out;
}

void load(Engine& engine, const std::string& path) {
  const Outcome loaded = wait_for(engine, engine.load_model(path, options()));
  ASSERT_TRUE(loaded.last() && loaded.last()->is<event::ModelLoaded>())
      << (loaded.error() ? loaded.error()->message : std::string("no event"));
}

constexpr int32_t kLong = 220;

TEST(EngineMtp, GreedyIdenticalToPlainForEveryDraftLength) {
  for (const std::string name : {"tiny-mtp-f32", "tiny-f32"}) {
    SCOPED_TRACE(name);
    Engine engine;
    load(engine, fixture(name));
    const auto prompt = fixture_prompt(name);
    const Outcome plain = generate(engine, request_for(prompt, kLong, MtpSetting::off()));
    ASSERT_EQ(plain.ids.size(), static_cast<size_t>(kLong));
    EXPECT_FALSE(plain.done()->mtp.active);
    EXPECT_TRUE(plain.done()->mtp.model_has_mtp);
    EXPECT_EQ(plain.done()->mtp.drafted, 0);
    for (const MtpSetting mtp : {MtpSetting::fixed(1), MtpSetting::fixed(2), MtpSetting::fixed(3),
                                 MtpSetting::automatic()}) {
      SCOPED_TRACE(mtp_setting_name(mtp));
      const Outcome out = generate(engine, request_for(prompt, kLong, mtp));
      EXPECT_EQ(out.ids, plain.ids);
      EXPECT_EQ(out.text, plain.text);
      const GenerationStats& done = *out.done();
      EXPECT_EQ(done.generated_tokens, kLong);
      EXPECT_EQ(done.stop_reason, StopReason::MaxTokens);
      EXPECT_TRUE(done.mtp.active);
      EXPECT_GT(done.mtp.steps, 0);
      EXPECT_GT(done.mtp.verify_ms, 0.0);
      ASSERT_EQ(done.mtp.drafted_at.size(), static_cast<size_t>(kMaxMtpDraftLength));
      ASSERT_EQ(done.mtp.accepted_at.size(), static_cast<size_t>(kMaxMtpDraftLength));
      int64_t sum = 0;
      for (int64_t a : done.mtp.accepted_at) sum += a;
      EXPECT_EQ(sum, done.mtp.accepted);
      if (mtp.mode == MtpSetting::Mode::Fixed) {
        EXPECT_EQ(done.mtp.drafted_at[static_cast<size_t>(mtp.draft_length)], 0);  // never longer than k
        // Each step yields 1 + accepted tokens; the first id comes from the prompt's logits and the
        // last step may be cut by max_tokens.
        EXPECT_GE(done.mtp.steps + done.mtp.accepted, kLong - 1);
        EXPECT_EQ(done.mtp.drafted, done.mtp.steps * mtp.draft_length);
        EXPECT_GT(done.mtp.draft_ms, 0.0);
        // The trained head of tiny-mtp-f32 agrees with the trunk often (docs/mtp.md: k=1 57/163).
        if (name == "tiny-mtp-f32") {
          EXPECT_GT(done.mtp.accepted, 20);
          EXPECT_GT(done.mtp.mean_accepted, 0.0);
        }
      }
    }
  }
}

TEST(EngineMtp, MaxTokensInsideAStepEndsLikePlainAndTheSequenceStaysReusable) {
  Engine engine;
  load(engine, fixture("tiny-mtp-f32"));
  const auto prompt = fixture_prompt("tiny-mtp-f32");
  const Outcome plain = generate(engine, request_for(prompt, 64, MtpSetting::off()));
  ASSERT_EQ(plain.ids.size(), 64u);
  // Every length from 1 to 40: with k = 3 and 30–40 % of drafts accepted, many of these stops
  // fall inside a step's accepted drafts.
  for (int32_t n = 1; n <= 40; ++n) {
    SCOPED_TRACE(n);
    const Outcome out = generate(engine, request_for(prompt, n, MtpSetting::fixed(3)));
    ASSERT_EQ(out.ids, std::vector<int32_t>(plain.ids.begin(), plain.ids.begin() + n));
    EXPECT_EQ(out.done()->stop_reason, StopReason::MaxTokens);
    if (n % 7 != 3) continue;
    // The sequence holds the prompt and ids [0, n − 1), like plain decoding: a prompt extending
    // that by the n-th id reuses all of it and continues exactly like the plain run.
    std::vector<int32_t> extended = prompt;
    extended.insert(extended.end(), plain.ids.begin(), plain.ids.begin() + n);
    auto req = request_for(extended, 8, MtpSetting::fixed(2));
    req.reuse_prefix = true;
    const Outcome next = generate(engine, req);
    EXPECT_EQ(next.done()->reused_prompt_tokens, static_cast<int64_t>(prompt.size()) + n - 1);
    EXPECT_EQ(next.ids, std::vector<int32_t>(plain.ids.begin() + n, plain.ids.begin() + n + 8));
    EXPECT_TRUE(next.done()->mtp.active);
  }
}

TEST(EngineMtp, StopStringsEndWherePlainDecodingEnds) {
  Engine engine;
  load(engine, fixture("tiny-mtp-f32"));
  const auto prompt = fixture_prompt("tiny-mtp-f32");
  const Outcome plain = generate(engine, request_for(prompt, 80, MtpSetting::off()));
  ASSERT_GT(plain.text.size(), 40u);
  int stopped = 0;
  for (size_t at = 6; at + 3 < plain.text.size() && at < 120; at += 5) {
    auto req_plain = request_for(prompt, 80, MtpSetting::off());
    req_plain.stop_strings = {plain.text.substr(at, 3)};
    auto req_mtp = req_plain;
    req_mtp.mtp = MtpSetting::fixed(3);
    const Outcome a = generate(engine, req_plain);
    const Outcome b = generate(engine, req_mtp);
    SCOPED_TRACE(req_plain.stop_strings.front());
    EXPECT_EQ(b.ids, a.ids);
    EXPECT_EQ(b.text, a.text);
    EXPECT_EQ(b.done()->stop_reason, a.done()->stop_reason);
    EXPECT_EQ(b.done()->generated_tokens, a.done()->generated_tokens);
    stopped += a.done()->stop_reason == StopReason::StopString;
    if (b.done()->stop_reason != StopReason::StopString || b.ids.size() + 6 > plain.ids.size()) continue;
    // The sequence holds what plain decoding evaluated (not the stopping id): a prompt extending
    // it by that id reuses everything and continues like the plain run.
    std::vector<int32_t> extended = prompt;
    extended.insert(extended.end(), b.ids.begin(), b.ids.end());
    auto next_req = request_for(extended, 5, MtpSetting::fixed(3));
    next_req.reuse_prefix = true;
    const Outcome next = generate(engine, next_req);
    EXPECT_EQ(next.done()->reused_prompt_tokens, static_cast<int64_t>(extended.size()) - 1);
    EXPECT_EQ(next.ids, std::vector<int32_t>(plain.ids.begin() + static_cast<std::ptrdiff_t>(b.ids.size()),
                                             plain.ids.begin() + static_cast<std::ptrdiff_t>(b.ids.size()) + 5));
  }
  EXPECT_GT(stopped, 5);
}

TEST(EngineMtp, SampledOutputIsReproduciblePerSeed) {
  Engine engine;
  load(engine, fixture("tiny-mtp-f32"));
  const auto prompt = fixture_prompt("tiny-mtp-f32");
  auto req = request_for(prompt, 120, MtpSetting::automatic());
  req.sampling.temperature = 0.7f;
  req.sampling.top_k = 5;
  req.sampling.seed = 11;
  const Outcome a = generate(engine, req);
  const Outcome b = generate(engine, req);
  EXPECT_EQ(a.ids.size(), 120u);
  EXPECT_EQ(a.ids, b.ids);  // auto with sampling uses a fixed draft length (docs/mtp.md)
  EXPECT_TRUE(a.done()->mtp.active);
  EXPECT_GT(a.done()->mtp.drafted, 0);
  EXPECT_GT(a.done()->mtp.accepted, 0);
  req.mtp = MtpSetting::fixed(2);
  EXPECT_EQ(generate(engine, req).ids, a.ids);
}

TEST(EngineMtp, CancelMidStreamWithDrafts) {
  const auto prompt = fixture_prompt("tiny-mtp-f32");
  std::mutex m;
  std::vector<Event> events;
  std::promise<void> finished;
  Engine* self = nullptr;
  Engine engine([&](const Event& e) {
    if (auto* s = e.get_if<event::StepStats>(); s && s->stats.generated_tokens == 7) self->cancel(e.request);
    std::lock_guard lock(m);
    events.push_back(e);
    if (e.is<event::Done>() || e.is<event::Error>()) finished.set_value();
  });
  self = &engine;
  engine.load_model(fixture("tiny-mtp-f32"), options());
  auto req = request_for(prompt, 400, MtpSetting::fixed(3));
  req.stats_interval = 0ms;
  engine.generate(req);
  ASSERT_EQ(finished.get_future().wait_for(60s), std::future_status::ready);
  std::lock_guard lock(m);
  const event::Done* closing = events.back().get_if<event::Done>();
  ASSERT_NE(closing, nullptr);
  const GenerationStats* done = &closing->stats;
  ASSERT_NE(done, nullptr);
  EXPECT_EQ(done->stop_reason, StopReason::Cancelled);
  // Like plain decoding (Engine.CallbackCancelTakesEffectWithinOneStep): the 8th id is taken, then
  // the check stops the loop, even though later ids of the step were already verified.
  EXPECT_EQ(done->generated_tokens, 8);
  EXPECT_TRUE(done->mtp.active);
}

TEST(EngineMtp, CancelledSequenceContinuesLikePlain) {
  Engine engine;
  load(engine, fixture("tiny-mtp-f32"));
  const auto prompt = fixture_prompt("tiny-mtp-f32");
  const Outcome plain = generate(engine, request_for(prompt, 30, MtpSetting::off()));
  // Cancel from the client thread while the request runs; whatever was generated is a prefix of
  // the plain run, and a prompt extending it continues like the plain run.
  auto req = request_for(prompt, 30, MtpSetting::fixed(2));
  const RequestId id = engine.generate(req);
  engine.cancel(id);
  const Outcome out = wait_for(engine, id);
  ASSERT_NE(out.done(), nullptr);
  ASSERT_LE(out.ids.size(), plain.ids.size());
  EXPECT_EQ(out.ids, std::vector<int32_t>(plain.ids.begin(), plain.ids.begin() + out.ids.size()));
  std::vector<int32_t> extended = prompt;
  extended.insert(extended.end(), plain.ids.begin(), plain.ids.begin() + 10);
  auto next_req = request_for(extended, 12, MtpSetting::automatic());
  next_req.reuse_prefix = true;
  const Outcome next = generate(engine, next_req);
  EXPECT_EQ(next.ids, std::vector<int32_t>(plain.ids.begin() + 10, plain.ids.begin() + 22));
}

TEST(EngineMtp, BadDraftLengthIsAnError) {
  Engine engine;
  load(engine, fixture("tiny-mtp-f32"));
  const Outcome out = wait_for(engine, engine.generate(request_for(fixture_prompt("tiny-mtp-f32"), 4,
                                                                   MtpSetting::fixed(9))));
  ASSERT_NE(out.error(), nullptr);
  EXPECT_NE(out.error()->message.find("draft length 9"), std::string::npos);
  EXPECT_EQ(parse_mtp_setting("3"), MtpSetting::fixed(3));
  EXPECT_EQ(parse_mtp_setting("auto"), MtpSetting::automatic());
  EXPECT_EQ(parse_mtp_setting("off"), MtpSetting::off());
  EXPECT_FALSE(parse_mtp_setting("0").has_value());
  EXPECT_FALSE(parse_mtp_setting("9").has_value());
  EXPECT_FALSE(parse_mtp_setting("12").has_value());
}

TEST(EngineMtp, ModelWithoutMtpDecodesPlainlyAndSaysSo) {
  test::ModelScratch dir("engine-mtp");
  synthetic::Options o;
  o.shape = *synthetic::builtin_shape("tiny");
  o.type = synthetic::FileType::Q8_0;
  o.seed = 5;
  o.mtp = false;
  o.threads = 1;
  o.out = dir / "no-mtp.gguf";
  synthetic::write_model(o);
  Engine engine;
  load(engine, o.out.string());
  const std::vector<int32_t> prompt{1, 2, 3, 100, 200, 42, 7, 300, 11};
  const Outcome plain = generate(engine, request_for(prompt, 24, MtpSetting::off()));
  const Outcome out = generate(engine, request_for(prompt, 24, MtpSetting::fixed(3)));
  EXPECT_EQ(out.ids, plain.ids);
  EXPECT_FALSE(out.done()->mtp.model_has_mtp);
  EXPECT_FALSE(out.done()->mtp.active);
  EXPECT_EQ(out.done()->mtp.drafted, 0);
}

}  // namespace
}  // namespace peregrine
