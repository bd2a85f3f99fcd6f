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
//
// Every store call it makes for a request or an engine event goes through a StorageGuard: a
// failure (a full disk, a file that cannot be written) never leaves a slot — Qt would abort — but
// becomes storageFailed and the window's error banner. What the user had stays: a send that could
// not be stored puts its text back into the input box; an answer whose text cannot be written goes
// on streaming onto the screen while the store holds the text in memory, and an answer that could
// not be stored as finished ("not saved yet") is stored by the next send, regenerate or quit.
#pragma once

#include <functional>
#include <optional>

#include <QMetaType>
#include <QObject>
#include <QString>
#include <QTimer>

#include "bridge/bridge_types.h"
#include "controller/storage_guard.h"
#include "core/chat_settings.h"
#include "core/storage_types.h"
#include "ui/message_list_model.h"

namespace peregrine::ui {
class MainWindow;
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
  // The answer ended (complete or interrupted) and was stored so, or, when storing failed
  // (storageFailed), will be by the next send, regenerate or quit.
  void answerFinished(qint64 messageId, peregrine::app::MessageState state);
  // The engine refused or failed the request (no model, prompt too long...).
  void generationFailed(const QString& message);
  void thinkingEnabledChanged(bool enabled);
  // A storage call failed (the disk is full, the file cannot be written...): message is what the
  // window shows, in plain words with the database's folder. The app goes on.
  void storageFailed(const QString& message);
  // Another chat was opened, or the open chat's settings changed.
  void chatSettingsChanged(const peregrine::app::ChatSettings& settings);

 private:
  void connectWindow();
  void connectEngine();
  void refreshList();
  // The open chat's current path into the message list (every row replaced).
  void showPath();
  // Runs a store call for what the user asked (action: "send the message"); false when it failed
  // (then reported, unless quiet).
  bool storeSafely(const QString& action, const std::function<void()>& body, bool quiet = false);
  // The part of send that touches the store; throws when a store call fails.
  void storeAndAnswer(const QString& text);
  // Stores the final state of an answer whose finishing failed (unfinished_); throws when it fails
  // again. At most one answer is unfinished, and none while one streams: send and regenerate call
  // this first.
  void finishUnfinishedAnswer();
  // Streamed text on its way to the store; a failure is reported once per answer.
  void storeStreamed(const std::function<void()>& body);
  // A stored message as a row of the message list.
  ui::MessageItem storedItem(qint64 messageId) const;
  // Stores the answer's row under parentId, then (only then) drops the rows from replacedRow on
  // (regenerate: the old answer leaves the screen) and streams the answer. Throws when the row
  // cannot be stored; the view is then unchanged.
  void startAnswer(qint64 parentId, int replacedRow = -1);
  GenerationRequest requestFor(qint64 parentId) const;
  void onThinkingText(quint64 id, const QString& piece);
  void onAnswerText(quint64 id, const QString& piece);
  void onProgress(quint64 id, const peregrine::GenerationStats& stats);
  void onFinished(quint64 id, const peregrine::GenerationStats& stats);
  void onError(quint64 id, const QString& message);
  void endAnswer(const std::optional<peregrine::GenerationStats>& stats, MessageState state);
  void showMessage(const QString& text, int timeoutMs = 5000);
  // The answer's row as it ended, when the store could not take its final state.
  void showNotSaved(qint64 messageId);

  ui::MainWindow& window_;
  ConversationStore& store_;
  EngineClient& engine_;
  Options options_;
  StorageGuard storage_;
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
  bool streamWriteFailed_ = false;  // reported for this answer already
  std::optional<GenerationRequest> lastRequest_;

  // An answer that ended while the store could not take its final state.
  struct UnfinishedAnswer {
    qint64 id = kNoMessage;
    std::optional<peregrine::GenerationStats> stats;
    MessageState state = MessageState::Interrupted;
    std::optional<ui::MessageItem> shown;  // its row as it ended on screen (showPath shows that)
  };
  std::optional<UnfinishedAnswer> unfinished_;
};

}  // namespace peregrine::app

// answerFinished carries the final state; QSignalSpy and queued connections need it as a metatype.
Q_DECLARE_METATYPE(peregrine::app::MessageState)
