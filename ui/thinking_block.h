// The model's thinking, shown as a "Thinking…" header that folds the thoughts away. Expanded while
// the model thinks; MessageWidget collapses it once the answer starts (the user can reopen it).
#pragma once

#include <QString>
#include <QWidget>

class QLabel;
class QToolButton;

namespace peregrine::ui {

class ThinkingBlock : public QWidget {
  Q_OBJECT
 public:
  explicit ThinkingBlock(QWidget* parent = nullptr);

  void setText(const QString& text);
  const QString& text() const { return text_; }
  // finished: </think> seen; the header then stops saying the model is still thinking.
  void setFinished(bool finished);
  bool isFinished() const { return finished_; }

  bool isExpanded() const;
  void setExpanded(bool expanded);

 signals:
  void expandedChanged(bool expanded);

 protected:
  void changeEvent(QEvent* event) override;
  void paintEvent(QPaintEvent* event) override;

 private:
  void updateHeader();
  void applyColors();

  QString text_;
  bool finished_ = false;
  bool expanded_ = true;
  QToolButton* header_;
  QLabel* body_;
};

}  // namespace peregrine::ui
