// A stand-in controller for trying the widgets with real storage before the engine bridge exists:
// it connects MainWindow to a ConversationStore and answers every message with a canned reply,
// streamed token by token from a timer (thinking first, then the answer). The real controller
// (with EngineClient) belongs in app/; this one serves the demo program and the wiring test.
#pragma once

#include <QObject>
#include <QStringList>
#include <QTimer>

#include "core/conversation_store.h"

namespace peregrine::ui {
class MainWindow;
}

namespace peregrine::ui::demo {

class DemoWiring : public QObject {
  Q_OBJECT
 public:
  DemoWiring(MainWindow& window, app::ConversationStore& store, int tokenIntervalMs);

  qint64 currentConversation() const { return conversation_; }
  bool isStreaming() const { return answer_ != 0; }
  void openConversation(qint64 conversationId);
  // The canned reply's thinking and answer.
  static QString cannedThinking();
  static QString cannedAnswer();

 signals:
  void answerFinished(qint64 messageId);

 private:
  void refreshList();
  void send(const QString& text);
  void startAnswer(qint64 parentId);
  void nextToken();
  void finishAnswer(app::MessageState state);
  void switchBranch(qint64 messageId, int delta);
  void regenerate(qint64 messageId);

  MainWindow& window_;
  app::ConversationStore& store_;
  QTimer tokenTimer_;
  QTimer flushTimer_;
  qint64 conversation_ = 0;
  qint64 answer_ = 0;  // the message being streamed, 0 when idle
  QStringList tokens_;
  int nextToken_ = 0;
  int thinkingTokens_ = 0;
  QString query_;
};

}  // namespace peregrine::ui::demo
