// Light and dark palettes for the window, and the colours the chat derives from the palette, so that
// every widget follows whichever palette is active (the system's, or one chosen in the app).
#pragma once

#include <QColor>
#include <QPalette>

class QApplication;

namespace peregrine::ui {

// Dark when the window background is dark; code highlighting and message styles follow this.
bool isDarkPalette(const QPalette& palette);

// Fusion style with a light or dark palette (Fusion draws the same on every desktop, so the two
// palettes look as intended on any system).
void applyTheme(QApplication& app, bool dark);
QPalette lightPalette();
QPalette darkPalette();

// a blended towards b by t (0..1).
QColor mix(const QColor& a, const QColor& b, double t);

// Background of the user's messages and of inline code: a tint of the highlight colour.
QColor userBubbleColor(const QPalette& palette);
QColor inlineCodeColor(const QPalette& palette);
QColor subtleBorderColor(const QPalette& palette);

}  // namespace peregrine::ui
