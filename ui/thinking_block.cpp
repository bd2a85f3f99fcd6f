#include "ui/thinking_block.h"

#include <QEvent>
#include <QLabel>
#include <QPainter>
#include <QToolButton>
#include <QVBoxLayout>

#include "ui/theme.h"

namespace peregrine::ui {

ThinkingBlock::ThinkingBlock(QWidget* parent)
    : QWidget(parent), header_(new QToolButton(this)), body_(new QLabel(this)) {
  setObjectName(QStringLiteral("thinkingBlock"));
  header_->setObjectName(QStringLiteral("thinkingToggle"));
  header_->setAutoRaise(true);
  header_->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
  header_->setCursor(Qt::PointingHandCursor);
  body_->setObjectName(QStringLiteral("thinkingText"));
  body_->setWordWrap(true);
  body_->setTextFormat(Qt::PlainText);
  body_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  body_->setContentsMargins(14, 0, 8, 8);
  body_->setSizePolicy(QSizePolicy::Preferred, QSizePolicy::Minimum);

  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 2, 4, 2);
  layout->setSpacing(0);
  layout->addWidget(header_, 0, Qt::AlignLeft);
  layout->addWidget(body_);

  connect(header_, &QToolButton::clicked, this, [this] { setExpanded(!expanded_); });
  applyColors();
  updateHeader();
}

void ThinkingBlock::setText(const QString& text) {
  if (text == text_) return;
  text_ = text;
  body_->setText(text_.trimmed());
}

void ThinkingBlock::setFinished(bool finished) {
  finished_ = finished;
  updateHeader();
}

bool ThinkingBlock::isExpanded() const { return expanded_; }

void ThinkingBlock::setExpanded(bool expanded) {
  if (expanded == expanded_) return;
  expanded_ = expanded;
  body_->setVisible(expanded_);
  updateHeader();
  emit expandedChanged(expanded_);
}

void ThinkingBlock::updateHeader() {
  header_->setArrowType(expanded_ ? Qt::DownArrow : Qt::RightArrow);
  header_->setText(finished_ ? tr("Thinking") : tr("Thinking…"));
  header_->setToolTip(expanded_ ? tr("Hide the model's thinking")
                                           : tr("Show the model's thinking"));
}

void ThinkingBlock::changeEvent(QEvent* event) {
  if (event->type() == QEvent::PaletteChange || event->type() == QEvent::ApplicationPaletteChange) {
    applyColors();
  }
  QWidget::changeEvent(event);
}

void ThinkingBlock::applyColors() {
  // Thoughts are secondary: dimmer text than the answer.
  const QPalette base = palette();
  QPalette dim = body_->palette();
  dim.setColor(QPalette::WindowText,
               mix(base.color(QPalette::WindowText), base.color(QPalette::Window), 0.35));
  body_->setPalette(dim);
  QPalette head = header_->palette();
  head.setColor(QPalette::ButtonText, dim.color(QPalette::WindowText));
  header_->setPalette(head);
}

void ThinkingBlock::paintEvent(QPaintEvent*) {
  // A thin bar on the left, like a quotation, marks the thoughts as not part of the answer.
  QPainter painter(this);
  painter.fillRect(QRect(0, 4, 3, height() - 8), subtleBorderColor(palette()));
}

}  // namespace peregrine::ui
