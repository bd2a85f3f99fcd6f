// The status line under the chat: model (with a busy bar while it loads), backend, context used /
// size, and the last answer's speed.
#pragma once

#include <QWidget>

class QLabel;
class QProgressBar;

namespace peregrine::ui {

class StatusBarWidget : public QWidget {
  Q_OBJECT
 public:
  explicit StatusBarWidget(QWidget* parent = nullptr);

  void setModel(const QString& model);  // empty: "No model loaded"
  void setBackend(const QString& backend);
  void setContext(qint64 used, qint64 size);
  void setTokensPerSecond(double tokensPerSecond);  // < 0: unknown
  // An indeterminate progress bar beside the model while it loads (the engine reports no
  // fraction); busy false hides it.
  void setBusy(bool busy);
  bool isBusy() const;

  QString modelText() const;
  QString backendText() const;
  QString contextText() const;
  QString speedText() const;

 private:
  QLabel* model_;
  QLabel* backend_;
  QLabel* context_;
  QLabel* speed_;
  QProgressBar* busy_;
};

}  // namespace peregrine::ui
