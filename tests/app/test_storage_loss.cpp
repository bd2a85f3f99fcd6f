// A lost database (the file deleted or gone) next to backups: restored from the newest good
// backup and said so; backups that are empty or damaged never count as a restore; and the
// rotation never deletes the last backup holding more conversations than the live database.
#include <gtest/gtest.h>

#include <QFileInfo>

#include "core/conversation_store.h"
#include "storage_test_util.h"

namespace peregrine::app::test {
namespace {

class LossTest : public StorageTest {
 protected:
  // One start that adds `count` conversations titled "<prefix> <i>".
  void startAdding(int count, const QString& prefix = QStringLiteral("chat")) {
    ConversationStore store(dbPath(), optionsWithBackups());
    for (int i = 0; i < count; ++i) store.createConversation(QStringLiteral("%1 %2").arg(prefix).arg(i));
  }
  void startOnce() { ConversationStore store(dbPath(), optionsWithBackups()); }

  QStringList backups() const { return BackupSet(dbPath(), backupDir(), 3).newestFirst(); }

  static qint64 conversationsIn(const QString& path) {
    Database db(path, Database::Mode::ReadOnly);
    return db.queryInt64("SELECT COUNT(*) FROM conversations");
  }

  void removeDatabase() {
    for (const char* suffix : {"", "-wal", "-shm"}) QFile::remove(dbPath() + QLatin1String(suffix));
    ASSERT_FALSE(QFileInfo::exists(dbPath()));
  }

  static void overwrite(const QString& path, const QByteArray& bytes) {
    QFile file(path);
    ASSERT_TRUE(file.open(QIODevice::WriteOnly | QIODevice::Truncate));
    ASSERT_EQ(file.write(bytes), bytes.size());
  }

  // Three backups that cannot serve: an empty file, garbage, and an SQLite file without our schema.
  void spoilEveryBackup() {
    const QStringList all = backups();
    ASSERT_EQ(all.size(), 3);
    overwrite(all[0], {});
    overwrite(all[1], QByteArray("not a database at all ").repeated(500));
    QFile::remove(all[2]);
    Database other(all[2]);
    other.exec("CREATE TABLE unrelated (x)");
  }
};

TEST_F(LossTest, AMissingDatabaseIsRestoredFromTheNewestBackup) {
  startAdding(10);                                // start 1: no backup yet (nothing to save)
  startAdding(1, QStringLiteral("late"));         // start 2: backup 1 holds 10
  startOnce();                                    // start 3: backup 2 holds 11
  const QString newest = backups().front();
  removeDatabase();

  LogCapture log;
  ConversationStore store(dbPath(), optionsWithBackups());
  const OpenReport& report = store.openReport();
  EXPECT_EQ(report.outcome, OpenOutcome::RestoredAfterLoss);
  EXPECT_EQ(report.backupUsed, newest);
  EXPECT_EQ(store.listConversations().size(), 11);
  EXPECT_TRUE(report.needsAttention());
  EXPECT_TRUE(report.userMessage().contains(QStringLiteral("missing"))) << report.userMessage().toStdString();
  EXPECT_TRUE(report.userMessage().contains(QFileInfo(newest).fileName())) << report.userMessage().toStdString();
  EXPECT_TRUE(log.contains("restored from backup " + newest.toStdString())) << log.text();
  // The restored database works, and the restore itself did not add a backup.
  store.createConversation(QStringLiteral("after"));
  EXPECT_EQ(backups().size(), 2);
}

TEST_F(LossTest, AJournalLeftByTheLostDatabaseIsMovedAsideNotReplayed) {
  startAdding(4);
  startOnce();  // backup 1: 4
  removeDatabase();
  const QByteArray leftover = QByteArray("a WAL of some other file ").repeated(200);
  overwrite(dbPath() + QStringLiteral("-wal"), leftover);

  ConversationStore store(dbPath(), optionsWithBackups());
  EXPECT_EQ(store.openReport().outcome, OpenOutcome::RestoredAfterLoss);
  EXPECT_EQ(store.listConversations().size(), 4);
  const QStringList kept = filesMatching(QStringLiteral("conversations.db-wal.orphaned-*"));
  ASSERT_EQ(kept.size(), 1);
  EXPECT_EQ(readAll(dir_.filePath(kept.front())), leftover);
}

TEST_F(LossTest, EmptyAndDamagedBackupsAreSkippedForAnOlderGoodOne) {
  startAdding(10);
  startOnce();  // backup 1: 10 (the one to restore)
  startAdding(2, QStringLiteral("later"));
  startOnce();  // backup 2: 12
  startOnce();  // backup 3: 12
  const QStringList all = backups();
  ASSERT_EQ(all.size(), 3);
  overwrite(all[0], {});
  overwrite(all[1], QByteArray("garbage ").repeated(1000));
  removeDatabase();

  LogCapture log;
  ConversationStore store(dbPath(), optionsWithBackups());
  EXPECT_EQ(store.openReport().outcome, OpenOutcome::RestoredAfterLoss);
  EXPECT_EQ(store.openReport().backupUsed, all[2]);
  EXPECT_EQ(store.listConversations().size(), 10);
  EXPECT_TRUE(log.contains(all[0].toStdString())) << "each skipped backup is named: " << log.text();
  EXPECT_TRUE(log.contains(all[1].toStdString())) << log.text();
}

TEST_F(LossTest, AMissingDatabaseWithOnlyUnusableBackupsStartsEmptyWithoutClaimingARestore) {
  startAdding(5);
  for (int i = 0; i < 3; ++i) startOnce();
  spoilEveryBackup();
  const QStringList spoiled = backups();
  removeDatabase();

  LogCapture log;
  ConversationStore store(dbPath(), optionsWithBackups());
  const OpenReport& report = store.openReport();
  EXPECT_EQ(report.outcome, OpenOutcome::ResetAfterLoss);
  EXPECT_TRUE(report.backupUsed.isEmpty());
  EXPECT_TRUE(store.listConversations().isEmpty());
  EXPECT_TRUE(report.needsAttention());
  EXPECT_FALSE(report.userMessage().contains(QStringLiteral("restored"))) << report.userMessage().toStdString();
  EXPECT_EQ(log.text().find("restored"), std::string::npos) << log.text();
  EXPECT_TRUE(log.contains("missing")) << log.text();
  EXPECT_EQ(backups(), spoiled) << "unusable backups are left as they are";
}

TEST_F(LossTest, ADamagedDatabaseWithOnlyUnusableBackupsIsNotClaimedRestored) {
  startAdding(5);
  for (int i = 0; i < 3; ++i) startOnce();
  spoilEveryBackup();
  overwrite(dbPath(), QByteArray("damaged ").repeated(2000));

  LogCapture log;
  ConversationStore store(dbPath(), optionsWithBackups());
  EXPECT_EQ(store.openReport().outcome, OpenOutcome::ResetAfterCorruption);
  EXPECT_EQ(log.text().find("restored"), std::string::npos) << log.text();
  EXPECT_TRUE(store.listConversations().isEmpty());
}

TEST_F(LossTest, RotationKeepsTheLastBackupWithMoreConversationsThanTheDatabase) {
  startAdding(10);
  startOnce();  // backup 1: the 10 chats
  {
    // The history is lost some other way than a missing file (say, replaced by an empty copy).
    Database db(dbPath());
    db.exec("DELETE FROM conversations");
  }
  LogCapture log;
  for (int i = 0; i < 5; ++i) startOnce();  // five backups of the empty history
  QStringList all = backups();
  ASSERT_EQ(all.size(), 4) << "the 3 newest plus the one that still holds the old chats";
  EXPECT_EQ(conversationsIn(all.back()), 10);
  EXPECT_TRUE(all.back().contains(QStringLiteral("-backup-000001-")));
  EXPECT_TRUE(log.contains(all.back().toStdString())) << "keeping it is logged: " << log.text();

  // Once the database holds as many again, the old backup is no longer the last of its kind.
  startAdding(12, QStringLiteral("new"));
  startOnce();
  all = backups();
  EXPECT_EQ(all.size(), 3);
  EXPECT_EQ(conversationsIn(all.front()), 12);
}

}  // namespace
}  // namespace peregrine::app::test
