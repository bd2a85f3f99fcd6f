// ConversationStore: opening, conversations, search, settings, backups.
// Messages, streaming and branches are in conversation_store_messages.cpp.
#include "core/conversation_store.h"

#include <utility>

#include <QDateTime>
#include <QDir>
#include <QFileInfo>
#include <QJsonDocument>

#include "core/schema.h"
#include "core/store_rows.h"
#include "peregrine/log.h"

namespace peregrine::app {
namespace {

QString defaultBackupDirectory(const QString& databasePath) {
  return QFileInfo(databasePath).absoluteDir().filePath(QStringLiteral("backups"));
}

QString checkedLocation(const QString& path, const WriteAccessProbe& probe) {
  prepareDatabaseLocation(path, probe);
  return path;
}

// A snippet of about 2 * radius characters around the first match of query in text.
QString snippetAround(const QString& text, const QString& query, int radius = 60) {
  const int at = static_cast<int>(text.indexOf(query, 0, Qt::CaseInsensitive));
  if (at < 0) return text.left(2 * radius).simplified();
  const int start = std::max(0, at - radius);
  const int end = std::min(static_cast<int>(text.size()), at + static_cast<int>(query.size()) + radius);
  QString snippet = text.mid(start, end - start).simplified();
  if (start > 0) snippet.prepend(QChar(0x2026));
  if (end < text.size()) snippet.append(QChar(0x2026));
  return snippet;
}

}  // namespace

ConversationStore::ConversationStore(const QString& path, StoreOptions options)
    : options_(std::move(options)),
      backups_(path,
               options_.backupDirectory.isEmpty() ? defaultBackupDirectory(path)
                                                  : options_.backupDirectory,
               options_.backupsToKeep),
      db_(openChecked(checkedLocation(path, options_.writeAccess), backups_, report_)) {
  auto log = peregrine::log::get("storage");
  // Durability first: a commit survives a power cut, not only a crash. WAL keeps it cheap.
  db_.exec("PRAGMA journal_mode = WAL");
  db_.exec("PRAGMA synchronous = FULL");
  db_.exec("PRAGMA foreign_keys = ON");
  db_.registerContainsFunction();

  // A file from a newer Peregrine is refused before anything (even the backup rotation) runs.
  if (db_.userVersion() > latestSchemaVersion()) migrate(db_);
  // Back up what we found before migrating it (a version-0 file holds nothing worth saving).
  // A database just restored from a backup is that backup: no second copy.
  const bool restored = report_.outcome == OpenOutcome::RestoredFromBackup ||
                        report_.outcome == OpenOutcome::RestoredAfterLoss;
  if (options_.backupsToKeep > 0 && db_.userVersion() > 0 && !restored) {
    try {
      report_.backupMade = backups_.create(db_);
    } catch (const peregrine::Error& e) {
      report_.backupError = QString::fromStdString(e.what());
      log->warn("backup at start failed: {}", e.what());
    }
  }
  migrate(db_);
  report_.interruptedMessages = markInterruptedStreams();
  log->info("{}: opened (schema version {}, {} interrupted answer(s) recovered)",
            db_.path().toStdString(), db_.userVersion(), report_.interruptedMessages);
}

ConversationStore::~ConversationStore() {
  try {
    writePending();
  } catch (const peregrine::Error& e) {
    peregrine::log::get("storage")->error("could not write the last streamed text: {}", e.what());
  }
}

qint64 ConversationStore::now() const {
  return options_.clockMs ? options_.clockMs() : QDateTime::currentMSecsSinceEpoch();
}

QString ConversationStore::backupNow() {
  writePending();
  return backups_.create(db_);
}

void ConversationStore::simulateFullDisk(bool full) {
  if (full && !maxPageCountBeforeFull_) {
    maxPageCountBeforeFull_ = db_.maxPageCount();
    db_.setMaxPageCount(1);  // SQLite raises it to the pages the file has now
  } else if (!full && maxPageCountBeforeFull_) {
    db_.setMaxPageCount(std::exchange(maxPageCountBeforeFull_, 0));
  }
}

void ConversationStore::simulateReadOnly(bool readOnly) {
  db_.exec(readOnly ? "PRAGMA query_only = ON" : "PRAGMA query_only = OFF");
}

int ConversationStore::markInterruptedStreams() {
  Statement update = db_.prepare(
      "UPDATE messages SET state = 'interrupted' WHERE state = 'streaming'");
  update.run();
  const int count = db_.changes();
  if (count > 0)
    peregrine::log::get("storage")->warn("{} answer(s) were cut off by a crash; kept as interrupted",
                                         count);
  return count;
}

// ---- conversations ----------------------------------------------------------------------------

qint64 ConversationStore::createConversation(const QString& title, const QJsonObject& settings) {
  const qint64 t = now();
  Statement insert = db_.prepare(
      "INSERT INTO conversations (title, title_is_auto, created_ms, updated_ms, settings_json) "
      "VALUES (?1, ?2, ?3, ?3, ?4)");
  insert.bind(1, title).bind(2, title.isEmpty() ? 1 : 0).bind(3, t).bind(4, toJsonText(settings));
  insert.run();
  return db_.lastInsertId();
}

void ConversationStore::requireConversation(qint64 conversationId) const {
  Statement query = db_.prepare("SELECT 1 FROM conversations WHERE id = ?1");
  query.bind(1, conversationId);
  if (!query.step())
    throw peregrine::Error(db_.path().toStdString() + ": no conversation with id " +
                           std::to_string(conversationId));
}

void ConversationStore::renameConversation(qint64 conversationId, const QString& title) {
  requireConversation(conversationId);
  Statement update =
      db_.prepare("UPDATE conversations SET title = ?2, title_is_auto = 0 WHERE id = ?1");
  update.bind(1, conversationId).bind(2, title.trimmed());
  update.run();
}

void ConversationStore::setConversationSettings(qint64 conversationId, const QJsonObject& settings) {
  requireConversation(conversationId);
  Statement update = db_.prepare("UPDATE conversations SET settings_json = ?2 WHERE id = ?1");
  update.bind(1, conversationId).bind(2, toJsonText(settings));
  update.run();
}

void ConversationStore::deleteConversation(qint64 conversationId) {
  requireConversation(conversationId);
  Statement update = db_.prepare(
      "UPDATE conversations SET deleted_ms = ?2 WHERE id = ?1 AND deleted_ms IS NULL");
  update.bind(1, conversationId).bind(2, now());
  update.run();
}

void ConversationStore::restoreConversation(qint64 conversationId) {
  requireConversation(conversationId);
  Statement update = db_.prepare("UPDATE conversations SET deleted_ms = NULL WHERE id = ?1");
  update.bind(1, conversationId);
  update.run();
}

int ConversationStore::purgeDeletedBefore(qint64 cutoffMs) {
  writePending();
  Transaction transaction(db_);
  Statement remove = db_.prepare(
      "DELETE FROM conversations WHERE deleted_ms IS NOT NULL AND deleted_ms < ?1");
  remove.bind(1, cutoffMs);
  remove.run();
  const int count = db_.changes();
  transaction.commit();
  if (count) peregrine::log::get("storage")->info("purged {} deleted conversation(s) for good", count);
  return count;
}

std::optional<Conversation> ConversationStore::conversation(qint64 conversationId) const {
  Statement query = db_.prepare(std::string(kConversationColumns) +
                                " FROM conversations WHERE id = ?1");
  query.bind(1, conversationId);
  if (!query.step()) return std::nullopt;
  return readConversation(query);
}

QList<Conversation> ConversationStore::listConversations() const {
  Statement query = db_.prepare(std::string(kConversationColumns) +
                                " FROM conversations WHERE deleted_ms IS NULL"
                                " ORDER BY updated_ms DESC, id DESC");
  QList<Conversation> result;
  while (query.step()) result << readConversation(query);
  return result;
}

QList<SearchHit> ConversationStore::search(const QString& query, int limit) const {
  const QString needle = query.trimmed();
  QList<SearchHit> hits;
  if (needle.isEmpty()) return hits;
  Statement conversations = db_.prepare(
      std::string(kConversationColumns) +
      " FROM conversations c WHERE deleted_ms IS NULL AND ("
      "   peregrine_contains(title, ?1) OR EXISTS (SELECT 1 FROM messages m"
      "     WHERE m.conversation_id = c.id AND peregrine_contains(m.content, ?1)))"
      " ORDER BY updated_ms DESC, id DESC LIMIT ?2");
  conversations.bind(1, needle).bind(2, limit);
  while (conversations.step()) {
    SearchHit hit;
    hit.conversation = readConversation(conversations);
    hit.titleMatches = hit.conversation.title.contains(needle, Qt::CaseInsensitive);
    Statement first = db_.prepare(
        "SELECT id, content FROM messages WHERE conversation_id = ?1 AND "
        "peregrine_contains(content, ?2) ORDER BY id LIMIT 1");
    first.bind(1, hit.conversation.id).bind(2, needle);
    if (first.step()) {
      hit.messageId = first.int64(0);
      hit.snippet = snippetAround(first.text(1), needle);
    } else {
      hit.snippet = hit.conversation.title;
    }
    hits << hit;
  }
  return hits;
}

// ---- settings ---------------------------------------------------------------------------------

QString ConversationStore::setting(const QString& key, const QString& fallback) const {
  Statement query = db_.prepare("SELECT value FROM settings WHERE key = ?1");
  query.bind(1, key);
  return query.step() ? query.text(0) : fallback;
}

void ConversationStore::setSetting(const QString& key, const QString& value) {
  Statement upsert = db_.prepare(
      "INSERT INTO settings (key, value) VALUES (?1, ?2) "
      "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
  upsert.bind(1, key).bind(2, value);
  upsert.run();
}

void ConversationStore::removeSetting(const QString& key) {
  Statement remove = db_.prepare("DELETE FROM settings WHERE key = ?1");
  remove.bind(1, key);
  remove.run();
}

}  // namespace peregrine::app
