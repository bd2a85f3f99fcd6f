// Schema migrations: a new database, every earlier version, order, failures, foreign tables.
#include <gtest/gtest.h>

#include "core/conversation_store.h"
#include "core/schema.h"
#include "storage_test_util.h"

namespace peregrine::app::test {
namespace {

// The schema as SQLite stores it, for comparing two databases.
QStringList schemaOf(const Database& db) {
  Statement query = db.prepare(
      "SELECT type || ' ' || name || ': ' || IFNULL(sql, '') FROM sqlite_master ORDER BY name");
  QStringList rows;
  while (query.step()) rows << query.text(0);
  return rows;
}

QList<qint64> trailOf(const Database& db) {
  Statement query = db.prepare("SELECT step FROM trail ORDER BY rowid");
  QList<qint64> steps;
  while (query.step()) steps << query.int64(0);
  return steps;
}

class SchemaTest : public StorageTest {};

TEST_F(SchemaTest, NewDatabaseGetsLatestVersionWalAndTables) {
  { ConversationStore store(dbPath(), testOptions()); }
  Database db(dbPath());
  EXPECT_EQ(db.userVersion(), latestSchemaVersion());
  EXPECT_EQ(db.queryText("PRAGMA journal_mode"), QStringLiteral("wal"));
  const QStringList schema = schemaOf(db).filter(QStringLiteral("table "));
  EXPECT_EQ(schema.filter(QStringLiteral("table conversations:")).size(), 1);
  EXPECT_EQ(schema.filter(QStringLiteral("table messages:")).size(), 1);
  EXPECT_EQ(schema.filter(QStringLiteral("table settings:")).size(), 1);
}

TEST_F(SchemaTest, ForeignKeysAreEnforced) {
  ConversationStore store(dbPath(), testOptions());
  const qint64 c = store.createConversation();
  // A message under a parent that does not exist is refused by the store...
  EXPECT_THROW(store.appendUserMessage(c, 4242, QStringLiteral("hi")), peregrine::Error);
  // ...and purging a conversation removes its messages (ON DELETE CASCADE needs foreign_keys=ON).
  const qint64 u = store.appendUserMessage(c, kNoMessage, QStringLiteral("hi"));
  store.deleteConversation(c);
  EXPECT_EQ(store.purgeDeletedBefore(std::numeric_limits<qint64>::max()), 1);
  EXPECT_FALSE(store.message(u).has_value());
}

TEST_F(SchemaTest, EveryEarlierVersionMigratesToTheSameSchemaAsANewDatabase) {
  const auto all = schemaMigrations();
  QStringList expected;
  {
    Database fresh(dir_.filePath(QStringLiteral("fresh.db")));
    EXPECT_EQ(migrate(fresh), latestSchemaVersion());
    expected = schemaOf(fresh);
  }
  for (int from = 0; from < latestSchemaVersion(); ++from) {
    SCOPED_TRACE(from);
    const QString path = dir_.filePath(QStringLiteral("v%1.db").arg(from));
    {
      Database old(path);
      migrate(old, all.first(static_cast<std::size_t>(from)));
      ASSERT_EQ(old.userVersion(), from);
    }
    // Through the real entry point, as a user's old file would be opened.
    { ConversationStore store(path, testOptions()); }
    Database upgraded(path);
    EXPECT_EQ(upgraded.userVersion(), latestSchemaVersion());
    EXPECT_EQ(schemaOf(upgraded), expected);
  }
}

// Version 2 keeps an answer's statistics as one JSON object; the five columns of version 1 are
// carried over and dropped.
TEST_F(SchemaTest, Version1StatisticsColumnsMigrateToTheStatisticsObject) {
  {
    Database old(dbPath());
    migrate(old, schemaMigrations().first(1));
    ASSERT_EQ(old.userVersion(), 1);
    old.exec(
        "INSERT INTO conversations(id, created_ms, updated_ms) VALUES (1, 0, 0);"
        "INSERT INTO messages(id, conversation_id, parent_id, role, content, created_ms)"
        "  VALUES (1, 1, NULL, 'user', 'q', 0);"
        "INSERT INTO messages(id, conversation_id, parent_id, role, content, prompt_tokens,"
        "  generated_tokens, ttft_ms, tokens_per_second, mtp_acceptance, created_ms)"
        "  VALUES (2, 1, 1, 'assistant', 'drafted', 31, 7, 85.5, 41.25, 0.75, 0);"
        "INSERT INTO messages(id, conversation_id, parent_id, role, content, prompt_tokens,"
        "  generated_tokens, tokens_per_second, created_ms)"
        "  VALUES (3, 1, 1, 'assistant', 'plain', 12, 3, 20.5, 0);");
  }
  ConversationStore store(dbPath(), testOptions());
  EXPECT_FALSE(store.message(1)->stats.has_value());  // all five NULL: still none

  const std::optional<Message> drafted = store.message(2);
  ASSERT_TRUE(drafted && drafted->stats);
  EXPECT_EQ(drafted->content, QStringLiteral("drafted"));
  EXPECT_EQ(drafted->stats->prompt_tokens, 31);
  EXPECT_EQ(drafted->stats->generated_tokens, 7);
  EXPECT_DOUBLE_EQ(drafted->stats->ttft_ms, 85.5);
  EXPECT_DOUBLE_EQ(drafted->stats->decode_tok_s, 41.25);
  EXPECT_TRUE(drafted->stats->mtp.active);
  EXPECT_DOUBLE_EQ(drafted->stats->mtp.acceptance_rate, 0.75);

  const std::optional<Message> plain = store.message(3);
  ASSERT_TRUE(plain && plain->stats);
  EXPECT_EQ(plain->stats->prompt_tokens, 12);
  EXPECT_EQ(plain->stats->generated_tokens, 3);
  EXPECT_DOUBLE_EQ(plain->stats->ttft_ms, 0.0);
  EXPECT_DOUBLE_EQ(plain->stats->decode_tok_s, 20.5);
  EXPECT_FALSE(plain->stats->mtp.active);

  Database db(dbPath());
  EXPECT_EQ(db.userVersion(), latestSchemaVersion());
  const QString table = db.queryText("SELECT sql FROM sqlite_master WHERE name = 'messages'");
  EXPECT_TRUE(table.contains(QStringLiteral("stats_json"))) << table.toStdString();
  for (const char* gone : {"prompt_tokens", "generated_tokens", "ttft_ms", "tokens_per_second", "mtp_acceptance"})
    EXPECT_FALSE(table.contains(QLatin1String(gone))) << gone;
}

TEST_F(SchemaTest, MigrationsRunInOrderFromAnyEarlierVersion) {
  const Migration steps[] = {
      {1, "trail", "CREATE TABLE trail(step INTEGER); INSERT INTO trail VALUES (1);"},
      {2, "two", "INSERT INTO trail VALUES (2);"},
      {3, "three", "INSERT INTO trail VALUES (3);"},
      {4, "four", "INSERT INTO trail VALUES (4);"},
  };
  for (int from = 0; from <= 4; ++from) {
    SCOPED_TRACE(from);
    Database db(dir_.filePath(QStringLiteral("trail%1.db").arg(from)));
    migrate(db, std::span(steps).first(static_cast<std::size_t>(from)));
    EXPECT_EQ(migrate(db, steps), 4 - from);
    EXPECT_EQ(db.userVersion(), 4);
    EXPECT_EQ(trailOf(db), (QList<qint64>{1, 2, 3, 4}));
    EXPECT_EQ(migrate(db, steps), 0) << "a second run must be a no-op";
  }
}

TEST_F(SchemaTest, AFailingMigrationLeavesThePreviousVersionIntact) {
  const Migration steps[] = {
      {1, "trail", "CREATE TABLE trail(step INTEGER); INSERT INTO trail VALUES (1);"},
      {2, "broken", "CREATE TABLE half(x); INSERT INTO no_such_table VALUES (2);"},
      {3, "never", "INSERT INTO trail VALUES (3);"},
  };
  Database db(dir_.filePath(QStringLiteral("broken.db")));
  EXPECT_THROW(migrate(db, steps), SqliteError);
  EXPECT_EQ(db.userVersion(), 1);
  EXPECT_EQ(trailOf(db), (QList<qint64>{1}));
  EXPECT_EQ(db.queryInt64("SELECT COUNT(*) FROM sqlite_master WHERE name = 'half'"), 0);
}

TEST_F(SchemaTest, MisnumberedMigrationListIsRejected) {
  const Migration steps[] = {{1, "a", "SELECT 1;"}, {3, "gap", "SELECT 1;"}};
  Database db(dir_.filePath(QStringLiteral("gap.db")));
  EXPECT_THROW(migrate(db, steps), peregrine::Error);
  EXPECT_EQ(db.userVersion(), 0);
}

TEST_F(SchemaTest, VersionZeroFileWithAnUnrelatedTableIsMigratedAndTheTableKept) {
  {
    Database db(dbPath());
    db.exec("CREATE TABLE from_nowhere(note TEXT); INSERT INTO from_nowhere VALUES ('keep me');");
    ASSERT_EQ(db.userVersion(), 0);
  }
  {
    ConversationStore store(dbPath(), testOptions());
    EXPECT_EQ(store.openReport().outcome, OpenOutcome::Opened);
    store.createConversation(QStringLiteral("works"));
  }
  Database db(dbPath());
  EXPECT_EQ(db.userVersion(), latestSchemaVersion());
  EXPECT_EQ(db.queryText("SELECT note FROM from_nowhere"), QStringLiteral("keep me"));
}

TEST_F(SchemaTest, VersionZeroFileWithAClashingTableIsRefusedAndLeftAlone) {
  {
    Database db(dbPath());
    db.exec("CREATE TABLE conversations(something_else TEXT); INSERT INTO conversations VALUES ('x');");
  }
  EXPECT_THROW(ConversationStore(dbPath(), testOptions()), SqliteError);
  // Not mistaken for damage: the file is still there, unrenamed, with its data and version 0.
  EXPECT_TRUE(filesMatching(QStringLiteral("*.corrupt-*")).isEmpty());
  Database db(dbPath());
  EXPECT_EQ(db.userVersion(), 0);
  EXPECT_EQ(db.queryText("SELECT something_else FROM conversations"), QStringLiteral("x"));
}

TEST_F(SchemaTest, FileFromANewerVersionIsRefusedUntouched) {
  {
    ConversationStore store(dbPath(), testOptions());
    store.createConversation(QStringLiteral("future"));
  }
  {
    Database db(dbPath());
    db.setUserVersion(latestSchemaVersion() + 1);
  }
  const QByteArray before = readAll(dbPath());
  EXPECT_THROW(ConversationStore(dbPath(), testOptions()), SchemaTooNewError);
  EXPECT_EQ(readAll(dbPath()), before);
}

}  // namespace
}  // namespace peregrine::app::test
