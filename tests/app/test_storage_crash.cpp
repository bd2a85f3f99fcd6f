// kill -9 in the middle of a streamed answer: the next start shows the conversation with the
// partial answer, marked interrupted. Uses a real child process (storage_crash_helper).
#include <gtest/gtest.h>

#include <QElapsedTimer>
#include <QProcess>
#include <QRandomGenerator>
#include <QThread>

#ifdef Q_OS_UNIX
#include <signal.h>
#include <sys/types.h>
#endif

#include "core/conversation_store.h"
#include "crash_stream.h"
#include "storage_test_util.h"

namespace peregrine::app::test {
namespace {

struct KillPoint {
  int flushesBeforeKill;
  int tokenDelayMs;  // 0: the helper is writing flat out when the signal lands
};

class CrashTest : public StorageTest, public ::testing::WithParamInterface<KillPoint> {};

TEST_P(CrashTest, KilledMidStreamKeepsThePartialAnswerAsInterrupted) {
#ifndef Q_OS_UNIX
  GTEST_SKIP() << "needs SIGKILL";
#else
  const KillPoint point = GetParam();
  QProcess helper;
  helper.setProcessChannelMode(QProcess::ForwardedErrorChannel);
  helper.start(QStringLiteral(STORAGE_CRASH_HELPER),
               {dbPath(), QStringLiteral("50"), QString::number(point.tokenDelayMs)});
  ASSERT_TRUE(helper.waitForStarted(10'000)) << helper.errorString().toStdString();

  qint64 conversationId = 0, questionId = 0, answerId = 0, committed = 0;
  int flushes = 0;
  QElapsedTimer waited;
  waited.start();
  while (flushes < point.flushesBeforeKill && waited.elapsed() < 20'000) {
    if (!helper.canReadLine() && !helper.waitForReadyRead(1'000)) continue;
    while (helper.canReadLine()) {
      const QStringList words = QString::fromUtf8(helper.readLine()).simplified().split(QLatin1Char(' '));
      if (words.size() == 6 && words[0] == QLatin1String("conversation")) {
        conversationId = words[1].toLongLong();
        questionId = words[3].toLongLong();
        answerId = words[5].toLongLong();
      } else if (words.size() == 2 && words[0] == QLatin1String("committed")) {
        committed = words[1].toLongLong();
        ++flushes;
      }
    }
  }
  ASSERT_GE(flushes, point.flushesBeforeKill) << "the helper did not report its flushes in time";
  ASSERT_GT(answerId, 0);
  // Land the signal at a random moment of the helper's loop, not right after a report.
  QThread::msleep(QRandomGenerator::global()->bounded(40));
  ASSERT_EQ(::kill(static_cast<pid_t>(helper.processId()), SIGKILL), 0);
  ASSERT_TRUE(helper.waitForFinished(10'000));
  ASSERT_EQ(helper.exitStatus(), QProcess::CrashExit);

  ConversationStore store(dbPath(), testOptions());
  const OpenReport& report = store.openReport();
  EXPECT_EQ(report.outcome, OpenOutcome::Opened) << report.userMessage().toStdString();
  EXPECT_EQ(report.interruptedMessages, 1);

  const auto conversation = store.conversation(conversationId);
  ASSERT_TRUE(conversation.has_value());
  EXPECT_EQ(conversation->title, kCrashQuestion);
  EXPECT_EQ(conversation->currentLeafId, answerId);
  const QList<Message> path = store.currentPath(conversationId);
  ASSERT_EQ(path.size(), 2);
  EXPECT_EQ(path[0].id, questionId);
  EXPECT_EQ(path[0].content, kCrashQuestion);
  const Message& answer = path[1];
  EXPECT_EQ(answer.state, MessageState::Interrupted);
  EXPECT_EQ(answer.thinking, kCrashThinking);
  // Everything reported as committed is there, and what is there is exactly the stream's start.
  EXPECT_GE(answer.content.size(), committed);
  const QString expected = crashStreamText(answer.content.size());
  EXPECT_TRUE(expected.startsWith(answer.content))
      << "stored text is not a prefix of the stream: " << answer.content.right(80).toStdString();

  // The conversation goes on from the interrupted answer like any other.
  const qint64 next = store.appendUserMessage(conversationId, answerId, QStringLiteral("go on"));
  EXPECT_EQ(store.currentPath(conversationId).back().id, next);
#endif
}

INSTANTIATE_TEST_SUITE_P(KillPoints, CrashTest,
                         ::testing::Values(KillPoint{1, 5}, KillPoint{4, 5}, KillPoint{3, 0}),
                         [](const auto& info) {
                           return "after" + std::to_string(info.param.flushesBeforeKill) +
                                  "flushes_delay" + std::to_string(info.param.tokenDelayMs) + "ms";
                         });

}  // namespace
}  // namespace peregrine::app::test
