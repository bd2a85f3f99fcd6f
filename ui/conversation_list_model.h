// The conversation list's rows: a thin adapter from ConversationStore's values (Conversation,
// SearchHit) to a QAbstractListModel. Renaming in place emits renameRequested; the controller
// writes it to storage and refreshes the rows.
#pragma once

#include <QAbstractListModel>
#include <QList>

#include "core/storage_types.h"

namespace peregrine::ui {

class ConversationListModel : public QAbstractListModel {
  Q_OBJECT
 public:
  enum Roles { IdRole = Qt::UserRole + 1, UpdatedMsRole, SnippetRole };

  explicit ConversationListModel(QObject* parent = nullptr);

  // The full list (most recent first, as the store gives it).
  void setConversations(const QList<app::Conversation>& conversations);
  // Search results: the snippet around the match becomes the tooltip and second line.
  void setSearchHits(const QList<app::SearchHit>& hits);

  int rowCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;
  bool setData(const QModelIndex& index, const QVariant& value, int role) override;
  Qt::ItemFlags flags(const QModelIndex& index) const override;

  qint64 idAt(int row) const;
  int rowOf(qint64 conversationId) const;  // -1 when not listed

 signals:
  void renameRequested(qint64 conversationId, const QString& title);

 private:
  struct Row {
    qint64 id = 0;
    QString title;
    qint64 updatedMs = 0;
    QString snippet;
  };
  void replaceRows(QList<Row> rows);
  QList<Row> rows_;
};

}  // namespace peregrine::ui
