// Internal to the store: the column lists of the row types and how rows become values.
#pragma once

#include <QJsonDocument>
#include <QJsonObject>

#include "core/sqlite_db.h"
#include "core/storage_types.h"

namespace peregrine::app {

inline constexpr const char* kConversationColumns =
    "SELECT id, title, title_is_auto, created_ms, updated_ms, settings_json, current_leaf_id, "
    "deleted_ms";

inline constexpr const char* kMessageColumns =
    "SELECT id, conversation_id, parent_id, role, content, thinking, model, sampling_json, "
    "stats_json, state, created_ms";

inline QString toJsonText(const QJsonObject& object) {
  return QString::fromUtf8(QJsonDocument(object).toJson(QJsonDocument::Compact));
}

// A column that is not a JSON object (edited by hand, say) reads as an empty object.
inline QJsonObject fromJsonText(const QString& text) {
  return QJsonDocument::fromJson(text.toUtf8()).object();
}

// messages.stats_json: GenerationStats as generation_stats_to_json() writes it. Text that does not
// parse gives no statistics (and a warning), never an unreadable message.
std::optional<peregrine::GenerationStats> statsFromJson(qint64 messageId, const QString& json);
// Nothing (stored as NULL) when there are no statistics.
std::optional<QString> statsToJson(const std::optional<peregrine::GenerationStats>& stats);

Conversation readConversation(const Statement& row);
Message readMessage(const Statement& row);

}  // namespace peregrine::app
