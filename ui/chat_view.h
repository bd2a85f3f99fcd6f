// The conversation on screen: a scrolling column of MessageWidgets, one per row of its
// MessageListModel. The view observes the model (reset, rows inserted / removed, data changed,
// streamed text) and is never told what to draw; it emits signals for branch switching, editing
// and regenerating. It never talks to storage or the engine (the controller in app/ changes the
// model).
#pragma once

#include <QList>
#include <QScrollArea>
#include <QString>


class QLabel;
class QVBoxLayout;

namespace peregrine::ui {

class CodeBlock;
class MessageListModel;
class MessageWidget;
struct MessageItem;

class ChatView : public QScrollArea {
  Q_OBJECT
 public:
  explicit ChatView(QWidget* parent = nullptr);

  // The rows shown (owned by the view).
  MessageListModel* model() const { return model_; }
  // Streamed text keeps the view at the bottom when it was there. Rendering is coalesced to at
  // most one per renderInterval (default 16 ms, about a frame), so a fast model cannot flood the
  // GUI thread; the text is never delayed by more than that.
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
  void rebuild();
  void insertRows(int first, int last);
  void removeRows(int first, int last);
  void updateRows(int first, int last);
  MessageWidget* createWidget(const MessageItem& item);
  void updatePlaceholder();

  MessageListModel* model_;
  QWidget* column_;
  QVBoxLayout* columnLayout_;
  QLabel* placeholder_;
  QList<MessageWidget*> messages_;
  bool stickToBottom_ = true;
  int renderIntervalMs_ = 16;
};

}  // namespace peregrine::ui
