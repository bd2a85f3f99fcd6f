// Plain values the conversation store hands out. Times are milliseconds since the Unix epoch (UTC).
#pragma once

#include <optional>

#include <QJsonObject>
#include <QList>
#include <QString>

#include "peregrine/generation_stats.h"

namespace peregrine::app {

// Message ids start at 1; 0 means "no message" (a root message has parent 0).
inline constexpr qint64 kNoMessage = 0;

enum class Role { System, User, Assistant, Tool };
enum class MessageState {
  Complete,     // finished normally
  Streaming,    // being written right now
  Interrupted,  // the answer stopped early: the app died mid-stream, or the user stopped it
};
enum class StreamPart { Content, Thinking };

QString roleName(Role role);
std::optional<Role> roleFromName(const QString& name);
QString stateName(MessageState state);
std::optional<MessageState> stateFromName(const QString& name);

struct Message {
  qint64 id = kNoMessage;
  qint64 conversationId = 0;
  qint64 parentId = kNoMessage;
  Role role = Role::User;
  QString content;
  QString thinking;
  QString model;
  QJsonObject sampling;   // temperature, top_p, ... as used for this answer
  // The engine's numbers of an answer, as it reported them when the answer ended (stored whole
  // as JSON, so a field added to GenerationStats is stored and exported without a change here).
  // Absent for user messages and for answers that ended without them (failed, app quit).
  std::optional<peregrine::GenerationStats> stats;
  MessageState state = MessageState::Complete;
  qint64 createdMs = 0;
};

struct Conversation {
  qint64 id = 0;
  QString title;
  bool titleIsAuto = true;     // generated from the first user message, not chosen by the user
  qint64 createdMs = 0;
  qint64 updatedMs = 0;        // last activity
  QJsonObject settings;        // per-chat settings: system prompt, sampling, thinking, MTP
  qint64 currentLeafId = kNoMessage;
  bool deleted = false;        // soft-deleted, restorable until purged
};

// The branches at one point of the tree: messages sharing a parent, oldest first.
// Drives the "◀ 2/3 ▶" control: position is index + 1 of ids.size().
struct Siblings {
  QList<qint64> ids;
  int index = -1;
};

struct SearchHit {
  Conversation conversation;
  bool titleMatches = false;
  qint64 messageId = kNoMessage;  // first message whose content matches, if any
  QString snippet;                // text around that match (or the title)
};

}  // namespace peregrine::app
