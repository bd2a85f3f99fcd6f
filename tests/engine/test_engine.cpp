// peregrine::Engine with its real worker thread, on tests/data/qwen35-tiny/tiny-f32.gguf.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>

#include "decode/think_splitter.h"
#include "peregrine/engine.h"
#include "peregrine/tokenizer.h"
#include "peregrine/gguf.h"
#include "test_engine_events.h"
#include "test_engine_util.h"

namespace peregrine {
namespace {

using namespace std::chrono_literals;

using test::closes;
using test::Outcome;
using test::wait_for;

ModelOptions options() {
  ModelOptions o;
  o.context_length = 4096;
  return o;
}

request::Generate greedy_request(std::vector<int32_t> prompt, int32_t max_tokens) {
  request::Generate g;
  g.prompt = std::move(prompt);
  g.max_tokens = max_tokens;
  return g;
}

TEST(Engine, LoadAndGenerateGreedyLikeLlamaCpp) {
  const auto ref = test::tiny_greedy();
  Engine engine;
  const RequestId load = engine.load_model(test::tiny_model_path(), options());
  const Outcome loaded = wait_for(engine, load);
  ASSERT_TRUE(loaded.last() && loaded.last()->is<event::ModelLoaded>());
  const ModelInfo& info = loaded.last()->get_if<event::ModelLoaded>()->info;
  EXPECT_EQ(info.architecture, "qwen35");
  EXPECT_EQ(info.n_vocab, 512);
  EXPECT_EQ(info.vocab_size, 512);
  EXPECT_EQ(info.n_layer, 4);
  EXPECT_TRUE(info.has_mtp);
  EXPECT_EQ(info.context_length, 4096);

  auto req = greedy_request(ref.prompt, 32);
  req.stats_interval = 0ms;
  const RequestId gen = engine.generate(req);
  EXPECT_GT(gen, load);
  const Outcome out = wait_for(engine, gen);
  ASSERT_NE(out.done(), nullptr);
  EXPECT_EQ(out.ids, ref.generated);
  EXPECT_EQ(out.done()->stop_reason, StopReason::MaxTokens);
  EXPECT_EQ(out.done()->generated_tokens, 32);
  EXPECT_EQ(out.done()->prompt_tokens, 16);
  EXPECT_EQ(out.stats, 31);
  EXPECT_FALSE(engine.poll().has_value());
}

TEST(Engine, CallbackCancelTakesEffectWithinOneStep) {
  const auto ref = test::tiny_greedy();
  std::mutex m;
  std::vector<Event> events;
  std::promise<void> finished;
  Engine* self = nullptr;
  Engine engine([&](const Event& e) {
    // On the engine thread: cancel as soon as the 5th step's stats arrive.
    if (auto* s = e.get_if<event::StepStats>(); s && s->stats.generated_tokens == 5) self->cancel(e.request);
    std::lock_guard lock(m);
    events.push_back(e);
    if (e.is<event::Done>() || e.is<event::Error>()) finished.set_value();
  });
  self = &engine;
  engine.load_model(test::tiny_model_path(), options());
  auto req = greedy_request(ref.prompt, 1000);
  req.ignore_eos = true;
  req.stats_interval = 0ms;
  engine.generate(req);
  ASSERT_EQ(finished.get_future().wait_for(60s), std::future_status::ready);
  std::lock_guard lock(m);
  const event::Done* closing = events.back().get_if<event::Done>();
  ASSERT_NE(closing, nullptr);
  const GenerationStats* done = &closing->stats;
  ASSERT_NE(done, nullptr);
  EXPECT_EQ(done->stop_reason, StopReason::Cancelled);
  // Stats for 5 ids came after the 5th forward step; the 6th id is sampled, then the check stops
  // the loop before another forward step.
  EXPECT_EQ(done->generated_tokens, 6);
  EXPECT_FALSE(engine.poll().has_value());  // a callback engine queues nothing
}

TEST(Engine, CancelFromClientThreadAndQueuedRequests) {
  const auto ref = test::tiny_greedy();
  Engine engine;
  wait_for(engine, engine.load_model(test::tiny_model_path(), options()));
  auto long_req = greedy_request(ref.prompt, 4000);
  long_req.ignore_eos = true;
  const RequestId running = engine.generate(long_req);
  const RequestId queued = engine.generate(greedy_request(ref.prompt, 8));
  const RequestId after = engine.generate(greedy_request(ref.prompt, 8));
  engine.cancel(queued);  // cancelled while still waiting: never evaluates anything

  // Cancel the long one once its first text arrives.
  Outcome first;
  for (;;) {
    auto e = engine.wait(10s);
    ASSERT_TRUE(e.has_value());
    ASSERT_EQ(e->request, running);
    first.events.push_back(*e);
    if (e->is<event::TokenText>()) break;
    ASSERT_FALSE(closes(*e));
  }
  engine.cancel(running);
  const Outcome rest = wait_for(engine, running);
  ASSERT_NE(rest.done(), nullptr);
  EXPECT_EQ(rest.done()->stop_reason, StopReason::Cancelled);
  EXPECT_LT(rest.done()->generated_tokens, 4000);

  const Outcome q = wait_for(engine, queued);
  ASSERT_NE(q.done(), nullptr);
  EXPECT_EQ(q.done()->stop_reason, StopReason::Cancelled);
  EXPECT_EQ(q.done()->generated_tokens, 0);
  EXPECT_EQ(q.events.size(), 1u);

  const Outcome a = wait_for(engine, after);  // not affected by the earlier cancels
  ASSERT_NE(a.done(), nullptr);
  EXPECT_EQ(a.done()->stop_reason, StopReason::MaxTokens);
  EXPECT_EQ(a.ids, std::vector<int32_t>(ref.generated.begin(), ref.generated.begin() + 8));

  // cancel() with no target cancels everything submitted so far.
  const RequestId x = engine.generate(long_req), y = engine.generate(long_req);
  engine.cancel();
  EXPECT_EQ(wait_for(engine, x).done()->stop_reason, StopReason::Cancelled);
  EXPECT_EQ(wait_for(engine, y).done()->stop_reason, StopReason::Cancelled);
  const Outcome z = wait_for(engine, engine.generate(greedy_request(ref.prompt, 3)));
  ASSERT_NE(z.done(), nullptr);
  EXPECT_EQ(z.done()->stop_reason, StopReason::MaxTokens);
}

TEST(Engine, BadModelsGiveErrorsAndTheEngineStaysUsable) {
  const auto ref = test::tiny_greedy();
  Engine engine;
  const Outcome missing = wait_for(engine, engine.load_model("/nonexistent/model.gguf", options()));
  ASSERT_NE(missing.error(), nullptr);
  EXPECT_NE(missing.error()->message.find("/nonexistent/model.gguf"), std::string::npos) << missing.error()->message;

  const std::string corrupt = std::string(PEREGRINE_TEST_DATA_DIR) + "/gguf-corrupt/bad-magic.gguf";
  const Outcome bad = wait_for(engine, engine.load_model(corrupt, options()));
  ASSERT_NE(bad.error(), nullptr);
  EXPECT_NE(bad.error()->message.find("bad-magic.gguf"), std::string::npos) << bad.error()->message;

  // Valid GGUF but no tensors (headers only): the model binding fails.
  const std::string headers = std::string(PEREGRINE_TEST_DATA_DIR) + "/gguf-corrupt/tiny-f32-headers-only.gguf";
  EXPECT_NE(wait_for(engine, engine.load_model(headers, options())).error(), nullptr);

  const Outcome no_model = wait_for(engine, engine.generate(greedy_request(ref.prompt, 4)));
  ASSERT_NE(no_model.error(), nullptr);
  EXPECT_NE(no_model.error()->message.find("no model"), std::string::npos);

  const Outcome good = wait_for(engine, engine.load_model(test::tiny_model_path(), options()));
  ASSERT_TRUE(good.last() && good.last()->is<event::ModelLoaded>());
  const Outcome gen = wait_for(engine, engine.generate(greedy_request(ref.prompt, 32)));
  EXPECT_EQ(gen.ids, ref.generated);

  // A bad request (id outside the vocabulary) is an Error; the next request works.
  EXPECT_NE(wait_for(engine, engine.generate(greedy_request({1, 2, 9999}, 4))).error(), nullptr);
  request::Generate bad_sampling = greedy_request(ref.prompt, 4);
  bad_sampling.sampling.top_p = 0.0f;
  EXPECT_NE(wait_for(engine, engine.generate(bad_sampling)).error(), nullptr);
  EXPECT_EQ(wait_for(engine, engine.generate(greedy_request(ref.prompt, 4))).done()->generated_tokens, 4);
}

TEST(Engine, MaxTokensStopStringAndUnload) {
  const auto ref = test::tiny_greedy();
  Engine engine;
  wait_for(engine, engine.load_model(test::tiny_model_path(), options()));

  const Outcome five = wait_for(engine, engine.generate(greedy_request(ref.prompt, 5)));
  ASSERT_NE(five.done(), nullptr);
  EXPECT_EQ(five.done()->stop_reason, StopReason::MaxTokens);
  EXPECT_EQ(five.ids, std::vector<int32_t>(ref.generated.begin(), ref.generated.begin() + 5));

  // A stop string made of the end of one token's text and the start of the next one's.
  const Tokenizer tok = Tokenizer::from_gguf(GgufFile::open(test::tiny_model_path()));
  StreamingDecoder dec(tok);
  std::vector<std::string> pieces;
  for (int32_t id : ref.generated) pieces.push_back(dec.push(id));
  const std::string full = tok.decode(ref.generated);
  size_t k = 0;
  while (k + 1 < pieces.size() && !(pieces[k].size() >= 2 && !pieces[k + 1].empty() &&
                                    static_cast<unsigned char>(pieces[k].back()) < 0x80 &&
                                    static_cast<unsigned char>(pieces[k + 1][0]) < 0x80))
    ++k;
  ASSERT_LT(k + 1, pieces.size()) << "no two adjacent ASCII pieces in the greedy text";
  const std::string stop = pieces[k].substr(pieces[k].size() - 1) + pieces[k + 1].substr(0, 1);
  const size_t at = full.find(stop);
  ASSERT_NE(at, std::string::npos);

  auto req = greedy_request(ref.prompt, 32);
  req.stop_strings = {stop};
  const Outcome stopped = wait_for(engine, engine.generate(req));
  ASSERT_NE(stopped.done(), nullptr);
  EXPECT_EQ(stopped.done()->stop_reason, StopReason::StopString);
  EXPECT_EQ(stopped.text, full.substr(0, at));
  for (const Event& e : stopped.events) {
    if (auto* t = e.get_if<event::TokenText>()) {
      EXPECT_EQ(t->text.find(stop), std::string::npos);
    }
  }

  // A stop string that only ever half matches: everything is released in the end.
  req.stop_strings = {stop.substr(0, 1) + "\x01never"};
  const Outcome released = wait_for(engine, engine.generate(req));
  ASSERT_NE(released.done(), nullptr);
  EXPECT_EQ(released.done()->stop_reason, StopReason::MaxTokens);
  EXPECT_EQ(released.text, full);
  EXPECT_EQ(released.ids, ref.generated);

  const Outcome unloaded = wait_for(engine, engine.unload());
  ASSERT_TRUE(unloaded.last() && unloaded.last()->is<event::Unloaded>());
  EXPECT_NE(wait_for(engine, engine.generate(greedy_request(ref.prompt, 4))).error(), nullptr);
}

TEST(Engine, DestructorCancelsARunningGenerationAndJoins) {
  const auto ref = test::tiny_greedy();
  const auto t0 = std::chrono::steady_clock::now();
  {
    Engine engine;
    wait_for(engine, engine.load_model(test::tiny_model_path(), options()));
    auto req = greedy_request(ref.prompt, 4000);
    req.ignore_eos = true;
    engine.generate(req);
    engine.generate(req);  // queued, dropped
    ASSERT_TRUE(engine.wait(10s).has_value());  // generating
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

// The engine renders the chat template, so it knows where the think block starts: the same ids
// come out as for the rendered text, thinking and answer split off as ThinkSplitter does it.
TEST(Engine, ChatPromptThinkingIsSplitFromTheAnswer) {
  Engine engine;
  ASSERT_TRUE(wait_for(engine, engine.load_model(test::tiny_model_path(), options())).last()->is<event::ModelLoaded>());
  for (const bool thinking : {true, false}) {
    ChatPrompt chat;
    chat.messages = {ChatMessage{"user", "What is the capital of France?", std::nullopt, {}, {}, {}}};
    chat.options.enable_thinking = thinking;
    chat.options.add_generation_prompt = true;
    chat.format = ChatFormat::Qwen36;
    request::Generate as_chat;
    as_chat.prompt = chat;
    as_chat.max_tokens = 40;
    as_chat.ignore_eos = true;
    as_chat.reuse_prefix = false;
    request::Generate as_text = as_chat;
    as_text.prompt = render_chat(ChatFormat::Qwen36, chat.messages, chat.options);

    const Outcome raw = wait_for(engine, engine.generate(as_text));
    const Outcome split = wait_for(engine, engine.generate(as_chat));
    ASSERT_NE(split.done(), nullptr);
    EXPECT_EQ(split.ids, raw.ids) << "thinking " << thinking;
    EXPECT_TRUE(raw.thinking.empty()) << "a text prompt is not split";
    std::string expected_thinking, expected_answer;
    ThinkSplitter splitter(thinking ? ThinkSplit::StartsInThinking : ThinkSplit::StartsInAnswer);
    const auto sink = [&](TextPart part, std::string_view text) {
      (part == TextPart::Thinking ? expected_thinking : expected_answer) += text;
    };
    splitter.feed(raw.text, sink);
    splitter.finish(sink);
    EXPECT_EQ(split.thinking, expected_thinking) << "thinking " << thinking;
    EXPECT_EQ(split.text, expected_answer) << "thinking " << thinking;
    if (thinking) {
      EXPECT_FALSE(split.thinking.empty()) << "the open think block holds the first tokens";
    }
    for (const Event& e : split.events) {
      if (const auto* t = e.get_if<event::TokenText>()) {
        EXPECT_TRUE(t->text.empty() || t->thinking.empty());
      }
    }
  }
}

TEST(Engine, StopReasonNames) {
  EXPECT_EQ(stop_reason_name(StopReason::EndOfGeneration), "eos");
  EXPECT_EQ(stop_reason_name(StopReason::MaxTokens), "max_tokens");
  EXPECT_EQ(stop_reason_name(StopReason::StopString), "stop_string");
  EXPECT_EQ(stop_reason_name(StopReason::Cancelled), "cancelled");
  EXPECT_EQ(stop_reason_name(StopReason::ContextFull), "context_full");
  for (StopReason r : {StopReason::EndOfGeneration, StopReason::MaxTokens, StopReason::StopString,
                       StopReason::Cancelled, StopReason::ContextFull})
    EXPECT_EQ(parse_stop_reason(stop_reason_name(r)), r);
  EXPECT_EQ(parse_stop_reason("finished"), std::nullopt);
}

}  // namespace
}  // namespace peregrine
