#include "ui/theme.h"

#include <QApplication>
#include <QStyleFactory>

namespace peregrine::ui {

bool isDarkPalette(const QPalette& palette) {
  return palette.color(QPalette::Window).lightness() < 128;
}

QColor mix(const QColor& a, const QColor& b, double t) {
  auto channel = [t](int x, int y) { return static_cast<int>(x + (y - x) * t + 0.5); };
  return QColor(channel(a.red(), b.red()), channel(a.green(), b.green()),
                channel(a.blue(), b.blue()));
}

QPalette lightPalette() {
  QPalette p;
  p.setColor(QPalette::Window, QColor(0xf5, 0xf5, 0xf7));
  p.setColor(QPalette::WindowText, QColor(0x1d, 0x1d, 0x1f));
  p.setColor(QPalette::Base, QColor(0xff, 0xff, 0xff));
  p.setColor(QPalette::AlternateBase, QColor(0xee, 0xee, 0xf2));
  p.setColor(QPalette::Text, QColor(0x1d, 0x1d, 0x1f));
  p.setColor(QPalette::Button, QColor(0xea, 0xea, 0xee));
  p.setColor(QPalette::ButtonText, QColor(0x1d, 0x1d, 0x1f));
  p.setColor(QPalette::Highlight, QColor(0x2f, 0x6f, 0xeb));
  p.setColor(QPalette::HighlightedText, Qt::white);
  p.setColor(QPalette::Link, QColor(0x1a, 0x5f, 0xd0));
  p.setColor(QPalette::ToolTipBase, QColor(0xff, 0xff, 0xe8));
  p.setColor(QPalette::ToolTipText, QColor(0x1d, 0x1d, 0x1f));
  p.setColor(QPalette::PlaceholderText, QColor(0x8a, 0x8a, 0x90));
  p.setColor(QPalette::Disabled, QPalette::Text, QColor(0x9a, 0x9a, 0xa0));
  p.setColor(QPalette::Disabled, QPalette::ButtonText, QColor(0x9a, 0x9a, 0xa0));
  p.setColor(QPalette::Disabled, QPalette::WindowText, QColor(0x9a, 0x9a, 0xa0));
  return p;
}

QPalette darkPalette() {
  QPalette p;
  p.setColor(QPalette::Window, QColor(0x1e, 0x1f, 0x22));
  p.setColor(QPalette::WindowText, QColor(0xe6, 0xe6, 0xe8));
  p.setColor(QPalette::Base, QColor(0x26, 0x27, 0x2b));
  p.setColor(QPalette::AlternateBase, QColor(0x2c, 0x2d, 0x32));
  p.setColor(QPalette::Text, QColor(0xe6, 0xe6, 0xe8));
  p.setColor(QPalette::Button, QColor(0x33, 0x34, 0x39));
  p.setColor(QPalette::ButtonText, QColor(0xe6, 0xe6, 0xe8));
  p.setColor(QPalette::Highlight, QColor(0x3d, 0x7b, 0xf0));
  p.setColor(QPalette::HighlightedText, Qt::white);
  p.setColor(QPalette::Link, QColor(0x7a, 0xaa, 0xff));
  p.setColor(QPalette::ToolTipBase, QColor(0x33, 0x34, 0x39));
  p.setColor(QPalette::ToolTipText, QColor(0xe6, 0xe6, 0xe8));
  p.setColor(QPalette::PlaceholderText, QColor(0x80, 0x80, 0x88));
  p.setColor(QPalette::Disabled, QPalette::Text, QColor(0x70, 0x70, 0x78));
  p.setColor(QPalette::Disabled, QPalette::ButtonText, QColor(0x70, 0x70, 0x78));
  p.setColor(QPalette::Disabled, QPalette::WindowText, QColor(0x70, 0x70, 0x78));
  return p;
}

void applyTheme(QApplication& app, bool dark) {
  if (QStyle* fusion = QStyleFactory::create(QStringLiteral("Fusion"))) app.setStyle(fusion);
  app.setPalette(dark ? darkPalette() : lightPalette());
}

QColor userBubbleColor(const QPalette& palette) {
  return mix(palette.color(QPalette::Base), palette.color(QPalette::Highlight),
             isDarkPalette(palette) ? 0.16 : 0.10);
}

QColor inlineCodeColor(const QPalette& palette) {
  return mix(palette.color(QPalette::Window), palette.color(QPalette::WindowText),
             isDarkPalette(palette) ? 0.14 : 0.08);
}

QColor subtleBorderColor(const QPalette& palette) {
  return mix(palette.color(QPalette::Window), palette.color(QPalette::WindowText), 0.22);
}

}  // namespace peregrine::ui
