// The status line under the chat: model (with a progress bar and a cancel button while it loads),
// backend, context used / size, and the last answer's speed.
#pragma once

#include <QWidget>

class QLabel;
class QProgressBar;
class QToolButton;

namespace peregrine::ui {

class StatusBarWidget : public QWidget {
  Q_OBJECT
 public:
  explicit StatusBarWidget(QWidget* parent = nullptr);

  void setModel(const QString& model);  // empty: "No model loaded"
  void setBackend(const QString& backend);
  void setContext(qint64 used, qint64 size);
  void setTokensPerSecond(double tokensPerSecond);  // < 0: unknown
  // A progress bar and a cancel button beside the model while it loads: indeterminate until
  // setProgress gives a fraction; busy false hides both.
  void setBusy(bool busy);
  bool isBusy() const;
  // done of total bytes loaded: the bar becomes determinate (and busy) when total > 0.
  void setProgress(quint64 done, quint64 total);
  // 0..100, or -1 while the bar is hidden or indeterminate.
  int progressPercent() const;

  QString modelText() const;
  QString backendText() const;
  QString contextText() const;
  QString speedText() const;

 signals:
  // The cancel button beside the progress bar was clicked.
  void cancelRequested();

 private:
  QLabel* model_;
  QLabel* backend_;
  QLabel* context_;
  QLabel* speed_;
  QProgressBar* busy_;
  QToolButton* cancel_;
};

}  // namespace peregrine::ui
