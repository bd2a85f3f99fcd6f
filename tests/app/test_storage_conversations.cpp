// Conversations: create, rename, settings, activity order, titles, delete + undo, search.
#include <gtest/gtest.h>

#include <QJsonObject>

#include "core/conversation_store.h"
#include "core/title.h"
#include "storage_test_util.h"

namespace peregrine::app::test {
namespace {

QList<qint64> idsOf(const QList<Conversation>& conversations) {
  QList<qint64> ids;
  for (const Conversation& c : conversations) ids << c.id;
  return ids;
}

QList<qint64> idsOf(const QList<SearchHit>& hits) {
  QList<qint64> ids;
  for (const SearchHit& h : hits) ids << h.conversation.id;
  return ids;
}

class ConversationsTest : public StorageTest {
 protected:
  void SetUp() override {
    StorageTest::SetUp();
    store_ = std::make_unique<ConversationStore>(dbPath(), testOptions());
  }
  std::unique_ptr<ConversationStore> store_;
};

TEST_F(ConversationsTest, CreateAndReadBack) {
  const QJsonObject settings{{QStringLiteral("temperature"), 0.6},
                             {QStringLiteral("system_prompt"), QStringLiteral("Be brief.")}};
  const qint64 id = store_->createConversation(QStringLiteral("Plans"), settings);
  const auto c = store_->conversation(id);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->title, QStringLiteral("Plans"));
  EXPECT_FALSE(c->titleIsAuto);
  EXPECT_EQ(c->settings, settings);
  EXPECT_EQ(c->currentLeafId, kNoMessage);
  EXPECT_FALSE(c->deleted);
  EXPECT_EQ(c->createdMs, c->updatedMs);
  EXPECT_FALSE(store_->conversation(id + 100).has_value());
}

TEST_F(ConversationsTest, ListIsSortedByLastActivity) {
  const qint64 a = store_->createConversation(QStringLiteral("a"));
  const qint64 b = store_->createConversation(QStringLiteral("b"));
  const qint64 c = store_->createConversation(QStringLiteral("c"));
  EXPECT_EQ(idsOf(store_->listConversations()), (QList<qint64>{c, b, a}));
  store_->appendUserMessage(a, kNoMessage, QStringLiteral("back to a"));
  EXPECT_EQ(idsOf(store_->listConversations()), (QList<qint64>{a, c, b}));
  const qint64 answer = store_->beginAssistantMessage(b, kNoMessage, QStringLiteral("m"));
  EXPECT_EQ(idsOf(store_->listConversations()), (QList<qint64>{b, a, c}));
  store_->appendUserMessage(c, kNoMessage, QStringLiteral("now c"));
  store_->finishAssistantMessage(answer, {});
  EXPECT_EQ(idsOf(store_->listConversations()), (QList<qint64>{b, c, a}));
}

TEST_F(ConversationsTest, FirstUserMessageNamesAnUntitledConversation) {
  const qint64 id = store_->createConversation();
  EXPECT_TRUE(store_->conversation(id)->titleIsAuto);
  const qint64 first = store_->appendUserMessage(
      id, kNoMessage, QStringLiteral("\n## How do I   sort a list in Python?\nWith a key."));
  EXPECT_EQ(store_->conversation(id)->title, QStringLiteral("How do I sort a list in Python?"));
  // Later messages do not rename it.
  const qint64 answer = store_->beginAssistantMessage(id, first, QStringLiteral("m"));
  store_->finishAssistantMessage(answer, {});
  store_->appendUserMessage(id, answer, QStringLiteral("And in C++?"));
  EXPECT_EQ(store_->conversation(id)->title, QStringLiteral("How do I sort a list in Python?"));
  // Editing the first message (a new root branch) renames it while the title is automatic.
  store_->appendUserMessage(id, kNoMessage, QStringLiteral("How do I sort a vector in C++?"));
  EXPECT_EQ(store_->conversation(id)->title, QStringLiteral("How do I sort a vector in C++?"));
}

TEST_F(ConversationsTest, RenameSticksAgainstAutomaticTitles) {
  const qint64 id = store_->createConversation();
  store_->renameConversation(id, QStringLiteral("  My title  "));
  store_->appendUserMessage(id, kNoMessage, QStringLiteral("Something else entirely"));
  const auto c = store_->conversation(id);
  EXPECT_EQ(c->title, QStringLiteral("My title"));
  EXPECT_FALSE(c->titleIsAuto);
  EXPECT_THROW(store_->renameConversation(id + 50, QStringLiteral("x")), peregrine::Error);
}

TEST(TitleFromMessage, ShapesTheFirstLine) {
  EXPECT_EQ(titleFromMessage(QStringLiteral("- **Explain** `std::move`")),
            QStringLiteral("Explain std::move"));
  EXPECT_EQ(titleFromMessage(QStringLiteral("   \n\n")), QStringLiteral("New chat"));
  EXPECT_EQ(titleFromMessage(QStringLiteral("```cpp\nint main() {}\n```\nWhy does this compile?")),
            QStringLiteral("Why does this compile?"));
  EXPECT_EQ(titleFromMessage(QStringLiteral("```\nint x = 1;\n```")), QStringLiteral("int x = 1;"));
  const QString longLine = QStringLiteral(
      "Please write a detailed comparison of the memory models of C++, Rust and Java, with examples");
  const QString title = titleFromMessage(longLine, 40);
  EXPECT_LE(title.size(), 40);
  EXPECT_TRUE(title.endsWith(QChar(0x2026)));
  EXPECT_TRUE(longLine.startsWith(title.chopped(1)));
  EXPECT_FALSE(title.chopped(1).endsWith(QLatin1Char(' ')));
  EXPECT_EQ(titleFromMessage(QString(100, QLatin1Char('x')), 20).size(), 20);
}

TEST_F(ConversationsTest, PerChatSettingsAndAppSettings) {
  const qint64 id = store_->createConversation();
  const QJsonObject coding{{QStringLiteral("preset"), QStringLiteral("Coding")},
                           {QStringLiteral("top_k"), 20},
                           {QStringLiteral("thinking"), true}};
  store_->setConversationSettings(id, coding);
  EXPECT_EQ(store_->conversation(id)->settings, coding);

  EXPECT_EQ(store_->setting(QStringLiteral("last_chat"), QStringLiteral("none")),
            QStringLiteral("none"));
  store_->setSetting(QStringLiteral("last_chat"), QStringLiteral("7"));
  store_->setSetting(QStringLiteral("last_chat"), QStringLiteral("8"));
  EXPECT_EQ(store_->setting(QStringLiteral("last_chat")), QStringLiteral("8"));
  store_->removeSetting(QStringLiteral("last_chat"));
  EXPECT_EQ(store_->setting(QStringLiteral("last_chat")), QString());
}

TEST_F(ConversationsTest, EverythingSurvivesReopening) {
  const qint64 id = store_->createConversation(QStringLiteral("kept"));
  const qint64 u = store_->appendUserMessage(id, kNoMessage, QStringLiteral("question"));
  store_->setSetting(QStringLiteral("k"), QStringLiteral("v"));
  store_.reset();
  store_ = std::make_unique<ConversationStore>(dbPath(), testOptions());
  EXPECT_EQ(store_->openReport().outcome, OpenOutcome::Opened);
  EXPECT_EQ(store_->conversation(id)->title, QStringLiteral("kept"));
  EXPECT_EQ(store_->conversation(id)->currentLeafId, u);
  EXPECT_EQ(store_->message(u)->content, QStringLiteral("question"));
  EXPECT_EQ(store_->setting(QStringLiteral("k")), QStringLiteral("v"));
}

TEST_F(ConversationsTest, DeleteHidesAndUndoRestores) {
  const qint64 a = store_->createConversation(QStringLiteral("alpha"));
  const qint64 b = store_->createConversation(QStringLiteral("beta"));
  const qint64 msg = store_->appendUserMessage(b, kNoMessage, QStringLiteral("beta question"));
  const qint64 c = store_->createConversation(QStringLiteral("gamma"));
  EXPECT_EQ(idsOf(store_->listConversations()), (QList<qint64>{c, b, a}));

  store_->deleteConversation(b);
  EXPECT_EQ(idsOf(store_->listConversations()), (QList<qint64>{c, a}));
  EXPECT_TRUE(store_->search(QStringLiteral("beta")).isEmpty());
  EXPECT_TRUE(store_->conversation(b)->deleted);
  EXPECT_EQ(store_->message(msg)->content, QStringLiteral("beta question"));

  store_->restoreConversation(b);  // undo: back in its place, messages intact
  EXPECT_EQ(idsOf(store_->listConversations()), (QList<qint64>{c, b, a}));
  EXPECT_EQ(idsOf(store_->search(QStringLiteral("beta question"))), (QList<qint64>{b}));
}

TEST_F(StorageTest, PurgeRemovesOnlyConversationsDeletedBeforeTheCutoff) {
  auto clock = std::make_shared<qint64>(1'000);
  StoreOptions options;
  options.clockMs = [clock] { return (*clock)++; };
  ConversationStore store(dbPath(), options);
  const qint64 old = store.createConversation(QStringLiteral("old"));
  const qint64 oldMessage = store.appendUserMessage(old, kNoMessage, QStringLiteral("x"));
  const qint64 recent = store.createConversation(QStringLiteral("recent"));
  const qint64 alive = store.createConversation(QStringLiteral("alive"));
  store.deleteConversation(old);  // at about t = 1000
  *clock = 5'000;
  store.deleteConversation(recent);  // at t = 5000

  EXPECT_EQ(store.purgeDeletedBefore(3'000), 1);
  EXPECT_FALSE(store.conversation(old).has_value());
  EXPECT_FALSE(store.message(oldMessage).has_value());
  EXPECT_THROW(store.restoreConversation(old), peregrine::Error);
  ASSERT_TRUE(store.conversation(recent).has_value());
  EXPECT_TRUE(store.conversation(recent)->deleted);

  EXPECT_EQ(store.purgeDeletedBefore(10'000), 1);
  EXPECT_FALSE(store.conversation(recent).has_value());
  EXPECT_TRUE(store.conversation(alive).has_value());
  EXPECT_EQ(store.purgeDeletedBefore(10'000), 0);
}

TEST_F(ConversationsTest, SearchFindsTitlesAndContentCaseInsensitively) {
  const qint64 python = store_->createConversation(QStringLiteral("Python sorting"));
  const qint64 german = store_->createConversation();
  const qint64 germanMessage = store_->appendUserMessage(
      german, kNoMessage, QStringLiteral("Warum gibt es ÄRGER mit Umlauten?"));
  const qint64 cpp = store_->createConversation(QStringLiteral("C++"));
  const qint64 u = store_->appendUserMessage(cpp, kNoMessage, QStringLiteral("How to sort?"));
  const qint64 answer = store_->beginAssistantMessage(cpp, u, QStringLiteral("m"));
  store_->appendStreamText(answer, QStringLiteral("Use std::sort with a 100% stable comparator."));
  store_->finishAssistantMessage(answer, {});

  const auto sortHits = store_->search(QStringLiteral("SORT"));
  EXPECT_EQ(idsOf(sortHits), (QList<qint64>{cpp, python}));  // most recent activity first
  EXPECT_TRUE(sortHits[1].titleMatches);
  EXPECT_EQ(sortHits[0].messageId, u);
  EXPECT_TRUE(sortHits[0].snippet.contains(QStringLiteral("sort")));

  const auto umlaut = store_->search(QStringLiteral("ärger"));  // non-ASCII case folding
  ASSERT_EQ(idsOf(umlaut), (QList<qint64>{german}));
  EXPECT_TRUE(umlaut[0].titleMatches);  // the title came from that message
  EXPECT_EQ(umlaut[0].messageId, germanMessage);
  EXPECT_TRUE(umlaut[0].snippet.contains(QStringLiteral("ÄRGER")));

  const auto inAnswer = store_->search(QStringLiteral("std::sort"));
  ASSERT_EQ(inAnswer.size(), 1);
  EXPECT_EQ(inAnswer[0].messageId, answer);
  // LIKE wildcards are plain characters here.
  EXPECT_EQ(idsOf(store_->search(QStringLiteral("100%"))), (QList<qint64>{cpp}));
  EXPECT_TRUE(store_->search(QStringLiteral("%")).size() == 1);
  EXPECT_TRUE(store_->search(QStringLiteral("_")).isEmpty());
  EXPECT_TRUE(store_->search(QStringLiteral("no such words")).isEmpty());
  EXPECT_TRUE(store_->search(QStringLiteral("   ")).isEmpty());
  EXPECT_EQ(store_->search(QStringLiteral("o"), 2).size(), 2);  // limit
}

}  // namespace
}  // namespace peregrine::app::test
