// ChatController — joins the conversation store, the engine bridge and the main window.
//
// It does what the window asks for (MainWindow's signals and menu actions): send (the user
// message is committed to the store before the engine is asked for anything), stop, regenerate (a
// new sibling answer), switch branches, and the conversation list (new, select, rename, delete
// with undo, search). It changes the window's models only: the message list the chat view
// observes and the conversation list. Sending appends the question's row and the streaming
// answer's row; the engine's thinking and answer text (split by the engine) go to that row and to
// the store (kept apart, written in small transactions by a flush timer); finishing stores the
// statistics and updates that one row (footer, state, branch position). Opening a chat or
// switching a branch replaces the rows.
//
// One answer at a time. Quitting during generation (MainWindow::closing, or destroying the
// controller) cancels it and stores the partial text as interrupted; the engine thread is then
// joined by ~EngineClient without waiting for the answer to end.
#pragma once

#include <optional>

#include <QMetaType>
#include <QObject>
#include <QString>
#include <QTimer>

#include "bridge/bridge_types.h"
#include "core/chat_settings.h"
#include "core/storage_types.h"

namespace peregrine::ui {
class MainWindow;
struct MessageItem;
}

namespace peregrine::app {

class ConversationStore;
class EngineClient;

class ChatController : public QObject {
  Q_OBJECT

 public:
  struct Options {
    int maxTokens = 2048;
    bool ignoreEos = false;   // tests: answers as long as maxTokens
    int flushTimerMs = 50;    // how often the store is asked to write streamed text (it writes every 250 ms)
  };

  ChatController(ui::MainWindow& window, ConversationStore& store, EngineClient& engine,
                 QObject* parent = nullptr);
  ChatController(ui::MainWindow& window, ConversationStore& store, EngineClient& engine,
                 Options options, QObject* parent = nullptr);
  // Cancels a running answer and stores what it had.
  ~ChatController() override;

  qint64 currentConversation() const { return conversation_; }
  bool isGenerating() const { return answer_ != kNoMessage; }
  qint64 streamingMessage() const { return answer_; }

  void openConversation(qint64 conversationId);
  void newConversation();
  void send(const QString& text);
  void stop();
  void regenerate(qint64 answerId);
  // Puts a user message into the input box; the next send adds the edited text as its sibling
  // (a new branch, the original is kept). Esc or switching chats cancels the edit.
  void beginEdit(qint64 userMessageId);
  qint64 editedMessage() const { return editing_; }
  void switchBranch(qint64 messageId, int delta);
  void deleteConversation(qint64 conversationId);
  // Brings back the conversation deleted last (the "Undo" of the delete message).
  void undoDelete();
  void setThinkingEnabled(bool enabled);
  bool thinkingEnabled() const;
  // The open chat's settings (system prompt, Thinking, sampling, max tokens, MTP); defaults when
  // no chat is open. Setting them with no chat open starts one. They drive the next answer.
  ChatSettings chatSettings() const;
  void setChatSettings(const ChatSettings& settings);
  // The answer's token limit when a chat sets none.
  int defaultMaxTokens() const { return options_.maxTokens; }
  // What the last answer asked the engine for (tests; nothing when none was asked yet).
  const std::optional<GenerationRequest>& lastRequest() const { return lastRequest_; }
  // Text shown in an empty conversation (welcome, how to add a model).
  void setWelcomeText(const QString& html);
  // Cancels the running answer now and stores its partial text as interrupted (quit).
  void shutdown();

 signals:
  // The answer was stored in its final state (complete, interrupted, or failed).
  void answerFinished(qint64 messageId, peregrine::app::MessageState state);
  // The engine refused or failed the request (no model, prompt too long...).
  void generationFailed(const QString& message);
  void thinkingEnabledChanged(bool enabled);
  // Another chat was opened, or the open chat's settings changed.
  void chatSettingsChanged(const peregrine::app::ChatSettings& settings);

 private:
  void connectWindow();
  void connectEngine();
  void refreshList();
  // The open chat's current path into the message list (every row replaced).
  void showPath();
  // A stored message as a row of the message list.
  ui::MessageItem storedItem(qint64 messageId) const;
  void startAnswer(qint64 parentId);
  GenerationRequest requestFor(qint64 parentId) const;
  void onThinkingText(quint64 id, const QString& piece);
  void onAnswerText(quint64 id, const QString& piece);
  void onProgress(quint64 id, const peregrine::GenerationStats& stats);
  void onFinished(quint64 id, const peregrine::GenerationStats& stats);
  void onError(quint64 id, const QString& message);
  void endAnswer(const std::optional<peregrine::GenerationStats>& stats, MessageState state);
  void showMessage(const QString& text, int timeoutMs = 5000);

  ui::MainWindow& window_;
  ConversationStore& store_;
  EngineClient& engine_;
  Options options_;
  QTimer flushTimer_;
  QString query_;
  QString welcome_;
  qint64 conversation_ = 0;
  qint64 lastDeleted_ = 0;
  qint64 editing_ = kNoMessage;  // the user message being edited (beginEdit)

  // The answer streaming now (kNoMessage when idle).
  qint64 answer_ = kNoMessage;
  quint64 generation_ = 0;
  bool stopRequested_ = false;
  std::optional<GenerationRequest> lastRequest_;
};

}  // namespace peregrine::app

// answerFinished carries the final state; QSignalSpy and queued connections need it as a metatype.
Q_DECLARE_METATYPE(peregrine::app::MessageState)
