// Where the user types: Enter sends, Shift+Enter starts a new line, Esc asks to stop the answer.
// Grows with its text up to a few lines. While an answer streams, the Send button becomes Stop.
#pragma once

#include <QPlainTextEdit>
#include <QWidget>

class QPushButton;

namespace peregrine::ui {

class InputEdit : public QPlainTextEdit {
  Q_OBJECT
 public:
  explicit InputEdit(QWidget* parent = nullptr);
  QSize sizeHint() const override;

 signals:
  void submitted();
  void stopRequested();

 protected:
  void keyPressEvent(QKeyEvent* event) override;
};

class InputBox : public QWidget {
  Q_OBJECT
 public:
  explicit InputBox(QWidget* parent = nullptr);

  InputEdit* editor() const { return edit_; }
  QString text() const;
  void setText(const QString& text);
  // While generating, Enter does not send (the text stays) and the button stops the answer.
  void setGenerating(bool generating);
  bool isGenerating() const { return generating_; }

 public slots:
  void focusInput();

 signals:
  // The trimmed text; the box is cleared.
  void sendRequested(const QString& text);
  void stopRequested();

 private:
  void submit();
  void updateHeight();

  InputEdit* edit_;
  QPushButton* button_;
  bool generating_ = false;
};

}  // namespace peregrine::ui
