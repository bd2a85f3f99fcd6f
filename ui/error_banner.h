// A line above the input box saying that something the user asked for could not be done (the disk
// holding the chats is full, the database cannot be written, an export failed). It does not block
// the window as a dialog would: the user can keep reading, copy the typed text, or go and free
// space. It stays until its × button closes it or the controller clears it once things work again.
// No logic: the controller decides the text.
#pragma once

#include <QFrame>
#include <QString>

class QLabel;
class QToolButton;

namespace peregrine::ui {

class ErrorBanner : public QFrame {
  Q_OBJECT
 public:
  explicit ErrorBanner(QWidget* parent = nullptr);

  // Shows text (replacing what was shown).
  void showMessage(const QString& text);
  // The text shown; empty while hidden.
  QString message() const;

 public slots:
  void dismiss();

 private:
  QLabel* label_;
  QToolButton* close_;
};

}  // namespace peregrine::ui
