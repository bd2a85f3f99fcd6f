#include "ui/message_list_model.h"

#include <algorithm>

namespace peregrine::ui {

QString statisticsLine(const app::Message& message) {
  QStringList parts;
  if (!message.model.isEmpty()) parts << message.model;
  if (const std::optional<peregrine::GenerationStats>& s = message.stats) {
    parts << MessageListModel::tr("%n tokens", nullptr, static_cast<int>(s->generated_tokens));
    if (s->decode_tok_s > 0) parts << MessageListModel::tr("%1 tok/s").arg(s->decode_tok_s, 0, 'f', 1);
    if (s->ttft_ms > 0) parts << MessageListModel::tr("first token %1 s").arg(s->ttft_ms / 1000.0, 0, 'f', 2);
    if (s->mtp.active) parts << MessageListModel::tr("MTP %1%").arg(s->mtp.acceptance_rate * 100.0, 0, 'f', 0);
  }
  if (message.state == app::MessageState::Interrupted) parts << MessageListModel::tr("interrupted");
  return parts.join(QStringLiteral(" · "));
}

MessageItem messageItemFrom(const app::Message& message, const app::Siblings& siblings) {
  MessageItem item;
  item.id = message.id;
  item.role = message.role;
  item.thinking = message.thinking;
  item.content = message.content;
  item.branchIndex = std::max(0, siblings.index);
  item.branchCount = std::max(1, static_cast<int>(siblings.ids.size()));
  if (message.role == app::Role::Assistant) item.footer = statisticsLine(message);
  item.streaming = message.state == app::MessageState::Streaming;
  return item;
}

MessageListModel::MessageListModel(QObject* parent) : QAbstractListModel(parent) {}

void MessageListModel::setMessages(const QList<MessageItem>& items) {
  beginResetModel();
  rows_ = items;
  endResetModel();
}

void MessageListModel::appendMessage(const MessageItem& item) {
  const int row = static_cast<int>(rows_.size());
  beginInsertRows({}, row, row);
  rows_.append(item);
  endInsertRows();
}

void MessageListModel::truncate(int row) {
  if (row < 0 || row >= rows_.size()) return;
  beginRemoveRows({}, row, static_cast<int>(rows_.size()) - 1);
  rows_.erase(rows_.begin() + row, rows_.end());
  endRemoveRows();
}

void MessageListModel::appendThinking(qint64 messageId, const QString& piece) {
  const int row = rowOf(messageId);
  if (row < 0 || piece.isEmpty()) return;
  rows_[row].thinking += piece;
  emit thinkingAppended(row, piece);
}

void MessageListModel::appendAnswer(qint64 messageId, const QString& piece) {
  const int row = rowOf(messageId);
  if (row < 0 || piece.isEmpty()) return;
  rows_[row].content += piece;
  emit answerAppended(row, piece);
}

void MessageListModel::updateMessage(const MessageItem& item) {
  const int row = rowOf(item.id);
  if (row < 0 || rows_[row] == item) return;
  rows_[row] = item;
  emit dataChanged(index(row), index(row));
}

int MessageListModel::rowOf(qint64 messageId) const {
  // The streamed message is nearly always the last one.
  for (qsizetype i = rows_.size() - 1; i >= 0; --i) {
    if (rows_[i].id == messageId) return static_cast<int>(i);
  }
  return -1;
}

int MessageListModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

QVariant MessageListModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rows_.size()) return {};
  const MessageItem& item = rows_[index.row()];
  switch (role) {
    case Qt::DisplayRole: return item.content;
    case IdRole: return item.id;
    case ThinkingRole: return item.thinking;
    case FooterRole: return item.footer;
    case StreamingRole: return item.streaming;
    default: return {};
  }
}

}  // namespace peregrine::ui
