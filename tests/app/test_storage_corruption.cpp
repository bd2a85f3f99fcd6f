// A damaged database: detected at start, the damaged file kept, the newest sound backup restored,
// the caller told. Also the backup rotation itself.
#include <gtest/gtest.h>

#include <QFileInfo>
#include <QRandomGenerator>

#include "core/conversation_store.h"
#include "storage_test_util.h"

namespace peregrine::app::test {
namespace {

// Truncated, Garbage and CorruptedPage make SQLite fail outright; BadFreeBlock is subtler: every
// statement still works and only PRAGMA quick_check reports the page.
enum class Damage { Truncated, Garbage, CorruptedPage, BadFreeBlock, Emptied };

std::string damageName(Damage d) {
  switch (d) {
    case Damage::Truncated: return "Truncated";
    case Damage::Garbage: return "Garbage";
    case Damage::CorruptedPage: return "CorruptedPage";
    case Damage::BadFreeBlock: return "BadFreeBlock";
    case Damage::Emptied: return "Emptied";
  }
  return "?";
}

class CorruptionTest : public StorageTest {
 protected:
  // Start 1 creates the file with `conversations` conversations; start 2 backs them up and adds
  // one more ("late"), which only the damaged file will hold.
  void populate(int conversations = 30) {
    {
      ConversationStore store(dbPath(), optionsWithBackups());
      EXPECT_EQ(store.openReport().outcome, OpenOutcome::Created);
      for (int i = 0; i < conversations; ++i) {
        const qint64 c = store.createConversation(QStringLiteral("chat %1").arg(i));
        const qint64 u = store.appendUserMessage(c, kNoMessage, QString(300, QLatin1Char('q')));
        const qint64 a = store.beginAssistantMessage(c, u, QStringLiteral("m"));
        store.appendStreamText(a, QStringLiteral("answer %1 ").arg(i) + QString(400, QLatin1Char('a')));
        store.finishAssistantMessage(a, {});
      }
    }
    {
      ConversationStore store(dbPath(), optionsWithBackups());
      EXPECT_FALSE(store.openReport().backupMade.isEmpty());
      store.createConversation(QStringLiteral("late"));
    }
    ASSERT_FALSE(QFileInfo::exists(dbPath() + QStringLiteral("-wal")))
        << "a clean close checkpoints the WAL into the file";
  }

  qint64 pageSize() const {
    Database db(dbPath(), Database::Mode::ReadOnly);
    return db.queryInt64("PRAGMA page_size");
  }

  void damage(Damage kind) {
    const qint64 page =
        kind == Damage::CorruptedPage || kind == Damage::BadFreeBlock ? pageSize() : 0;
    QFile file(dbPath());
    ASSERT_TRUE(file.open(QIODevice::ReadWrite));
    const qint64 size = file.size();
    ASSERT_GT(size, 8 * 4096) << "the test database should span several pages";
    QRandomGenerator random(1234);
    auto noise = [&](qint64 n) {
      QByteArray bytes(static_cast<int>(n), Qt::Uninitialized);
      for (char& b : bytes) b = static_cast<char>(random.bounded(256));
      return bytes;
    };
    switch (kind) {
      case Damage::Truncated:
        ASSERT_TRUE(file.resize(size / 2 + 100));
        break;
      case Damage::Garbage:
        ASSERT_TRUE(file.seek(0));
        ASSERT_EQ(file.write(noise(size)), size);
        break;
      case Damage::CorruptedPage: {
        // A page in the middle of the messages; page 1 (the header) stays intact.
        const qint64 pages = size / page;
        ASSERT_TRUE(file.seek((pages / 2) * page));
        ASSERT_EQ(file.write(noise(page)), page);
        break;
      }
      case Damage::BadFreeBlock: {
        // Bytes 1-2 of a b-tree page header: the first free block, pointed past the page end.
        const qint64 pages = size / page;
        ASSERT_TRUE(file.seek((pages / 2) * page + 1));
        ASSERT_EQ(file.write(QByteArray("\x0f\xff", 2)), 2);
        break;
      }
      case Damage::Emptied:
        ASSERT_TRUE(file.resize(0));
        break;
    }
  }

  QStringList titles(const ConversationStore& store) const {
    QStringList result;
    for (const Conversation& c : store.listConversations()) result << c.title;
    return result;
  }
};

class DamageKinds : public CorruptionTest, public ::testing::WithParamInterface<Damage> {};

TEST_P(DamageKinds, RestoresTheNewestBackupAndKeepsTheDamagedFile) {
  populate();
  damage(GetParam());
  const QByteArray damaged = readAll(dbPath());

  ConversationStore store(dbPath(), optionsWithBackups());
  const OpenReport& report = store.openReport();
  ASSERT_EQ(report.outcome, OpenOutcome::RestoredFromBackup) << report.problem.toStdString();
  EXPECT_FALSE(report.problem.isEmpty());
  EXPECT_TRUE(report.needsAttention());
  EXPECT_TRUE(report.userMessage().contains(report.corruptCopyPath));
  EXPECT_TRUE(report.backupUsed.startsWith(backupDir()));

  // Never silently dropped: the damaged bytes are kept, unchanged, beside the database.
  ASSERT_TRUE(QFileInfo::exists(report.corruptCopyPath));
  EXPECT_EQ(readAll(report.corruptCopyPath), damaged);
  EXPECT_EQ(filesMatching(QStringLiteral("conversations.corrupt-*.db")).size(), 1);

  // The backup's 30 conversations are back, with their messages; "late" came after the backup.
  const QStringList restored = titles(store);
  EXPECT_EQ(restored.size(), 30);
  EXPECT_FALSE(restored.contains(QStringLiteral("late")));
  const Conversation first = store.listConversations().back();
  ASSERT_EQ(store.currentPath(first.id).size(), 2);
  EXPECT_TRUE(store.currentPath(first.id)[1].content.startsWith(QStringLiteral("answer 0 ")));
  // And the restored database is in working order.
  store.createConversation(QStringLiteral("after restore"));
  EXPECT_EQ(titles(store).front(), QStringLiteral("after restore"));
}

INSTANTIATE_TEST_SUITE_P(Storage, DamageKinds,
                         ::testing::Values(Damage::Truncated, Damage::Garbage,
                                           Damage::CorruptedPage, Damage::BadFreeBlock,
                                           Damage::Emptied),
                         [](const auto& info) { return damageName(info.param); });

TEST_F(CorruptionTest, GarbageWithoutAnyBackupIsReportedAndKept) {
  {
    QFile file(dbPath());
    ASSERT_TRUE(file.open(QIODevice::WriteOnly));
    file.write(QByteArray("this is not an SQLite database, just text").repeated(1000));
  }
  const QByteArray garbage = readAll(dbPath());
  ConversationStore store(dbPath(), optionsWithBackups());
  const OpenReport& report = store.openReport();
  EXPECT_EQ(report.outcome, OpenOutcome::ResetAfterCorruption);
  EXPECT_TRUE(report.needsAttention());
  EXPECT_TRUE(report.userMessage().contains(QStringLiteral("no usable backup")));
  EXPECT_EQ(readAll(report.corruptCopyPath), garbage);
  EXPECT_TRUE(store.listConversations().isEmpty());
  store.createConversation(QStringLiteral("fresh start"));
  EXPECT_EQ(titles(store), QStringList{QStringLiteral("fresh start")});
}

TEST_F(CorruptionTest, ADamagedNewestBackupIsSkippedForAnOlderSoundOne) {
  populate(12);
  {
    ConversationStore store(dbPath(), optionsWithBackups());  // start 3: a second backup, with "late"
  }
  BackupSet backups(dbPath(), backupDir(), 3);
  const QStringList available = backups.newestFirst();
  ASSERT_EQ(available.size(), 2);
  {
    QFile newest(available.front());
    ASSERT_TRUE(newest.open(QIODevice::ReadWrite));
    ASSERT_TRUE(newest.resize(1000));
  }
  damage(Damage::Garbage);
  ConversationStore store(dbPath(), optionsWithBackups());
  EXPECT_EQ(store.openReport().outcome, OpenOutcome::RestoredFromBackup);
  EXPECT_EQ(store.openReport().backupUsed, available.back());
  EXPECT_EQ(titles(store).size(), 12);
}

TEST_F(CorruptionTest, BackupsRotateKeepingTheNewest) {
  populate(10);  // two starts: one backup (the first start had nothing to back up)
  for (int i = 0; i < 5; ++i) {
    ConversationStore store(dbPath(), optionsWithBackups());
    store.createConversation(QStringLiteral("start %1").arg(i));
  }
  BackupSet backups(dbPath(), backupDir(), 3);
  const QStringList kept = backups.newestFirst();
  ASSERT_EQ(kept.size(), 3);
  EXPECT_TRUE(kept[0].contains(QStringLiteral("-backup-000006-")));
  EXPECT_TRUE(kept[2].contains(QStringLiteral("-backup-000004-")));
  // The newest backup holds the state at the last start: everything but "start 4".
  Database newest(kept[0], Database::Mode::ReadOnly);
  EXPECT_EQ(newest.queryInt64("SELECT COUNT(*) FROM conversations"), 10 + 1 + 4);
  EXPECT_TRUE(newest.quickCheck().isEmpty());
  EXPECT_EQ(newest.queryText("PRAGMA journal_mode"), QStringLiteral("delete"));
}

TEST_F(CorruptionTest, BackupNowWritesAnExtraBackup) {
  ConversationStore store(dbPath(), optionsWithBackups());
  store.createConversation(QStringLiteral("x"));
  const QString path = store.backupNow();
  ASSERT_TRUE(QFileInfo::exists(path));
  Database copy(path, Database::Mode::ReadOnly);
  EXPECT_EQ(copy.queryText("SELECT title FROM conversations"), QStringLiteral("x"));
}

TEST_F(CorruptionTest, UnopenableFileIsAnErrorNotDamage) {
  // A folder where the database should be: SQLite cannot open it (even as root), and that is not
  // damage to set aside and replace.
  ASSERT_TRUE(QDir().mkpath(dbPath()));
  EXPECT_THROW(ConversationStore(dbPath(), optionsWithBackups()), peregrine::Error);
  EXPECT_TRUE(QFileInfo(dbPath()).isDir());
  EXPECT_TRUE(QDir(dir_.path()).entryList({QStringLiteral("*.corrupt-*")}, QDir::AllEntries).isEmpty());
}

}  // namespace
}  // namespace peregrine::app::test
