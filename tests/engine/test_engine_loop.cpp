// The generation loop on the calling thread, on tests/data/qwen35-tiny/tiny-f32.gguf.
#include <gtest/gtest.h>

#include <fstream>

#include "decode/generation_loop.h"
#include "decode/loaded_model.h"
#include "peregrine/error.h"
#include "test_engine_util.h"

namespace peregrine {
namespace {

struct Collected {
  std::vector<int32_t> ids;
  std::string text;
  std::vector<event::StepStats> stats;
};

GenerationCallbacks collect(Collected& c) {
  GenerationCallbacks cb;
  cb.on_text = [&c](event::TokenText&& t) {
    c.ids.insert(c.ids.end(), t.ids.begin(), t.ids.end());
    c.text += t.text;
  };
  cb.on_stats = [&c](const event::StepStats& s) { c.stats.push_back(s); };
  return cb;
}

ModelOptions small_context(int64_t n_ctx) {
  ModelOptions o;
  o.context_length = n_ctx;
  return o;
}

TEST(GenerationLoop, GreedyMatchesLlamaCpp) {
  const auto ref = test::tiny_greedy();
  auto m = LoadedModel::load(test::tiny_model_path(), small_context(256));
  request::Generate req;
  req.max_tokens = 32;
  req.stats_interval = std::chrono::milliseconds(0);
  Collected c;
  GenerationLoop loop(m->model(), m->sequence(), m->history(), m->tokenizer());
  const GenerationStats done = loop.run(ref.prompt, req, collect(c));
  EXPECT_EQ(c.ids, ref.generated);
  EXPECT_EQ(done.stop_reason, StopReason::MaxTokens);
  EXPECT_EQ(done.generated_tokens, 32);
  EXPECT_EQ(done.prompt_tokens, 16);
  EXPECT_EQ(c.text, m->tokenizer().decode(ref.generated));
  ASSERT_EQ(c.stats.size(), 31u);  // one per forward step after the first id
  EXPECT_EQ(c.stats.back().stats.generated_tokens, 31);
  EXPECT_EQ(c.stats.back().stats.n_past, 16 + 31);
  EXPECT_GT(done.decode_tok_s, 0.0);
  EXPECT_GT(done.prefill_tok_s, 0.0);
  EXPECT_GE(done.ttft_ms, done.prefill_ms);
}

TEST(GenerationLoop, GreedyMatchesLlamaCppOnEveryFloatFixture) {
  // tiny-quant: the engine keeps activations in float, so its target is the float64 run with
  // exactly dequantized weights (README: "The quantized model").
  for (const char* name : {"tiny-mtp-f32", "tiny256-f32", "tiny-moe-f32", "tiny-quant"}) {
    const std::string dir = std::string(PEREGRINE_TEST_DATA_DIR) + "/qwen35-tiny/";
    std::ifstream in(dir + name + ".json");
    const nlohmann::json j = nlohmann::json::parse(in);
    auto m = LoadedModel::load(dir + name + ".gguf", small_context(64));
    request::Generate req;
    req.max_tokens = 32;
    req.ignore_eos = true;  // llama.cpp's run did not stop at end-of-generation ids
    Collected c;
    GenerationLoop loop(m->model(), m->sequence(), m->history(), m->tokenizer());
    loop.run(j.at("greedy").at("prompt").get<std::vector<int32_t>>(), req, collect(c));
    const nlohmann::json& greedy = std::string(name) == "tiny-quant"
                                       ? j.at("independent_numpy_crosscheck").at("float_activations").at("greedy")
                                       : j.at("greedy");
    EXPECT_EQ(c.ids, greedy.at("generated").get<std::vector<int32_t>>()) << name;
  }
}

TEST(GenerationLoop, ExtendingPromptReusesTheSequence) {
  const auto ref = test::tiny_greedy();
  auto m = LoadedModel::load(test::tiny_model_path(), small_context(256));
  GenerationLoop loop(m->model(), m->sequence(), m->history(), m->tokenizer());
  request::Generate req;
  req.max_tokens = 10;
  Collected first;
  loop.run(ref.prompt, req, collect(first));
  ASSERT_EQ(first.ids, std::vector<int32_t>(ref.generated.begin(), ref.generated.begin() + 10));

  // The prompt now holds the ten generated ids: 16 + 9 were evaluated, only the 10th is new.
  std::vector<int32_t> prompt = ref.prompt;
  prompt.insert(prompt.end(), first.ids.begin(), first.ids.end());
  req.max_tokens = 22;
  Collected second;
  const GenerationStats done = loop.run(prompt, req, collect(second));
  EXPECT_EQ(done.reused_prompt_tokens, 25);
  EXPECT_EQ(second.ids, std::vector<int32_t>(ref.generated.begin() + 10, ref.generated.end()));

  // A prompt that does not extend the history starts over and gives the same ids again.
  req.max_tokens = 32;
  Collected again;
  const GenerationStats fresh = loop.run(ref.prompt, req, collect(again));
  EXPECT_EQ(fresh.reused_prompt_tokens, 0);
  EXPECT_EQ(again.ids, ref.generated);
}

TEST(GenerationLoop, ContextFullAndBadPrompts) {
  const auto ref = test::tiny_greedy();
  auto m = LoadedModel::load(test::tiny_model_path(), small_context(20));
  GenerationLoop loop(m->model(), m->sequence(), m->history(), m->tokenizer());
  request::Generate req;
  req.max_tokens = 100;
  Collected c;
  const GenerationStats done = loop.run(ref.prompt, req, collect(c));
  EXPECT_EQ(done.stop_reason, StopReason::ContextFull);
  EXPECT_EQ(done.generated_tokens, 5);  // positions 16..19 evaluated, the 5th id has no room
  EXPECT_EQ(c.ids, std::vector<int32_t>(ref.generated.begin(), ref.generated.begin() + 5));

  EXPECT_THROW(loop.run(std::vector<int32_t>(20, 1), req, {}), Error);   // no room to generate
  EXPECT_THROW(loop.run(std::vector<int32_t>{1, 512}, req, {}), Error);  // id outside the vocabulary
  EXPECT_THROW(loop.run(std::vector<int32_t>{}, req, {}), Error);
  EXPECT_TRUE(m->history().empty());
}

TEST(GenerationLoop, EndOfGenerationStopsWithoutText) {
  // Greedy decoding of this random model never reaches <|im_end|> / <|endoftext|>; hot sampling
  // does within a few hundred ids (2 of 512 ids end a generation). Take the first seed that does.
  const auto ref = test::tiny_greedy();
  auto m = LoadedModel::load(test::tiny_model_path(), small_context(1024));
  GenerationLoop loop(m->model(), m->sequence(), m->history(), m->tokenizer());
  request::Generate req;
  req.max_tokens = 600;
  req.sampling.temperature = 1.5f;
  Collected c;
  GenerationStats done;
  for (uint64_t seed = 1; seed <= 50 && done.stop_reason != StopReason::EndOfGeneration; ++seed) {
    req.sampling.seed = seed;
    c = {};
    done = loop.run(ref.prompt, req, collect(c));
  }
  ASSERT_EQ(done.stop_reason, StopReason::EndOfGeneration);
  EXPECT_EQ(static_cast<int64_t>(c.ids.size()) + 1, done.generated_tokens);  // the end id is not text
  for (int32_t id : c.ids) EXPECT_FALSE(m->tokenizer().is_end_of_generation(id));

  // The same seed with ignore_eos: the same ids up to there, then it goes on to max_tokens.
  req.ignore_eos = true;
  Collected all;
  const GenerationStats full = loop.run(ref.prompt, req, collect(all));
  EXPECT_EQ(full.stop_reason, StopReason::MaxTokens);
  EXPECT_EQ(full.generated_tokens, 600);
  ASSERT_GT(all.ids.size(), c.ids.size());
  EXPECT_EQ(std::vector<int32_t>(all.ids.begin(), all.ids.begin() + c.ids.size()), c.ids);
  EXPECT_TRUE(m->tokenizer().is_end_of_generation(all.ids[c.ids.size()]));
}

TEST(GenerationLoop, ChatPromptRendersLikeTheFixturePrompt) {
  const auto ref = test::tiny_greedy();
  auto m = LoadedModel::load(test::tiny_model_path(), small_context(256));
  ChatPrompt chat;
  chat.messages.push_back(ChatMessage{"user", "What is the capital of France?", std::nullopt, {}, {}, {}});
  chat.format = ChatFormat::Qwen3;  // Qwen3's generation prompt with thinking on is the bare assistant header
  EXPECT_EQ(m->prompt_ids(Prompt{chat}), ref.prompt);
  EXPECT_EQ(m->prompt_ids(Prompt{ref.prompt}), ref.prompt);
  EXPECT_EQ(m->prompt_ids(Prompt{std::string("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
                                             "<|im_start|>assistant\n")}),
            ref.prompt);
}

}  // namespace
}  // namespace peregrine
