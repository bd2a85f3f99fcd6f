#include "ui/markdown_label.h"

#include <QEvent>

namespace peregrine::ui {

MarkdownLabel::MarkdownLabel(QWidget* parent) : QLabel(parent) {
  setObjectName(QStringLiteral("markdown"));
  setTextFormat(Qt::RichText);
  setWordWrap(true);
  setOpenExternalLinks(true);
  setTextInteractionFlags(Qt::TextBrowserInteraction);
  setSizePolicy(QSizePolicy::Preferred, QSizePolicy::Minimum);
}

void MarkdownLabel::setHtml(const QString& html) {
  if (html == text()) return;
  forgetHeights();
  setText(html);
}

int MarkdownLabel::heightForWidth(int width) const {
  for (const CachedHeight& c : cache_) {
    if (c.width == width) return c.height;
  }
  const int height = QLabel::heightForWidth(width);
  cache_[nextSlot_] = {width, height};
  nextSlot_ = (nextSlot_ + 1) % 4;
  return height;
}

void MarkdownLabel::changeEvent(QEvent* event) {
  switch (event->type()) {
    case QEvent::FontChange:
    case QEvent::StyleChange:
    case QEvent::ContentsRectChange:
      forgetHeights();
      break;
    default:
      break;
  }
  QLabel::changeEvent(event);
}

void MarkdownLabel::forgetHeights() {
  for (CachedHeight& c : cache_) c.width = -1;
}

}  // namespace peregrine::ui
