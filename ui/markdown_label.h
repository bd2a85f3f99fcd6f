// A rich-text label for one Markdown block. QLabel lays its whole text out again on every
// heightForWidth() call, and layouts ask every label of a message each time any of them changes
// (QWidgetItem does not cache minimumHeightForWidth). While an answer streams that made every
// token cost a re-layout of all earlier blocks; this label remembers its heights until its text,
// font or style changes.
#pragma once

#include <QLabel>

namespace peregrine::ui {

class MarkdownLabel : public QLabel {
  Q_OBJECT
 public:
  explicit MarkdownLabel(QWidget* parent = nullptr);

  void setHtml(const QString& html);
  int heightForWidth(int width) const override;

 protected:
  void changeEvent(QEvent* event) override;

 private:
  struct CachedHeight {
    int width = -1;
    int height = 0;
  };
  mutable CachedHeight cache_[4];
  mutable int nextSlot_ = 0;
  void forgetHeights();
};

}  // namespace peregrine::ui
