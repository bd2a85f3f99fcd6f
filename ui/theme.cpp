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

namespace {

// The colours one theme sets; both palettes are built by the same code from these.
struct ThemeColors {
  QColor window, text, base, alternateBase, button, highlight, link, toolTipBase, placeholder, disabled;
};

QPalette paletteFrom(const ThemeColors& c) {
  QPalette p;
  p.setColor(QPalette::Window, c.window);
  p.setColor(QPalette::WindowText, c.text);
  p.setColor(QPalette::Base, c.base);
  p.setColor(QPalette::AlternateBase, c.alternateBase);
  p.setColor(QPalette::Text, c.text);
  p.setColor(QPalette::Button, c.button);
  p.setColor(QPalette::ButtonText, c.text);
  p.setColor(QPalette::Highlight, c.highlight);
  p.setColor(QPalette::HighlightedText, Qt::white);
  p.setColor(QPalette::Link, c.link);
  p.setColor(QPalette::ToolTipBase, c.toolTipBase);
  p.setColor(QPalette::ToolTipText, c.text);
  p.setColor(QPalette::PlaceholderText, c.placeholder);
  p.setColor(QPalette::Disabled, QPalette::Text, c.disabled);
  p.setColor(QPalette::Disabled, QPalette::ButtonText, c.disabled);
  p.setColor(QPalette::Disabled, QPalette::WindowText, c.disabled);
  return p;
}

}  // namespace

QPalette lightPalette() {
  return paletteFrom({QColor(0xf5, 0xf5, 0xf7), QColor(0x1d, 0x1d, 0x1f), QColor(0xff, 0xff, 0xff),
                      QColor(0xee, 0xee, 0xf2), QColor(0xea, 0xea, 0xee), QColor(0x2f, 0x6f, 0xeb),
                      QColor(0x1a, 0x5f, 0xd0), QColor(0xff, 0xff, 0xe8), QColor(0x8a, 0x8a, 0x90),
                      QColor(0x9a, 0x9a, 0xa0)});
}

QPalette darkPalette() {
  return paletteFrom({QColor(0x1e, 0x1f, 0x22), QColor(0xe6, 0xe6, 0xe8), QColor(0x26, 0x27, 0x2b),
                      QColor(0x2c, 0x2d, 0x32), QColor(0x33, 0x34, 0x39), QColor(0x3d, 0x7b, 0xf0),
                      QColor(0x7a, 0xaa, 0xff), QColor(0x33, 0x34, 0x39), QColor(0x80, 0x80, 0x88),
                      QColor(0x70, 0x70, 0x78)});
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
