// The conversation on screen: a scrolling column of MessageWidgets. Takes plain values (MessageItem)
// and emits signals for branch switching, editing and regenerating; it never talks to storage or
// the engine (the controller in app/ does).
#pragma once

#include <QList>
#include <QScrollArea>
#include <QString>

#include "core/storage_types.h"

class QLabel;
class QVBoxLayout;

namespace peregrine::ui {

class CodeBlock;
class MessageWidget;

struct MessageItem {
  qint64 id = 0;
  app::Role role = app::Role::User;
  QString thinking;  // kept apart from content in storage; shown as the Thinking block
  QString content;
  int branchIndex = 0;  // position among siblings (0-based) for ◀ 2/3 ▶
  int branchCount = 1;
  QString footer;  // statistics line under an answer
  bool streaming = false;
};

// A stored message as the chat shows it: statistics and "interrupted" in the footer.
MessageItem messageItemFrom(const app::Message& message, const app::Siblings& siblings);
QString statisticsLine(const app::Message& message);

class ChatView : public QScrollArea {
  Q_OBJECT
 public:
  explicit ChatView(QWidget* parent = nullptr);

  void setMessages(const QList<MessageItem>& items);
  MessageWidget* addMessage(const MessageItem& item);
  void clear();
  // Streamed text for a message on screen; keeps the view at the bottom when it was there.
  // Rendering is coalesced to at most one per renderInterval (default 16 ms, about a frame), so
  // a fast model cannot flood the GUI thread; the text is never delayed by more than that.
  void appendToMessage(qint64 messageId, const QString& chunk);
  void setRenderInterval(int milliseconds) { renderIntervalMs_ = milliseconds; }

  MessageWidget* message(qint64 messageId) const;
  MessageWidget* lastMessage() const;
  QList<MessageWidget*> messages() const { return messages_; }
  // The last code block of the conversation (Ctrl+Shift+C copies it); nullptr when none.
  CodeBlock* lastCodeBlock() const;
  // Shown instead of messages when the conversation is empty (welcome, "no model" hints).
  void setPlaceholderText(const QString& html);
  void scrollToBottom();

 signals:
  void branchRequested(qint64 messageId, int delta);
  void editRequested(qint64 messageId);
  void regenerateRequested(qint64 messageId);

 private:
  void updatePlaceholder();

  QWidget* column_;
  QVBoxLayout* columnLayout_;
  QLabel* placeholder_;
  QList<MessageWidget*> messages_;
  bool stickToBottom_ = true;
  int renderIntervalMs_ = 16;
};

}  // namespace peregrine::ui
