// Export of a conversation to Markdown (branch on screen) and JSON (everything).
#include <gtest/gtest.h>

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include "core/conversation_export.h"
#include "storage_test_util.h"

namespace peregrine::app::test {
namespace {

class ExportTest : public StorageTest {
 protected:
  void SetUp() override {
    StorageTest::SetUp();
    store_ = std::make_unique<ConversationStore>(dbPath(), testOptions());
    c_ = store_->createConversation(
        {}, QJsonObject{{QStringLiteral("system_prompt"), QStringLiteral("You are terse.")}});
    u_ = store_->appendUserMessage(c_, kNoMessage, QStringLiteral("Sort a list in Python?"));
    old_ = store_->beginAssistantMessage(c_, u_, QStringLiteral("m"));
    store_->appendStreamText(old_, QStringLiteral("OLD BRANCH TEXT"));
    store_->finishAssistantMessage(old_, {});
    a_ = store_->beginAssistantMessage(c_, u_, QStringLiteral("qwen3.6-27b"),
                                       QJsonObject{{QStringLiteral("temperature"), 0.6}});
    store_->appendStreamText(a_, QStringLiteral("User wants sorting."), StreamPart::Thinking);
    store_->appendStreamText(a_, QStringLiteral("Use `sorted(xs)`:\n\n```python\nsorted([3, 1])\n```"));
    peregrine::GenerationStats stats;
    stats.stop_reason = peregrine::StopReason::EndOfGeneration;
    stats.prompt_tokens = 20;
    stats.generated_tokens = 12;
    stats.decode_tok_s = 33.3;
    stats.mtp.active = true;
    stats.mtp.acceptance_rate = 0.75;
    store_->finishAssistantMessage(a_, stats);
    follow_ = store_->appendUserMessage(c_, a_, QStringLiteral("And reversed?"));
    cut_ = store_->beginAssistantMessage(c_, follow_, QStringLiteral("qwen3.6-27b"));
    store_->appendStreamText(cut_, QStringLiteral("Pass reverse="));
    store_->finishAssistantMessage(cut_, {}, MessageState::Interrupted);
  }
  std::unique_ptr<ConversationStore> store_;
  qint64 c_ = 0, u_ = 0, old_ = 0, a_ = 0, follow_ = 0, cut_ = 0;
};

TEST_F(ExportTest, MarkdownHasTheBranchOnScreen) {
  const QString md = exportMarkdown(*store_, c_);
  EXPECT_TRUE(md.startsWith(QStringLiteral("# Sort a list in Python?\n"))) << md.toStdString();
  EXPECT_TRUE(md.contains(QStringLiteral("## System prompt\n\nYou are terse.")));
  EXPECT_TRUE(md.contains(QStringLiteral("## User\n\nSort a list in Python?\n")));
  EXPECT_TRUE(md.contains(QStringLiteral(
      "<details>\n<summary>Thinking</summary>\n\nUser wants sorting.\n\n</details>")));
  EXPECT_TRUE(md.contains(QStringLiteral("```python\nsorted([3, 1])\n```")));
  EXPECT_TRUE(md.contains(QStringLiteral(
      "qwen3.6-27b · 20 prompt tokens · 12 tokens generated · 33.3 tok/s · MTP acceptance 75%")))
      << md.toStdString();
  EXPECT_TRUE(md.contains(QStringLiteral("Pass reverse=\n\n*(answer interrupted)*")));
  EXPECT_FALSE(md.contains(QStringLiteral("OLD BRANCH TEXT")));
  // Order follows the conversation.
  EXPECT_LT(md.indexOf(QStringLiteral("Sort a list")), md.indexOf(QStringLiteral("sorted(xs)")));
  EXPECT_LT(md.indexOf(QStringLiteral("sorted(xs)")), md.indexOf(QStringLiteral("And reversed?")));
}

TEST_F(ExportTest, JsonHasEveryBranchAndTheCurrentPath) {
  const QJsonDocument doc = QJsonDocument::fromJson(exportJson(*store_, c_));
  ASSERT_TRUE(doc.isObject());
  const QJsonObject root = doc.object();
  EXPECT_EQ(root[QStringLiteral("format")].toString(), QStringLiteral("peregrine.conversation"));
  EXPECT_EQ(root[QStringLiteral("version")].toInt(), 2);
  const QJsonObject conversation = root[QStringLiteral("conversation")].toObject();
  EXPECT_EQ(conversation[QStringLiteral("title")].toString(), QStringLiteral("Sort a list in Python?"));
  EXPECT_EQ(conversation[QStringLiteral("settings")].toObject()[QStringLiteral("system_prompt")].toString(),
            QStringLiteral("You are terse."));

  const QJsonArray messages = root[QStringLiteral("messages")].toArray();
  ASSERT_EQ(messages.size(), 5);
  const QJsonObject first = messages[0].toObject();
  EXPECT_TRUE(first[QStringLiteral("parent_id")].isNull());
  EXPECT_EQ(first[QStringLiteral("role")].toString(), QStringLiteral("user"));
  EXPECT_TRUE(first[QStringLiteral("stats")].isNull());
  const QJsonObject oldBranch = messages[1].toObject();
  EXPECT_EQ(oldBranch[QStringLiteral("content")].toString(), QStringLiteral("OLD BRANCH TEXT"));
  EXPECT_EQ(static_cast<qint64>(oldBranch[QStringLiteral("parent_id")].toDouble()), u_);
  const QJsonObject answer = messages[2].toObject();
  EXPECT_EQ(answer[QStringLiteral("thinking")].toString(), QStringLiteral("User wants sorting."));
  EXPECT_EQ(answer[QStringLiteral("model")].toString(), QStringLiteral("qwen3.6-27b"));
  EXPECT_DOUBLE_EQ(answer[QStringLiteral("sampling")].toObject()[QStringLiteral("temperature")].toDouble(), 0.6);
  // The statistics object is the engine's, every field (what generation_stats_to_json writes).
  const QJsonObject stats = answer[QStringLiteral("stats")].toObject();
  EXPECT_EQ(stats[QStringLiteral("generated_tokens")].toInt(), 12);
  EXPECT_DOUBLE_EQ(stats[QStringLiteral("mtp")].toObject()[QStringLiteral("acceptance_rate")].toDouble(), 0.75);
  const std::optional<Message> stored = store_->message(a_);
  ASSERT_TRUE(stored && stored->stats);
  EXPECT_EQ(QJsonDocument(stats).toJson(QJsonDocument::Compact).toStdString(),
            QJsonDocument::fromJson(QByteArray::fromStdString(peregrine::generation_stats_to_json(*stored->stats)))
                .toJson(QJsonDocument::Compact)
                .toStdString());
  EXPECT_EQ(messages[4].toObject()[QStringLiteral("state")].toString(), QStringLiteral("interrupted"));

  QList<qint64> path;
  for (const QJsonValue& v : root[QStringLiteral("current_path")].toArray()) path << static_cast<qint64>(v.toDouble());
  EXPECT_EQ(path, (QList<qint64>{u_, a_, follow_, cut_}));
}

TEST_F(ExportTest, UnknownConversationIsAnError) {
  EXPECT_THROW(exportMarkdown(*store_, c_ + 99), peregrine::Error);
  EXPECT_THROW(exportJson(*store_, c_ + 99), peregrine::Error);
}

}  // namespace
}  // namespace peregrine::app::test
