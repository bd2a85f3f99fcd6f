// ThinkSplitter: <think> / </think> cut anywhere across pieces.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bridge/think_splitter.h"

namespace peregrine::app {
namespace {

SplitText feedAll(ThinkSplitter& s, const std::vector<std::string>& pieces) {
  SplitText all;
  for (const auto& p : pieces) {
    const SplitText part = s.feed(p);
    all.thinking += part.thinking;
    all.answer += part.answer;
  }
  const SplitText rest = s.finish();
  all.thinking += rest.thinking;
  all.answer += rest.answer;
  return all;
}

TEST(ThinkSplitter, TextWithoutTagsIsAllAnswer) {
  ThinkSplitter s;
  const SplitText out = feedAll(s, {"Hello", " <b>world</b>", " 1 < 2"});
  EXPECT_EQ(out.answer, "Hello <b>world</b> 1 < 2");
  EXPECT_TRUE(out.thinking.isEmpty());
  EXPECT_FALSE(s.thinkingClosed());
}

TEST(ThinkSplitter, SplitsAtTagsCutAcrossEveryBoundary) {
  const std::string text = "<think>\nLet me see.\n</think>\n\nParis.";
  for (size_t cut1 = 0; cut1 <= text.size(); ++cut1) {
    for (size_t cut2 = cut1; cut2 <= text.size(); ++cut2) {
      ThinkSplitter s;
      const SplitText out =
          feedAll(s, {text.substr(0, cut1), text.substr(cut1, cut2 - cut1), text.substr(cut2)});
      ASSERT_EQ(out.thinking, "Let me see.\n") << cut1 << "," << cut2;
      ASSERT_EQ(out.answer, "Paris.") << cut1 << "," << cut2;
      ASSERT_TRUE(s.thinkingClosed());
    }
  }
}

TEST(ThinkSplitter, StartsInsideTheThinkBlockWhenThePromptOpenedIt) {
  ThinkSplitter s(true);
  EXPECT_TRUE(s.inThinking());
  SplitText first = s.feed("\nhmm </thi");
  EXPECT_EQ(first.thinking, "hmm ");  // "</thi" is held back: it may become the tag
  EXPECT_TRUE(first.answer.isEmpty());
  SplitText second = s.feed("nk>\n\nAnswer");
  EXPECT_TRUE(second.thinking.isEmpty());
  EXPECT_EQ(second.answer, "Answer");
  EXPECT_FALSE(s.inThinking());
}

TEST(ThinkSplitter, ReleasesAHeldBackTailAtTheEnd) {
  ThinkSplitter s;
  EXPECT_EQ(s.feed("a <thin").answer, "a ");
  EXPECT_EQ(s.finish().answer, "<thin");
}

TEST(ThinkSplitter, KeepsMultiByteTextIntact) {
  ThinkSplitter s(true);
  const SplitText out = feedAll(s, {"Ré", "flexion</think>Réponse: 東京"});
  EXPECT_EQ(out.thinking, QString::fromUtf8("Réflexion"));
  EXPECT_EQ(out.answer, QString::fromUtf8("Réponse: 東京"));
}

TEST(ThinkSplitter, KnowsWhichTemplatesOpenTheThinkBlock) {
  peregrine::ChatOptions thinking;
  thinking.enable_thinking = true;
  peregrine::ChatOptions plain;
  plain.enable_thinking = false;
  EXPECT_TRUE(generationStartsInThinking(peregrine::ChatFormat::Qwen36, thinking));
  EXPECT_FALSE(generationStartsInThinking(peregrine::ChatFormat::Qwen36, plain));  // empty block, closed
  EXPECT_FALSE(generationStartsInThinking(peregrine::ChatFormat::Qwen3, thinking));  // bare header
}

}  // namespace
}  // namespace peregrine::app
