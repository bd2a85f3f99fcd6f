#include "ui/conversation_list_model.h"

#include <QDateTime>

namespace peregrine::ui {

ConversationListModel::ConversationListModel(QObject* parent) : QAbstractListModel(parent) {}

void ConversationListModel::setConversations(const QList<app::Conversation>& conversations) {
  QList<Row> rows;
  for (const app::Conversation& c : conversations) rows.append({c.id, c.title, c.updatedMs, {}});
  replaceRows(std::move(rows));
}

void ConversationListModel::setSearchHits(const QList<app::SearchHit>& hits) {
  QList<Row> rows;
  for (const app::SearchHit& h : hits) {
    rows.append({h.conversation.id, h.conversation.title, h.conversation.updatedMs, h.snippet});
  }
  replaceRows(std::move(rows));
}

void ConversationListModel::replaceRows(QList<Row> rows) {
  beginResetModel();
  rows_ = std::move(rows);
  endResetModel();
}

int ConversationListModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

QVariant ConversationListModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rows_.size()) return {};
  const Row& row = rows_[index.row()];
  switch (role) {
    case Qt::DisplayRole:
      return row.title.isEmpty() ? tr("New chat") : row.title;
    case Qt::EditRole:
      return row.title;
    case Qt::ToolTipRole: {
      const QString when = QDateTime::fromMSecsSinceEpoch(row.updatedMs).toString(Qt::TextDate);
      return row.snippet.isEmpty() ? when : row.snippet + QStringLiteral("\n") + when;
    }
    case IdRole: return row.id;
    case UpdatedMsRole: return row.updatedMs;
    case SnippetRole: return row.snippet;
    default: return {};
  }
}

bool ConversationListModel::setData(const QModelIndex& index, const QVariant& value, int role) {
  if (!index.isValid() || role != Qt::EditRole || index.row() >= rows_.size()) return false;
  const QString title = value.toString().trimmed();
  if (title.isEmpty() || title == rows_[index.row()].title) return false;
  rows_[index.row()].title = title;
  emit dataChanged(index, index);
  emit renameRequested(rows_[index.row()].id, title);
  return true;
}

Qt::ItemFlags ConversationListModel::flags(const QModelIndex& index) const {
  return QAbstractListModel::flags(index) | Qt::ItemIsEditable;
}

qint64 ConversationListModel::idAt(int row) const {
  return row >= 0 && row < rows_.size() ? rows_[row].id : 0;
}

int ConversationListModel::rowOf(qint64 conversationId) const {
  for (int i = 0; i < rows_.size(); ++i) {
    if (rows_[i].id == conversationId) return i;
  }
  return -1;
}

}  // namespace peregrine::ui
