#include "ui/error_banner.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QToolButton>

#include "ui/theme.h"

namespace peregrine::ui {

ErrorBanner::ErrorBanner(QWidget* parent)
    : QFrame(parent), label_(new QLabel), close_(new QToolButton) {
  setObjectName(QStringLiteral("errorBanner"));
  setAccessibleName(tr("Error"));
  label_->setObjectName(QStringLiteral("errorBannerText"));
  label_->setWordWrap(true);
  label_->setTextFormat(Qt::PlainText);  // paths and SQLite's words, never markup
  label_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  close_->setObjectName(QStringLiteral("errorBannerClose"));
  close_->setText(QStringLiteral("\u00d7"));
  close_->setToolTip(tr("Close this message"));
  close_->setAutoRaise(true);
  connect(close_, &QToolButton::clicked, this, &ErrorBanner::dismiss);

  auto* layout = new QHBoxLayout(this);
  layout->setContentsMargins(10, 6, 4, 6);
  layout->addWidget(label_, 1);
  layout->addWidget(close_, 0, Qt::AlignTop);

  // A red tint of the window's own colours, so it reads as a warning in the light and dark themes.
  const QPalette base = palette();
  const QColor background = mix(base.color(QPalette::Window), QColor(0xd0, 0x30, 0x30), 0.25);
  setStyleSheet(QStringLiteral("#errorBanner { background: %1; border-top: 1px solid %2; }")
                    .arg(background.name(), mix(background, QColor(0xd0, 0x30, 0x30), 0.5).name()));
  hide();
}

void ErrorBanner::showMessage(const QString& text) {
  label_->setText(text);
  show();
}

QString ErrorBanner::message() const { return label_->text(); }

void ErrorBanner::dismiss() {
  label_->clear();
  hide();
}

}  // namespace peregrine::ui
