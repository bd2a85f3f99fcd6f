// ConversationStore: messages, streamed answers and branches.
#include "core/conversation_store.h"
#include "core/store_rows.h"
#include "core/title.h"
#include "peregrine/log.h"

namespace peregrine::app {

Message ConversationStore::requireMessage(qint64 messageId) const {
  auto found = message(messageId);
  if (!found)
    throw peregrine::Error(db_.path().toStdString() + ": no message with id " +
                           std::to_string(messageId));
  return *found;
}

void ConversationStore::checkParent(qint64 conversationId, qint64 parentId) const {
  requireConversation(conversationId);
  if (parentId == kNoMessage) return;
  const Message parent = requireMessage(parentId);
  if (parent.conversationId != conversationId)
    throw peregrine::Error(db_.path().toStdString() + ": message " + std::to_string(parentId) +
                           " belongs to conversation " + std::to_string(parent.conversationId) +
                           ", not to conversation " + std::to_string(conversationId));
}

// Last activity (the list's sort key) and, when leafId is set, the branch on screen.
void ConversationStore::touch(qint64 conversationId, qint64 leafId) {
  Statement update = db_.prepare(
      "UPDATE conversations SET updated_ms = ?2,"
      " current_leaf_id = CASE WHEN ?3 = 0 THEN current_leaf_id ELSE ?3 END WHERE id = ?1");
  update.bind(1, conversationId).bind(2, now()).bind(3, leafId);
  update.run();
}

qint64 ConversationStore::appendUserMessage(qint64 conversationId, qint64 parentId,
                                            const QString& content) {
  checkParent(conversationId, parentId);
  Transaction transaction(db_);
  Statement insert = db_.prepare(
      "INSERT INTO messages (conversation_id, parent_id, role, content, state, created_ms)"
      " VALUES (?1, ?2, 'user', ?3, 'complete', ?4)");
  insert.bind(1, conversationId)
      .bind(2, parentId == kNoMessage ? std::optional<qint64>() : parentId)
      .bind(3, content)
      .bind(4, now());
  insert.run();
  const qint64 id = db_.lastInsertId();
  touch(conversationId, id);
  if (parentId == kNoMessage) {
    // The first message (or an edit of it) names the conversation until the user renames it.
    Statement title = db_.prepare(
        "UPDATE conversations SET title = ?2 WHERE id = ?1 AND title_is_auto = 1");
    title.bind(1, conversationId).bind(2, titleFromMessage(content));
    title.run();
  }
  transaction.commit();
  return id;
}

qint64 ConversationStore::beginAssistantMessage(qint64 conversationId, qint64 parentId,
                                                const QString& model, const QJsonObject& sampling) {
  checkParent(conversationId, parentId);
  Transaction transaction(db_);
  Statement insert = db_.prepare(
      "INSERT INTO messages (conversation_id, parent_id, role, model, sampling_json, state,"
      " created_ms) VALUES (?1, ?2, 'assistant', ?3, ?4, 'streaming', ?5)");
  insert.bind(1, conversationId)
      .bind(2, parentId == kNoMessage ? std::optional<qint64>() : parentId)
      .bind(3, model)
      .bind(4, toJsonText(sampling))
      .bind(5, now());
  insert.run();
  const qint64 id = db_.lastInsertId();
  touch(conversationId, id);
  transaction.commit();
  return id;
}

void ConversationStore::appendStreamText(qint64 messageId, const QString& text, StreamPart part) {
  if (text.isEmpty()) return;
  auto it = pending_.find(messageId);
  if (it == pending_.end()) {
    const Message target = requireMessage(messageId);
    if (target.state != MessageState::Streaming)
      throw peregrine::Error(db_.path().toStdString() + ": message " + std::to_string(messageId) +
                             " is " + stateName(target.state).toStdString() +
                             ", not streaming; text cannot be appended");
    it = pending_.emplace(messageId, PendingText{}).first;
    it->second.age.start();
  }
  (part == StreamPart::Content ? it->second.content : it->second.thinking) += text;
  flushIfDue();
}

bool ConversationStore::flushIfDue() {
  for (const auto& [id, text] : pending_) {
    if (text.age.hasExpired(options_.flushInterval.count())) {
      writePending();
      return true;
    }
  }
  return false;
}

void ConversationStore::flush() { writePending(); }

void ConversationStore::writePending() {
  if (pending_.empty()) return;
  try {
    Transaction transaction(db_);
    Statement append = db_.prepare(
        "UPDATE messages SET content = content || ?2, thinking = thinking || ?3 WHERE id = ?1");
    for (const auto& [id, text] : pending_) {
      append.bind(1, id).bind(2, text.content).bind(3, text.thinking);
      append.run();
      if (db_.changes() != 1)
        peregrine::log::get("storage")->warn("streamed text for message {} had no row to go to", id);
    }
    transaction.commit();
  } catch (const peregrine::Error&) {
    // Kept for the next flush (a full disk may have room again by then), which waits a whole
    // interval: flushIfDue does not try again at every token.
    for (auto& [id, text] : pending_) text.age.restart();
    throw;
  }
  pending_.clear();
}

void ConversationStore::finishAssistantMessage(qint64 messageId,
                                               const std::optional<peregrine::GenerationStats>& stats,
                                               MessageState finalState) {
  const Message target = requireMessage(messageId);
  if (target.state != MessageState::Streaming)
    throw peregrine::Error(db_.path().toStdString() + ": message " + std::to_string(messageId) +
                           " is " + stateName(target.state).toStdString() +
                           ", not streaming; it cannot be finished again");
  if (finalState == MessageState::Streaming)
    throw peregrine::Error("finishAssistantMessage: the final state cannot be 'streaming'");
  writePending();
  Transaction transaction(db_);
  Statement update = db_.prepare("UPDATE messages SET stats_json = ?2, state = ?3 WHERE id = ?1");
  update.bind(1, messageId).bind(2, statsToJson(stats)).bind(3, stateName(finalState));
  update.run();
  touch(target.conversationId, kNoMessage);
  transaction.commit();
}

std::optional<Message> ConversationStore::message(qint64 messageId) const {
  Statement query = db_.prepare(std::string(kMessageColumns) + " FROM messages WHERE id = ?1");
  query.bind(1, messageId);
  if (!query.step()) return std::nullopt;
  return readMessage(query);
}

QList<Message> ConversationStore::messages(qint64 conversationId) const {
  Statement query = db_.prepare(std::string(kMessageColumns) +
                                " FROM messages WHERE conversation_id = ?1 ORDER BY id");
  query.bind(1, conversationId);
  QList<Message> result;
  while (query.step()) result << readMessage(query);
  return result;
}

QList<Message> ConversationStore::pathTo(qint64 leafId) const {
  if (leafId == kNoMessage) return {};
  requireMessage(leafId);
  // Walks parent links upwards; the depth bound stops a loop in a hand-edited file.
  Statement query = db_.prepare(
      "WITH RECURSIVE chain(mid, depth) AS ("
      "  SELECT ?1, 0"
      "  UNION ALL SELECT m.parent_id, chain.depth + 1 FROM messages m JOIN chain ON m.id = chain.mid"
      "  WHERE m.parent_id IS NOT NULL AND chain.depth < 1000000) " +
      std::string(kMessageColumns) + " FROM messages JOIN chain ON id = mid ORDER BY depth DESC");
  query.bind(1, leafId);
  QList<Message> result;
  while (query.step()) result << readMessage(query);
  return result;
}

QList<Message> ConversationStore::currentPath(qint64 conversationId) const {
  const auto owner = conversation(conversationId);
  if (!owner)
    throw peregrine::Error(db_.path().toStdString() + ": no conversation with id " +
                           std::to_string(conversationId));
  return pathTo(owner->currentLeafId);
}

Siblings ConversationStore::siblings(qint64 messageId) const {
  const Message target = requireMessage(messageId);
  Statement query = db_.prepare(
      "SELECT id FROM messages WHERE conversation_id = ?1 AND parent_id IS ?2 ORDER BY id");
  query.bind(1, target.conversationId)
      .bind(2, target.parentId == kNoMessage ? std::optional<qint64>() : target.parentId);
  Siblings result;
  while (query.step()) {
    if (query.int64(0) == messageId) result.index = static_cast<int>(result.ids.size());
    result.ids << query.int64(0);
  }
  return result;
}

qint64 ConversationStore::newestLeafUnder(qint64 messageId) const {
  requireMessage(messageId);
  Statement query = db_.prepare("SELECT MAX(id) FROM messages WHERE parent_id = ?1");
  qint64 current = messageId;
  for (;;) {
    query.bind(1, current);
    const bool hasRow = query.step();
    const std::optional<qint64> child = hasRow ? query.optionalInt64(0) : std::nullopt;
    query.run();  // finish, so the statement can be run again with a new binding
    if (!child) return current;
    current = *child;
  }
}

void ConversationStore::setCurrentLeaf(qint64 conversationId, qint64 leafId) {
  checkParent(conversationId, leafId);
  Statement update = db_.prepare("UPDATE conversations SET current_leaf_id = ?2 WHERE id = ?1");
  update.bind(1, conversationId)
      .bind(2, leafId == kNoMessage ? std::optional<qint64>() : leafId);
  update.run();
}

}  // namespace peregrine::app
