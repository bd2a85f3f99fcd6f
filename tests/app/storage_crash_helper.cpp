// Streams an answer into a conversation database forever, reporting each committed flush on
// stdout ("committed <characters>"), so that a test can kill it with SIGKILL mid-stream.
// Usage: storage_crash_helper <database> <flush interval ms> <delay between tokens ms>
#include <chrono>
#include <cstdio>
#include <thread>

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QStringList>

#include "core/conversation_store.h"
#include "crash_stream.h"

using namespace peregrine::app;

int main(int argc, char** argv) {
  QCoreApplication app(argc, argv);
  const QStringList args = app.arguments();
  if (args.size() != 4) {
    std::fprintf(stderr, "usage: storage_crash_helper <database> <flush ms> <token delay ms>\n");
    return 2;
  }
  StoreOptions options;
  options.flushInterval = std::chrono::milliseconds(args[2].toInt());
  const int tokenDelayMs = args[3].toInt();
  ConversationStore store(args[1], options);
  const qint64 conversation = store.createConversation();
  const qint64 question = store.appendUserMessage(conversation, kNoMessage, test::kCrashQuestion);
  const qint64 answer = store.beginAssistantMessage(conversation, question, QStringLiteral("demo"));
  store.appendStreamText(answer, test::kCrashThinking, StreamPart::Thinking);
  std::printf("conversation %lld question %lld answer %lld\n", static_cast<long long>(conversation),
              static_cast<long long>(question), static_cast<long long>(answer));
  std::fflush(stdout);

  qint64 appended = 0;
  QElapsedTimer lifetime;
  lifetime.start();
  for (int i = 0; lifetime.elapsed() < 30'000; ++i) {  // the test kills us long before
    const QString chunk = test::crashStreamChunk(i);
    store.appendStreamText(answer, chunk);
    appended += chunk.size();
    if (!store.hasPendingText()) {
      std::printf("committed %lld\n", static_cast<long long>(appended));
      std::fflush(stdout);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(tokenDelayMs));
  }
  return 3;
}
