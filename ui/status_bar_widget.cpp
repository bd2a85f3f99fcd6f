#include "ui/status_bar_widget.h"

#include <algorithm>

#include <QFrame>
#include <QHBoxLayout>
#include <QLabel>
#include <QLocale>
#include <QProgressBar>
#include <QToolButton>

namespace peregrine::ui {
namespace {

// Per mille: the bar's range stays in int whatever the byte counts.
constexpr int kProgressSteps = 1000;

QFrame* separator(QWidget* parent) {
  auto* line = new QFrame(parent);
  line->setFrameShape(QFrame::VLine);
  line->setFrameShadow(QFrame::Sunken);
  return line;
}

}  // namespace

StatusBarWidget::StatusBarWidget(QWidget* parent)
    : QWidget(parent),
      model_(new QLabel(this)),
      backend_(new QLabel(this)),
      context_(new QLabel(this)),
      speed_(new QLabel(this)),
      busy_(new QProgressBar(this)),
      cancel_(new QToolButton(this)) {
  setObjectName(QStringLiteral("statusBarWidget"));
  model_->setObjectName(QStringLiteral("statusModel"));
  backend_->setObjectName(QStringLiteral("statusBackend"));
  context_->setObjectName(QStringLiteral("statusContext"));
  speed_->setObjectName(QStringLiteral("statusSpeed"));
  model_->setToolTip(tr("Model"));
  backend_->setToolTip(tr("Where the model runs"));
  context_->setToolTip(tr("Tokens of this chat in the context window / its size"));
  speed_->setToolTip(tr("Generation speed of the last answer"));
  busy_->setObjectName(QStringLiteral("statusBusy"));
  busy_->setRange(0, 0);  // indeterminate
  busy_->setMaximumWidth(120);
  busy_->setMaximumHeight(14);
  busy_->setTextVisible(false);
  busy_->setToolTip(tr("Loading the model"));
  busy_->hide();
  cancel_->setObjectName(QStringLiteral("statusCancelLoad"));
  cancel_->setText(tr("Cancel"));
  cancel_->setToolTip(tr("Stop loading the model (Esc)"));
  cancel_->setAutoRaise(true);
  cancel_->hide();
  connect(cancel_, &QToolButton::clicked, this, &StatusBarWidget::cancelRequested);
  auto* layout = new QHBoxLayout(this);
  layout->setContentsMargins(4, 0, 4, 0);
  layout->setSpacing(8);
  layout->addWidget(model_);
  layout->addWidget(busy_);
  layout->addWidget(cancel_);
  layout->addWidget(separator(this));
  layout->addWidget(backend_);
  layout->addWidget(separator(this));
  layout->addWidget(context_);
  layout->addWidget(separator(this));
  layout->addWidget(speed_);
  setModel({});
  setBackend({});
  setContext(0, 0);
  setTokensPerSecond(-1);
}

void StatusBarWidget::setModel(const QString& model) {
  model_->setText(model.isEmpty() ? tr("No model loaded") : model);
}

void StatusBarWidget::setBackend(const QString& backend) {
  backend_->setText(backend.isEmpty() ? tr("—") : backend);
}

void StatusBarWidget::setContext(qint64 used, qint64 size) {
  const QLocale locale;
  context_->setText(size > 0 ? tr("Context %1 / %2").arg(locale.toString(used), locale.toString(size))
                             : tr("Context —"));
}

void StatusBarWidget::setTokensPerSecond(double tokensPerSecond) {
  speed_->setText(tokensPerSecond >= 0 ? tr("%1 tok/s").arg(tokensPerSecond, 0, 'f', 1)
                                       : tr("— tok/s"));
}

void StatusBarWidget::setBusy(bool busy) {
  if (busy && !isBusy()) {  // indeterminate until a fraction arrives
    busy_->setRange(0, 0);
    busy_->setToolTip(tr("Loading the model"));
  }
  busy_->setVisible(busy);
  cancel_->setVisible(busy);
}

bool StatusBarWidget::isBusy() const { return !busy_->isHidden(); }

void StatusBarWidget::setProgress(quint64 done, quint64 total) {
  if (total == 0) return;
  setBusy(true);
  const quint64 clamped = std::min(done, total);
  busy_->setRange(0, kProgressSteps);
  busy_->setValue(static_cast<int>(clamped * kProgressSteps / total));
  const QLocale locale;
  busy_->setToolTip(tr("Loading the model: %1 of %2")
                        .arg(locale.formattedDataSize(static_cast<qint64>(clamped)),
                             locale.formattedDataSize(static_cast<qint64>(total))));
}

int StatusBarWidget::progressPercent() const {
  if (!isBusy() || busy_->maximum() == 0) return -1;
  return busy_->value() * 100 / kProgressSteps;
}

QString StatusBarWidget::modelText() const { return model_->text(); }
QString StatusBarWidget::backendText() const { return backend_->text(); }
QString StatusBarWidget::contextText() const { return context_->text(); }
QString StatusBarWidget::speedText() const { return speed_->text(); }

}  // namespace peregrine::ui
