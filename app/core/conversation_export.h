// Exporting one conversation: Markdown (the branch on screen, for reading and sharing) and JSON
// (everything, all branches, for archiving or importing elsewhere).
#pragma once

#include <QByteArray>
#include <QString>

#include "core/conversation_store.h"

namespace peregrine::app {

// The current branch as Markdown: the title, then each message under a "User" / "Assistant"
// heading; thinking in a collapsed <details> block; model and statistics under each answer.
// Throws peregrine::Error for an unknown conversation.
QString exportMarkdown(const ConversationStore& store, qint64 conversationId);

// {"format": "peregrine.conversation", "version": 2, "conversation": {...},
//  "messages": [every message with its parent_id], "current_path": [ids root..leaf]}
// A message's "stats" is the engine's GenerationStats object (generation_stats_to_json: every
// field) or null. Version 1 had five flat statistics keys instead.
inline constexpr int kExportJsonVersion = 2;
QByteArray exportJson(const ConversationStore& store, qint64 conversationId);

}  // namespace peregrine::app
