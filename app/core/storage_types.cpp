#include "core/storage_types.h"

#include "core/store_rows.h"

#include "peregrine/log.h"

namespace peregrine::app {

QString roleName(Role role) {
  switch (role) {
    case Role::System: return QStringLiteral("system");
    case Role::User: return QStringLiteral("user");
    case Role::Assistant: return QStringLiteral("assistant");
    case Role::Tool: return QStringLiteral("tool");
  }
  return {};
}

std::optional<Role> roleFromName(const QString& name) {
  for (Role role : {Role::System, Role::User, Role::Assistant, Role::Tool})
    if (roleName(role) == name) return role;
  return std::nullopt;
}

QString stateName(MessageState state) {
  switch (state) {
    case MessageState::Complete: return QStringLiteral("complete");
    case MessageState::Streaming: return QStringLiteral("streaming");
    case MessageState::Interrupted: return QStringLiteral("interrupted");
  }
  return {};
}

std::optional<MessageState> stateFromName(const QString& name) {
  for (MessageState state :
       {MessageState::Complete, MessageState::Streaming, MessageState::Interrupted})
    if (stateName(state) == name) return state;
  return std::nullopt;
}

Conversation readConversation(const Statement& row) {
  Conversation c;
  c.id = row.int64(0);
  c.title = row.text(1);
  c.titleIsAuto = row.int64(2) != 0;
  c.createdMs = row.int64(3);
  c.updatedMs = row.int64(4);
  c.settings = fromJsonText(row.text(5));
  c.currentLeafId = row.optionalInt64(6).value_or(kNoMessage);
  c.deleted = !row.isNull(7);
  return c;
}

std::optional<peregrine::GenerationStats> statsFromJson(qint64 messageId, const QString& json) {
  try {
    return peregrine::generation_stats_from_json(json.toStdString());
  } catch (const std::exception& e) {
    // Edited by hand or damaged: the message stays readable, without its numbers.
    peregrine::log::get("storage")->warn("message {}: statistics unreadable ({}); shown without them",
                                         messageId, e.what());
    return std::nullopt;
  }
}

std::optional<QString> statsToJson(const std::optional<peregrine::GenerationStats>& stats) {
  if (!stats) return std::nullopt;
  return QString::fromStdString(peregrine::generation_stats_to_json(*stats));
}

Message readMessage(const Statement& row) {
  Message m;
  m.id = row.int64(0);
  m.conversationId = row.int64(1);
  m.parentId = row.optionalInt64(2).value_or(kNoMessage);
  // The CHECK constraints keep role and state to known names.
  m.role = roleFromName(row.text(3)).value_or(Role::User);
  m.content = row.text(4);
  m.thinking = row.text(5);
  m.model = row.text(6);
  m.sampling = fromJsonText(row.text(7));
  if (!row.isNull(8)) m.stats = statsFromJson(m.id, row.text(8));
  m.state = stateFromName(row.text(9)).value_or(MessageState::Interrupted);
  m.createdMs = row.int64(10);
  return m;
}

}  // namespace peregrine::app
