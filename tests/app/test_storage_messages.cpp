// Messages: commit on append, streamed answers (buffer, time-based flush, finish), branches.
#include <gtest/gtest.h>

#include <QThread>

#include "core/conversation_store.h"
#include "storage_test_util.h"

namespace peregrine::app::test {
namespace {

using namespace std::chrono_literals;

class MessagesTest : public StorageTest {
 protected:
  std::unique_ptr<ConversationStore> open(std::chrono::milliseconds flushInterval = 250ms) {
    StoreOptions options = testOptions();
    options.flushInterval = flushInterval;
    return std::make_unique<ConversationStore>(dbPath(), options);
  }
  // What another connection (another process, after a crash) would read from the file.
  QString storedContent(qint64 messageId) {
    Database reader(dbPath(), Database::Mode::ReadOnly);
    Statement query = reader.prepare("SELECT content || '|' || thinking FROM messages WHERE id = ?1");
    query.bind(1, messageId);
    return query.step() ? query.text(0) : QStringLiteral("<missing>");
  }
  QList<qint64> idsOf(const QList<Message>& messages) {
    QList<qint64> ids;
    for (const Message& m : messages) ids << m.id;
    return ids;
  }
};

TEST_F(MessagesTest, UserMessageIsCommittedBeforeReturning) {
  auto store = open();
  const qint64 c = store->createConversation();
  const qint64 u = store->appendUserMessage(c, kNoMessage, QStringLiteral("Hello there"));
  EXPECT_EQ(storedContent(u), QStringLiteral("Hello there|"));
  const Message m = *store->message(u);
  EXPECT_EQ(m.role, Role::User);
  EXPECT_EQ(m.state, MessageState::Complete);
  EXPECT_EQ(m.parentId, kNoMessage);
  EXPECT_EQ(m.conversationId, c);
  EXPECT_EQ(store->conversation(c)->currentLeafId, u);
}

TEST_F(MessagesTest, StreamedTextIsBufferedUntilFlushed) {
  auto store = open(1h);  // the time-based policy never fires here
  const qint64 c = store->createConversation();
  const qint64 u = store->appendUserMessage(c, kNoMessage, QStringLiteral("q"));
  const QJsonObject sampling{{QStringLiteral("temperature"), 0.7}};
  const qint64 a = store->beginAssistantMessage(c, u, QStringLiteral("qwen3.6-27b-q4"), sampling);
  EXPECT_EQ(store->message(a)->state, MessageState::Streaming);
  EXPECT_EQ(store->message(a)->sampling, sampling);
  EXPECT_EQ(store->message(a)->model, QStringLiteral("qwen3.6-27b-q4"));
  EXPECT_EQ(store->conversation(c)->currentLeafId, a);

  store->appendStreamText(a, QStringLiteral("Let me think."), StreamPart::Thinking);
  store->appendStreamText(a, QStringLiteral("Hel"));
  store->appendStreamText(a, QStringLiteral("lo"));
  EXPECT_TRUE(store->hasPendingText());
  EXPECT_FALSE(store->flushIfDue());
  EXPECT_EQ(storedContent(a), QStringLiteral("|"));
  store->flush();
  EXPECT_FALSE(store->hasPendingText());
  EXPECT_EQ(storedContent(a), QStringLiteral("Hello|Let me think."));
  store->appendStreamText(a, QStringLiteral(", world"));
  store->flush();
  EXPECT_EQ(storedContent(a), QStringLiteral("Hello, world|Let me think."));
}

TEST_F(MessagesTest, FlushIfDueWritesOnceTheIntervalHasPassed) {
  // Generous margins: a loaded CI machine must not stall past the interval between two statements.
  auto store = open(200ms);
  const qint64 c = store->createConversation();
  const qint64 a = store->beginAssistantMessage(c, kNoMessage, QStringLiteral("m"));
  store->appendStreamText(a, QStringLiteral("tok"));
  EXPECT_TRUE(store->hasPendingText());
  QThread::msleep(300);
  EXPECT_TRUE(store->flushIfDue());
  EXPECT_EQ(storedContent(a), QStringLiteral("tok|"));
  EXPECT_FALSE(store->flushIfDue()) << "nothing left to write";
  // appendStreamText applies the same policy by itself while tokens keep coming.
  store->appendStreamText(a, QStringLiteral("en"));
  QThread::msleep(300);
  store->appendStreamText(a, QStringLiteral("s"));
  EXPECT_EQ(storedContent(a), QStringLiteral("tokens|"));
  EXPECT_FALSE(store->hasPendingText());
}

TEST_F(MessagesTest, FinishWritesTheRestStatsAndState) {
  auto store = open(1h);
  const qint64 c = store->createConversation();
  const qint64 u = store->appendUserMessage(c, kNoMessage, QStringLiteral("q"));
  const qint64 a = store->beginAssistantMessage(c, u, QStringLiteral("m"));
  store->appendStreamText(a, QStringLiteral("The answer is 42."));
  peregrine::GenerationStats stats;
  stats.stop_reason = peregrine::StopReason::EndOfGeneration;
  stats.prompt_tokens = 31;
  stats.reused_prompt_tokens = 4;
  stats.generated_tokens = 7;
  stats.ttft_ms = 85.5;
  stats.decode_tok_s = 41.25;
  stats.mtp.model_has_mtp = true;
  stats.mtp.active = true;
  stats.mtp.drafted = 8;
  stats.mtp.accepted = 6;
  stats.mtp.drafted_at = {4, 4};
  stats.mtp.accepted_at = {4, 2};
  stats.mtp.acceptance_rate = 0.75;
  store->finishAssistantMessage(a, stats);
  EXPECT_EQ(storedContent(a), QStringLiteral("The answer is 42.|"));
  const Message m = *store->message(a);
  EXPECT_EQ(m.state, MessageState::Complete);
  ASSERT_TRUE(m.stats.has_value());
  EXPECT_EQ(m.stats->prompt_tokens, 31);
  EXPECT_EQ(m.stats->generated_tokens, 7);
  EXPECT_DOUBLE_EQ(m.stats->ttft_ms, 85.5);
  EXPECT_DOUBLE_EQ(m.stats->decode_tok_s, 41.25);
  EXPECT_TRUE(m.stats->mtp.active);
  EXPECT_DOUBLE_EQ(m.stats->mtp.acceptance_rate, 0.75);
  // Every field comes back as it went in (the store keeps the engine's object whole).
  EXPECT_EQ(peregrine::generation_stats_to_json(*m.stats), peregrine::generation_stats_to_json(stats));
  EXPECT_FALSE(store->message(u)->stats.has_value());

  EXPECT_THROW(store->finishAssistantMessage(a, stats), peregrine::Error);
  EXPECT_THROW(store->appendStreamText(a, QStringLiteral("more")), peregrine::Error);
  EXPECT_THROW(store->appendStreamText(u, QStringLiteral("more")), peregrine::Error);
}

TEST_F(MessagesTest, UnreadableStatisticsLeaveTheMessageReadable) {
  qint64 a = 0;
  {
    auto store = open(1h);
    const qint64 c = store->createConversation();
    a = store->beginAssistantMessage(c, kNoMessage, QStringLiteral("m"));
    store->appendStreamText(a, QStringLiteral("Still here."));
    store->finishAssistantMessage(a, peregrine::GenerationStats{});
  }
  {
    Database db(dbPath());
    Statement damage = db.prepare("UPDATE messages SET stats_json = '[not an object' WHERE id = ?1");
    damage.bind(1, a);
    damage.run();
  }
  auto store = open(1h);
  const std::optional<Message> m = store->message(a);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->content, QStringLiteral("Still here."));
  EXPECT_FALSE(m->stats.has_value());
}

TEST_F(MessagesTest, StoppedAnswerIsKeptAsInterrupted) {
  auto store = open(1h);
  const qint64 c = store->createConversation();
  const qint64 a = store->beginAssistantMessage(c, kNoMessage, QStringLiteral("m"));
  store->appendStreamText(a, QStringLiteral("Partial"));
  peregrine::GenerationStats stats;
  stats.generated_tokens = 1;
  stats.stop_reason = peregrine::StopReason::Cancelled;
  store->finishAssistantMessage(a, stats, MessageState::Interrupted);
  EXPECT_EQ(store->message(a)->state, MessageState::Interrupted);
  EXPECT_EQ(store->message(a)->content, QStringLiteral("Partial"));
}

TEST_F(MessagesTest, ClosingWritesPendingTextAndLeftoverStreamsBecomeInterrupted) {
  qint64 a = 0;
  {
    auto store = open(1h);
    const qint64 c = store->createConversation();
    a = store->beginAssistantMessage(c, kNoMessage, QStringLiteral("m"));
    store->appendStreamText(a, QStringLiteral("written at close"));
  }
  auto store = open();
  EXPECT_EQ(store->openReport().interruptedMessages, 1);
  EXPECT_EQ(store->message(a)->content, QStringLiteral("written at close"));
  EXPECT_EQ(store->message(a)->state, MessageState::Interrupted);
}

// Issue 13: a flush that fails because the disk is full keeps the text in memory and waits a
// whole interval before it tries again (not at every token, each paying for a failing write);
// once there is room everything is written, in order.
TEST_F(MessagesTest, StreamedTextWaitsInMemoryWhileTheDiskIsFull) {
  auto store = open(500ms);  // long enough that no test machine stalls that long between two calls
  const qint64 c = store->createConversation();
  const qint64 a = store->beginAssistantMessage(c, kNoMessage, QStringLiteral("m"));
  store->appendStreamText(a, QStringLiteral("before "));
  store->flush();
  store->simulateFullDisk(true);
  const QString big(64 * 1024, QLatin1Char('x'));  // needs more pages than the file may take
  store->appendStreamText(a, big);
  QThread::msleep(520);
  try {
    store->flushIfDue();
    ADD_FAILURE() << "writing 64 KiB into a file that may not grow succeeded";
  } catch (const SqliteError& e) {
    EXPECT_TRUE(e.isDiskFull()) << e.what();
  }
  EXPECT_TRUE(store->hasPendingText());
  EXPECT_NO_THROW(store->appendStreamText(a, QStringLiteral(" more")));  // not due again yet
  EXPECT_EQ(storedContent(a), QStringLiteral("before |"));

  store->simulateFullDisk(false);
  store->flush();
  EXPECT_FALSE(store->hasPendingText());
  EXPECT_EQ(storedContent(a), QStringLiteral("before ") + big + QStringLiteral(" more|"));
}

// Only a file that cannot grow is a full disk; a read-only file is another failure.
TEST_F(MessagesTest, DiskFullIsToldApartFromOtherWriteFailures) {
  auto store = open();
  const qint64 c = store->createConversation();
  store->simulateReadOnly(true);
  try {
    store->appendUserMessage(c, kNoMessage, QStringLiteral("hello"));
    ADD_FAILURE() << "a write to a read-only database succeeded";
  } catch (const SqliteError& e) {
    EXPECT_FALSE(e.isDiskFull()) << e.what();
    EXPECT_FALSE(e.isCorruption()) << e.what();
  }
  store->simulateReadOnly(false);
  EXPECT_NO_THROW(store->appendUserMessage(c, kNoMessage, QStringLiteral("hello")));
}

TEST_F(MessagesTest, ParentMustBelongToTheSameConversation) {
  auto store = open();
  const qint64 c1 = store->createConversation();
  const qint64 c2 = store->createConversation();
  const qint64 u1 = store->appendUserMessage(c1, kNoMessage, QStringLiteral("one"));
  EXPECT_THROW(store->appendUserMessage(c2, u1, QStringLiteral("two")), peregrine::Error);
  EXPECT_THROW(store->beginAssistantMessage(c2, u1, QStringLiteral("m")), peregrine::Error);
  EXPECT_THROW(store->appendUserMessage(c2 + 10, kNoMessage, QStringLiteral("x")), peregrine::Error);
  EXPECT_THROW(store->setCurrentLeaf(c2, u1), peregrine::Error);
  EXPECT_TRUE(store->messages(c2).isEmpty());
}

// u1 ─ a1 ─ u2 ─ a2          (original)
//    ├ a1' (regenerate) ─ u3
//    └ a1'' (regenerate)
// u1' (edit of the first message) ─ a4
TEST_F(MessagesTest, BranchesFromRegenerateAndEdit) {
  auto store = open(1h);
  const qint64 c = store->createConversation();
  auto answer = [&](qint64 parent, const QString& text) {
    const qint64 id = store->beginAssistantMessage(c, parent, QStringLiteral("m"));
    store->appendStreamText(id, text);
    store->finishAssistantMessage(id, {});
    return id;
  };
  const qint64 u1 = store->appendUserMessage(c, kNoMessage, QStringLiteral("u1"));
  const qint64 a1 = answer(u1, QStringLiteral("a1"));
  const qint64 u2 = store->appendUserMessage(c, a1, QStringLiteral("u2"));
  const qint64 a2 = answer(u2, QStringLiteral("a2"));
  EXPECT_EQ(idsOf(store->currentPath(c)), (QList<qint64>{u1, a1, u2, a2}));

  const qint64 a1b = answer(u1, QStringLiteral("a1 again"));
  EXPECT_EQ(idsOf(store->currentPath(c)), (QList<qint64>{u1, a1b}));
  const qint64 u3 = store->appendUserMessage(c, a1b, QStringLiteral("u3"));
  const qint64 a1c = answer(u1, QStringLiteral("a1 third"));

  Siblings s = store->siblings(a1b);
  EXPECT_EQ(s.ids, (QList<qint64>{a1, a1b, a1c}));
  EXPECT_EQ(s.index, 1);  // shown as 2/3
  EXPECT_EQ(store->siblings(a1c).index, 2);
  EXPECT_EQ(store->siblings(u2).ids, (QList<qint64>{u2}));

  const qint64 u1b = store->appendUserMessage(c, kNoMessage, QStringLiteral("u1 edited"));
  const qint64 a4 = answer(u1b, QStringLiteral("a4"));
  EXPECT_EQ(store->siblings(u1).ids, (QList<qint64>{u1, u1b}));
  EXPECT_EQ(store->siblings(u1b).index, 1);
  EXPECT_EQ(idsOf(store->currentPath(c)), (QList<qint64>{u1b, a4}));

  // ◀ back to the first version of the first message: the newest branch below it is shown.
  EXPECT_EQ(store->newestLeafUnder(u1), a1c);
  EXPECT_EQ(store->newestLeafUnder(a1), a2);
  EXPECT_EQ(store->newestLeafUnder(a2), a2);
  store->setCurrentLeaf(c, store->newestLeafUnder(a1b));
  EXPECT_EQ(idsOf(store->currentPath(c)), (QList<qint64>{u1, a1b, u3}));
  EXPECT_EQ(store->pathTo(a2).back().content, QStringLiteral("a2"));

  // Nothing was ever deleted: all nine messages are there.
  EXPECT_EQ(store->messages(c).size(), 9);
  EXPECT_EQ(store->conversation(c)->currentLeafId, u3);
}

}  // namespace
}  // namespace peregrine::app::test
