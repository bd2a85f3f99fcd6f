#include "ui/input_box.h"

#include <algorithm>

#include <QHBoxLayout>
#include <QKeyEvent>
#include <QPushButton>

namespace peregrine::ui {

InputEdit::InputEdit(QWidget* parent) : QPlainTextEdit(parent) {
  setObjectName(QStringLiteral("chatInput"));
  setTabChangesFocus(true);
  setPlaceholderText(tr("Message (Enter to send, Shift+Enter for a new line)"));
}

QSize InputEdit::sizeHint() const {
  const int lines = std::clamp(document()->lineCount(), 1, 8);
  const int height = lines * fontMetrics().lineSpacing() +
                     2 * static_cast<int>(document()->documentMargin()) + 2 * frameWidth() + 4;
  return {QPlainTextEdit::sizeHint().width(), height};
}

void InputEdit::keyPressEvent(QKeyEvent* event) {
  const bool enter = event->key() == Qt::Key_Return || event->key() == Qt::Key_Enter;
  if (enter && !(event->modifiers() & Qt::ShiftModifier)) {
    emit submitted();
    event->accept();
    return;
  }
  if (enter) {  // Shift+Enter: a new line, not a paragraph separator
    insertPlainText(QStringLiteral("\n"));
    event->accept();
    return;
  }
  if (event->key() == Qt::Key_Escape) {
    emit stopRequested();
    event->accept();
    return;
  }
  QPlainTextEdit::keyPressEvent(event);
}

InputBox::InputBox(QWidget* parent)
    : QWidget(parent), edit_(new InputEdit(this)), button_(new QPushButton(this)) {
  setObjectName(QStringLiteral("inputBox"));
  button_->setObjectName(QStringLiteral("sendButton"));
  auto* layout = new QHBoxLayout(this);
  layout->setContentsMargins(16, 6, 16, 10);
  layout->addWidget(edit_, 1);
  layout->addWidget(button_, 0, Qt::AlignBottom);
  connect(edit_, &InputEdit::submitted, this, &InputBox::submit);
  connect(edit_, &InputEdit::stopRequested, this, &InputBox::stopRequested);
  connect(edit_->document(), &QTextDocument::contentsChanged, this, &InputBox::updateHeight);
  connect(button_, &QPushButton::clicked, this, [this] {
    if (generating_) {
      emit stopRequested();
    } else {
      submit();
    }
  });
  setGenerating(false);
  updateHeight();
}

QString InputBox::text() const { return edit_->toPlainText(); }

void InputBox::setText(const QString& text) {
  edit_->setPlainText(text);
  edit_->moveCursor(QTextCursor::End);
}

void InputBox::setGenerating(bool generating) {
  generating_ = generating;
  button_->setText(generating ? tr("Stop") : tr("Send"));
  button_->setToolTip(generating ? tr("Stop the answer (Esc)") : tr("Send (Enter)"));
}

void InputBox::focusInput() { edit_->setFocus(Qt::ShortcutFocusReason); }

void InputBox::submit() {
  const QString message = edit_->toPlainText().trimmed();
  if (generating_ || message.isEmpty()) return;
  edit_->clear();
  emit sendRequested(message);
}

void InputBox::updateHeight() {
  edit_->setFixedHeight(edit_->sizeHint().height());
}

}  // namespace peregrine::ui
