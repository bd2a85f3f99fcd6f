// The sidebar: a search field over a list of conversations, a New chat button, and a context menu
// with Rename and Delete. Emits what the user asked for; the controller does it.
#pragma once

#include <QWidget>

class QLineEdit;
class QListView;
class QPushButton;
class QTimer;

namespace peregrine::ui {

class ConversationListModel;

class ConversationList : public QWidget {
  Q_OBJECT
 public:
  explicit ConversationList(QWidget* parent = nullptr);

  ConversationListModel* model() const { return model_; }
  QListView* view() const { return view_; }
  QLineEdit* searchField() const { return search_; }
  // Highlights the conversation on screen without emitting conversationSelected.
  void setCurrentConversation(qint64 conversationId);
  qint64 currentConversation() const;
  // Puts the title of the conversation into edit mode.
  void startRename(qint64 conversationId);

 public slots:
  void focusSearch();

 signals:
  void conversationSelected(qint64 conversationId);
  void newConversationRequested();
  void renameRequested(qint64 conversationId, const QString& title);
  void deleteRequested(qint64 conversationId);
  // The search text after typing paused (empty: show all conversations).
  void searchChanged(const QString& query);

 private:
  void showContextMenu(const QPoint& position);

  QLineEdit* search_;
  QPushButton* newChat_;
  QListView* view_;
  ConversationListModel* model_;
  QTimer* searchDelay_;
  bool selecting_ = false;
};

}  // namespace peregrine::ui
