// Conversation titles generated from the first user message.
#pragma once

#include <QString>

namespace peregrine::app {

// The first non-empty line, Markdown markers and extra spaces removed, cut at a word boundary to
// at most maxChars characters (with "…"). "New chat" when nothing usable remains.
QString titleFromMessage(const QString& text, int maxChars = 60);

}  // namespace peregrine::app
