// ThinkSplitter: <think> / </think> cut anywhere across pieces; which templates open the block.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "decode/answer_text.h"
#include "decode/loaded_model.h"
#include "decode/think_splitter.h"
#include "test_engine_util.h"
#include "peregrine/chat_template.h"

namespace peregrine {
namespace {

struct Split {
  std::string thinking;
  std::string answer;
  std::vector<TextPart> runs;  // the part of each sink call, in order
};

ThinkSplitter::Sink into(Split& out) {
  return [&out](TextPart part, std::string_view text) {
    (part == TextPart::Thinking ? out.thinking : out.answer) += text;
    out.runs.push_back(part);
  };
}

Split feed_all(ThinkSplitter& s, const std::vector<std::string>& pieces) {
  Split all;
  for (const auto& p : pieces) s.feed(p, into(all));
  s.finish(into(all));
  return all;
}

TEST(ThinkSplitter, TextWithoutTagsIsAllAnswer) {
  ThinkSplitter s(ThinkSplit::StartsInAnswer);
  const Split out = feed_all(s, {"Hello", " <b>world</b>", " 1 < 2"});
  EXPECT_EQ(out.answer, "Hello <b>world</b> 1 < 2");
  EXPECT_TRUE(out.thinking.empty());
}

TEST(ThinkSplitter, OffPassesTagsThroughAsAnswer) {
  ThinkSplitter s(ThinkSplit::Off);
  const Split out = feed_all(s, {"<think>x</th", "ink>y"});
  EXPECT_EQ(out.answer, "<think>x</think>y");
  EXPECT_TRUE(out.thinking.empty());
}

TEST(ThinkSplitter, SplitsAtTagsCutAcrossEveryBoundary) {
  const std::string text = "<think>\nLet me see.\n</think>\n\nParis.";
  for (size_t cut1 = 0; cut1 <= text.size(); ++cut1) {
    for (size_t cut2 = cut1; cut2 <= text.size(); ++cut2) {
      ThinkSplitter s(ThinkSplit::StartsInAnswer);
      const Split out = feed_all(s, {text.substr(0, cut1), text.substr(cut1, cut2 - cut1), text.substr(cut2)});
      ASSERT_EQ(out.thinking, "Let me see.\n") << cut1 << "," << cut2;
      ASSERT_EQ(out.answer, "Paris.") << cut1 << "," << cut2;
      ASSERT_FALSE(s.in_thinking());
    }
  }
}

TEST(ThinkSplitter, StartsInsideTheThinkBlockWhenThePromptOpenedIt) {
  ThinkSplitter s(ThinkSplit::StartsInThinking);
  EXPECT_TRUE(s.in_thinking());
  Split first;
  s.feed("\nhmm </thi", into(first));
  EXPECT_EQ(first.thinking, "hmm ");  // "</thi" is held back: it may become the tag
  EXPECT_TRUE(first.answer.empty());
  Split second;
  s.feed("nk>\n\nAnswer", into(second));
  EXPECT_TRUE(second.thinking.empty());
  EXPECT_EQ(second.answer, "Answer");
  EXPECT_FALSE(s.in_thinking());
}

TEST(ThinkSplitter, OnePieceCrossingTheTagGivesTwoRunsInOrder) {
  ThinkSplitter s(ThinkSplit::StartsInThinking);
  Split out;
  s.feed("a</think>b", into(out));
  EXPECT_EQ(out.runs, (std::vector<TextPart>{TextPart::Thinking, TextPart::Answer}));
}

TEST(ThinkSplitter, ReleasesAHeldBackTailAtTheEnd) {
  ThinkSplitter s(ThinkSplit::StartsInAnswer);
  Split first;
  s.feed("a <thin", into(first));
  EXPECT_EQ(first.answer, "a ");
  Split rest;
  s.finish(into(rest));
  EXPECT_EQ(rest.answer, "<thin");
}

TEST(ThinkSplitter, KeepsMultiByteTextIntact) {
  ThinkSplitter s(ThinkSplit::StartsInThinking);
  const Split out = feed_all(s, {"Ré", "flexion</think>Réponse: 東京"});
  EXPECT_EQ(out.thinking, "Réflexion");
  EXPECT_EQ(out.answer, "Réponse: 東京");
}

TEST(ThinkSplitter, KnowsWhichTemplatesOpenTheThinkBlock) {
  ChatOptions thinking;
  thinking.enable_thinking = true;
  ChatOptions plain;
  plain.enable_thinking = false;
  EXPECT_TRUE(ChatTemplate::create(ChatFormat::Qwen36)->generation_opens_thinking(thinking));
  EXPECT_FALSE(ChatTemplate::create(ChatFormat::Qwen36)->generation_opens_thinking(plain));  // empty block, closed
  EXPECT_FALSE(ChatTemplate::create(ChatFormat::Qwen3)->generation_opens_thinking(thinking));  // bare header
}

// The whole text path of a generation: ids → text → stop strings → think split → TokenText.
TEST(AnswerText, SplitsThinkingFromTheAnswerWithEveryIdAccountedFor) {
  auto m = LoadedModel::load(test::tiny_model_path(), ModelOptions{});
  const Tokenizer& tokenizer = m->tokenizer();
  const std::vector<int32_t> ids = tokenizer.encode("\nweigh it</think>\n\nParis. STOP here");
  std::vector<event::TokenText> events;
  AnswerText text(tokenizer, {"STOP"}, ThinkSplit::StartsInThinking,
                  [&](event::TokenText&& t) { events.push_back(std::move(t)); });
  bool stopped = false;
  size_t pushed = 0;
  for (int32_t id : ids) {
    ++pushed;
    if ((stopped = text.push(id))) break;
  }
  EXPECT_TRUE(stopped);
  EXPECT_FALSE(text.finish());
  std::string thinking, answer;
  std::vector<int32_t> seen;
  bool answer_started = false;
  for (const event::TokenText& t : events) {
    EXPECT_TRUE(t.text.empty() || t.thinking.empty()) << "one part per event";
    EXPECT_FALSE(answer_started && !t.thinking.empty()) << "thinking after the answer began";
    answer_started |= !t.text.empty();
    thinking += t.thinking;
    answer += t.text;
    seen.insert(seen.end(), t.ids.begin(), t.ids.end());
  }
  EXPECT_EQ(thinking, "weigh it");
  EXPECT_EQ(answer, "Paris. ");
  EXPECT_EQ(seen, std::vector<int32_t>(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(pushed)));
}

TEST(AnswerText, WithoutSplitTheTagsStayInTheText) {
  auto m = LoadedModel::load(test::tiny_model_path(), ModelOptions{});
  const std::string raw = "<think>a</think>b";
  std::string answer, thinking;
  AnswerText text(m->tokenizer(), {}, ThinkSplit::Off, [&](event::TokenText&& t) {
    answer += t.text;
    thinking += t.thinking;
  });
  for (int32_t id : m->tokenizer().encode(raw)) text.push(id);
  text.finish();
  EXPECT_EQ(answer, raw);
  EXPECT_TRUE(thinking.empty());
}

}  // namespace
}  // namespace peregrine
