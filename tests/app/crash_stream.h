// The answer the crash helper streams, shared with the test that checks what survived.
#pragma once

#include <QString>

namespace peregrine::app::test {

inline QString crashStreamChunk(int index) {
  return QStringLiteral("word%1 ").arg(index);
}

// The start of the stream, at least minChars long.
inline QString crashStreamText(qsizetype minChars) {
  QString text;
  for (int i = 0; text.size() < minChars; ++i) text += crashStreamChunk(i);
  return text;
}

inline const QString kCrashThinking = QStringLiteral("Thinking before the answer.");
inline const QString kCrashQuestion = QStringLiteral("Tell me a long story");

}  // namespace peregrine::app::test
