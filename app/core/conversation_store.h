// Conversations and their messages in one SQLite file (see docs/storage.md).
//
// Messages form a tree per conversation: editing a user message or regenerating an answer adds a
// sibling (same parent) instead of replacing anything, and the conversation remembers the leaf
// of the branch on screen. A user message is committed before appendUserMessage returns. Answer
// text arrives token by token: appendStreamText buffers it and writes it in small transactions
// (flushIfDue / flush), so a crash loses at most the last flush interval; on the next open, answers
// left "streaming" are marked "interrupted" with their partial text kept.
//
// Not thread-safe: one store per thread (the GUI thread); all calls are short.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>

#include <QElapsedTimer>
#include <QJsonObject>
#include <QList>
#include <QString>

#include "core/database_location.h"
#include "core/sqlite_db.h"
#include "core/storage_recovery.h"
#include "core/storage_types.h"

namespace peregrine::app {

struct StoreOptions {
  // Rotating backups, one per start. Empty directory: "<database folder>/backups". 0 disables them.
  QString backupDirectory;
  int backupsToKeep = 5;
  // Streamed text waits in memory at most this long before flushIfDue writes it.
  std::chrono::milliseconds flushInterval{250};
  // Wall clock for created/updated times (tests inject a deterministic one).
  std::function<qint64()> clockMs;
  // Whether a path may be written (tests inject a read-only folder; root ignores permissions).
  WriteAccessProbe writeAccess;
};

class ConversationStore {
 public:
  // Opens or creates the database; checks, repairs and migrates it (see openReport()).
  // Throws peregrine::Error when the file cannot be used at all (a folder in its place, a
  // read-only folder or file, written by a newer version, ...); such a file is never modified.
  explicit ConversationStore(const QString& path, StoreOptions options = {});
  // Writes pending streamed text.
  ~ConversationStore();
  ConversationStore(const ConversationStore&) = delete;
  ConversationStore& operator=(const ConversationStore&) = delete;

  // What happened while opening: show userMessage() when needsAttention().
  const OpenReport& openReport() const { return report_; }
  const QString& path() const { return db_.path(); }

  // ---- conversations ----
  qint64 createConversation(const QString& title = {}, const QJsonObject& settings = {});
  void renameConversation(qint64 conversationId, const QString& title);
  void setConversationSettings(qint64 conversationId, const QJsonObject& settings);
  // Soft delete: hidden from list and search until restored or purged.
  void deleteConversation(qint64 conversationId);
  void restoreConversation(qint64 conversationId);
  // Removes for good the conversations deleted before cutoffMs. Returns how many. The app calls
  // it at start with a cutoff kDeletedKeptDays ago.
  int purgeDeletedBefore(qint64 cutoffMs);
  static constexpr int kDeletedKeptDays = 30;
  std::optional<Conversation> conversation(qint64 conversationId) const;
  // Conversations not deleted, most recent activity first.
  QList<Conversation> listConversations() const;
  // Conversations whose title or message text contains query (case-insensitive, Unicode),
  // most recent activity first.
  QList<SearchHit> search(const QString& query, int limit = 200) const;

  // ---- messages ----
  // Adds a user message under parentId (kNoMessage for the first one) and makes it the current
  // leaf. Committed before returning. The first user message names an untitled conversation.
  qint64 appendUserMessage(qint64 conversationId, qint64 parentId, const QString& content);
  // Starts an answer under parentId in state Streaming and makes it the current leaf.
  qint64 beginAssistantMessage(qint64 conversationId, qint64 parentId, const QString& model,
                               const QJsonObject& sampling = {});
  // Buffers streamed text; writes it when the oldest buffered text is older than the interval.
  void appendStreamText(qint64 messageId, const QString& text,
                        StreamPart part = StreamPart::Content);
  // Call from a timer (e.g. every 100 ms) so text is written even when tokens stall.
  // Returns true when something was written.
  bool flushIfDue();
  // Writes all buffered text now, in one transaction.
  void flush();
  bool hasPendingText() const { return !pending_.empty(); }
  // Writes the rest of the text, the statistics (the engine's, whole; nothing when the answer
  // ended without them) and the final state (Complete, or Interrupted when the user stopped it).
  void finishAssistantMessage(qint64 messageId, const std::optional<peregrine::GenerationStats>& stats,
                              MessageState finalState = MessageState::Complete);

  // As stored (text still buffered by appendStreamText is not included until flushed).
  std::optional<Message> message(qint64 messageId) const;
  // Every message of the conversation, all branches, in creation order.
  QList<Message> messages(qint64 conversationId) const;
  // From the root down to leafId.
  QList<Message> pathTo(qint64 leafId) const;
  // The branch on screen: pathTo(current leaf).
  QList<Message> currentPath(qint64 conversationId) const;
  Siblings siblings(qint64 messageId) const;
  // Follows the newest child from messageId down to a leaf (switching branches with ◀ ▶).
  qint64 newestLeafUnder(qint64 messageId) const;
  void setCurrentLeaf(qint64 conversationId, qint64 leafId);

  // ---- application settings (key/value) ----
  QString setting(const QString& key, const QString& fallback = {}) const;
  void setSetting(const QString& key, const QString& value);
  void removeSetting(const QString& key);

  // Writes a backup now (also done once per start). Returns its path.
  QString backupNow();

  // ---- failures on purpose (tests) ----
  // A full disk without filling one: while on, the file cannot grow past the pages it has (PRAGMA
  // max_page_count), so a write that needs a new page fails with SQLITE_FULL, as it does when the
  // file system is full. Off restores the limit it had.
  void simulateFullDisk(bool full);
  // While on, every write fails with SQLITE_READONLY (PRAGMA query_only), as on a file that has
  // become read-only.
  void simulateReadOnly(bool readOnly);

 private:
  struct PendingText {
    QString content;
    QString thinking;
    QElapsedTimer age;  // since the oldest unwritten piece arrived
  };

  qint64 now() const;
  void touch(qint64 conversationId, qint64 leafId);
  Message requireMessage(qint64 messageId) const;
  void requireConversation(qint64 conversationId) const;
  void checkParent(qint64 conversationId, qint64 parentId) const;
  int markInterruptedStreams();
  void writePending();

  StoreOptions options_;
  OpenReport report_;
  BackupSet backups_;
  Database db_;
  std::map<qint64, PendingText> pending_;
  qint64 maxPageCountBeforeFull_ = 0;  // simulateFullDisk: the limit to restore (0: not on)
};

}  // namespace peregrine::app
