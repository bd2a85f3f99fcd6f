#include "ui/conversation_list.h"

#include <QAction>
#include <QItemSelectionModel>
#include <QLineEdit>
#include <QListView>
#include <QMenu>
#include <QPushButton>
#include <QTimer>
#include <QVBoxLayout>

#include "ui/conversation_list_model.h"

namespace peregrine::ui {

ConversationList::ConversationList(QWidget* parent)
    : QWidget(parent),
      search_(new QLineEdit(this)),
      newChat_(new QPushButton(tr("New chat"), this)),
      view_(new QListView(this)),
      model_(new ConversationListModel(this)),
      searchDelay_(new QTimer(this)) {
  setObjectName(QStringLiteral("conversationList"));
  search_->setObjectName(QStringLiteral("conversationSearch"));
  search_->setPlaceholderText(tr("Search chats (Ctrl+F)"));
  search_->setClearButtonEnabled(true);
  newChat_->setObjectName(QStringLiteral("newChat"));
  newChat_->setToolTip(tr("Start a new chat (Ctrl+N)"));
  view_->setModel(model_);
  view_->setSelectionMode(QAbstractItemView::SingleSelection);
  view_->setEditTriggers(QAbstractItemView::EditKeyPressed);  // F2, or Rename in the menu
  view_->setContextMenuPolicy(Qt::CustomContextMenu);
  view_->setUniformItemSizes(true);
  view_->setTextElideMode(Qt::ElideRight);
  view_->setFrameShape(QFrame::NoFrame);
  view_->setSpacing(1);

  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(8, 8, 4, 8);
  layout->setSpacing(6);
  layout->addWidget(newChat_);
  layout->addWidget(search_);
  layout->addWidget(view_, 1);

  searchDelay_->setSingleShot(true);
  searchDelay_->setInterval(150);
  connect(search_, &QLineEdit::textChanged, searchDelay_, qOverload<>(&QTimer::start));
  connect(searchDelay_, &QTimer::timeout, this,
          [this] { emit searchChanged(search_->text().trimmed()); });
  connect(newChat_, &QPushButton::clicked, this, &ConversationList::newConversationRequested);
  connect(model_, &ConversationListModel::renameRequested, this, &ConversationList::renameRequested);
  connect(view_->selectionModel(), &QItemSelectionModel::currentChanged, this,
          [this](const QModelIndex& current) {
            if (!selecting_ && current.isValid()) emit conversationSelected(model_->idAt(current.row()));
          });
  // The model is reset on every refresh: the selection model survives, the handler above too.
  connect(view_, &QListView::customContextMenuRequested, this, &ConversationList::showContextMenu);
}

void ConversationList::setCurrentConversation(qint64 conversationId) {
  selecting_ = true;
  const int row = model_->rowOf(conversationId);
  if (row >= 0) {
    view_->setCurrentIndex(model_->index(row));
  } else {
    view_->clearSelection();
  }
  selecting_ = false;
}

qint64 ConversationList::currentConversation() const {
  const QModelIndex current = view_->currentIndex();
  return current.isValid() ? model_->idAt(current.row()) : 0;
}

void ConversationList::startRename(qint64 conversationId) {
  const int row = model_->rowOf(conversationId);
  if (row >= 0) view_->edit(model_->index(row));
}

void ConversationList::focusSearch() {
  search_->setFocus(Qt::ShortcutFocusReason);
  search_->selectAll();
}

void ConversationList::showContextMenu(const QPoint& position) {
  const QModelIndex index = view_->indexAt(position);
  if (!index.isValid()) return;
  const qint64 id = model_->idAt(index.row());
  QMenu menu(this);
  QAction* rename = menu.addAction(tr("Rename"));
  QAction* remove = menu.addAction(tr("Delete"));
  QAction* chosen = menu.exec(view_->viewport()->mapToGlobal(position));
  if (chosen == rename) {
    startRename(id);
  } else if (chosen == remove) {
    emit deleteRequested(id);
  }
}

}  // namespace peregrine::ui
