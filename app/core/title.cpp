#include "core/title.h"

#include <QRegularExpression>
#include <QStringList>

namespace peregrine::app {

QString titleFromMessage(const QString& text, int maxChars) {
  static const QRegularExpression leadingMarkers(
      QStringLiteral("^(?:#{1,6}\\s+|>\\s*|[-*+]\\s+|\\d+[.)]\\s+)+"));
  static const QRegularExpression spaces(QStringLiteral("\\s+"));
  QString line;
  bool inFence = false;
  for (const QString& raw : text.split(QLatin1Char('\n'))) {
    const QString trimmed = raw.trimmed();
    // A message that starts with a code block is titled by its first prose line, if any.
    if (trimmed.startsWith(QLatin1String("```"))) {
      inFence = !inFence;
      continue;
    }
    if (inFence || trimmed.isEmpty()) continue;
    line = trimmed;
    break;
  }
  if (line.isEmpty()) {
    // Only code: use its first line rather than nothing.
    for (const QString& raw : text.split(QLatin1Char('\n'))) {
      const QString trimmed = raw.trimmed();
      if (!trimmed.isEmpty() && !trimmed.startsWith(QLatin1String("```"))) {
        line = trimmed;
        break;
      }
    }
  }
  line.remove(leadingMarkers);
  line.replace(spaces, QStringLiteral(" "));
  line.remove(QLatin1Char('`'));
  line.remove(QStringLiteral("**"));
  line = line.trimmed();
  if (line.isEmpty()) return QStringLiteral("New chat");
  if (line.size() <= maxChars) return line;
  QString cut = line.left(maxChars - 1);
  const int lastSpace = cut.lastIndexOf(QLatin1Char(' '));
  // Cut at a word boundary unless that would drop most of the text (one very long word).
  if (lastSpace > maxChars / 2) cut.truncate(lastSpace);
  while (!cut.isEmpty() && (cut.back().isSpace() || cut.back().isPunct())) cut.chop(1);
  return cut + QChar(0x2026);
}

}  // namespace peregrine::app
