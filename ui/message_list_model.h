// The messages of the open conversation as a Qt list model: one MessageItem per row, in the order
// the chat shows them (the current path of the conversation tree). The controller in app/ changes
// it (a conversation opened, a question sent, text streamed, an answer finished); ChatView observes
// it and keeps one MessageWidget per row. Streamed text has signals of its own (thinkingAppended,
// answerAppended) so the view can append a piece instead of setting the whole text again.
#pragma once

#include <QAbstractListModel>
#include <QList>
#include <QString>

#include "core/storage_types.h"

namespace peregrine::ui {

struct MessageItem {
  qint64 id = 0;
  app::Role role = app::Role::User;
  QString thinking;  // kept apart from content in storage; shown as the Thinking block
  QString content;
  int branchIndex = 0;  // position among siblings (0-based) for ◀ 2/3 ▶
  int branchCount = 1;
  QString footer;  // statistics line under an answer
  bool streaming = false;

  bool operator==(const MessageItem&) const = default;
};

// A stored message as the chat shows it: statistics and "interrupted" in the footer.
MessageItem messageItemFrom(const app::Message& message, const app::Siblings& siblings);
// The footer of an answer: model, tokens, speed, first token, "MTP n %", "interrupted".
QString statisticsLine(const app::Message& message);

class MessageListModel : public QAbstractListModel {
  Q_OBJECT
 public:
  enum Roles { IdRole = Qt::UserRole + 1, ThinkingRole, FooterRole, StreamingRole };

  explicit MessageListModel(QObject* parent = nullptr);

  // Another conversation, or another branch of it: every row replaced (modelReset).
  void setMessages(const QList<MessageItem>& items);
  void clear() { setMessages({}); }
  void appendMessage(const MessageItem& item);
  // Drops the rows from row to the end (a regenerated answer, an edited question: the new
  // version replaces the old one on screen; the old one stays in storage as a branch). A row
  // out of range (rowOf() of a message not listed) changes nothing.
  void truncate(int row);
  // Streamed text of the message with this id; nothing happens when it is not listed.
  void appendThinking(qint64 messageId, const QString& piece);
  void appendAnswer(qint64 messageId, const QString& piece);
  // Replaces the row with item.id (footer, branch position, streaming state, text) and emits
  // dataChanged for it; nothing happens when it is not listed.
  void updateMessage(const MessageItem& item);

  const QList<MessageItem>& messages() const { return rows_; }
  const MessageItem& at(int row) const { return rows_.at(row); }
  int rowOf(qint64 messageId) const;  // -1 when not listed

  int rowCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;

 signals:
  void thinkingAppended(int row, const QString& piece);
  void answerAppended(int row, const QString& piece);

 private:
  QList<MessageItem> rows_;
};

}  // namespace peregrine::ui
