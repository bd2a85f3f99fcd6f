#include "core/schema.h"

#include "peregrine/log.h"

namespace peregrine::app {
namespace {

// Version 1: conversations, messages (a tree: parent_id links branches), settings.
// Times are milliseconds since the Unix epoch (UTC). JSON columns hold objects.
// Prompt-prefix caches are planned in their own SQLite file beside this one (issue 15), not as
// tables here, so a damaged cache never endangers a chat.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE conversations (
  id              INTEGER PRIMARY KEY,
  title           TEXT    NOT NULL DEFAULT '',
  title_is_auto   INTEGER NOT NULL DEFAULT 1,   -- 1 until the user renames it
  created_ms      INTEGER NOT NULL,
  updated_ms      INTEGER NOT NULL,             -- last activity, the list's sort key
  settings_json   TEXT    NOT NULL DEFAULT '{}',
  current_leaf_id INTEGER REFERENCES messages(id) ON DELETE SET NULL,
  deleted_ms      INTEGER                        -- set by delete (undo clears it), purged later
);
CREATE INDEX conversations_by_activity ON conversations(deleted_ms, updated_ms DESC);

CREATE TABLE messages (
  id                INTEGER PRIMARY KEY,
  conversation_id   INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  parent_id         INTEGER REFERENCES messages(id) ON DELETE CASCADE,
  role              TEXT    NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
  content           TEXT    NOT NULL DEFAULT '',
  thinking          TEXT    NOT NULL DEFAULT '',
  model             TEXT    NOT NULL DEFAULT '',
  sampling_json     TEXT    NOT NULL DEFAULT '{}',
  prompt_tokens     INTEGER,
  generated_tokens  INTEGER,
  ttft_ms           REAL,
  tokens_per_second REAL,
  mtp_acceptance    REAL,
  state             TEXT    NOT NULL DEFAULT 'complete'
                    CHECK (state IN ('complete', 'streaming', 'interrupted')),
  created_ms        INTEGER NOT NULL
);
CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
CREATE INDEX messages_by_parent ON messages(parent_id, id);
CREATE INDEX messages_streaming ON messages(state) WHERE state = 'streaming';

CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
)sql";

// Version 2: an answer's statistics as one JSON object (peregrine::GenerationStats, written by
// generation_stats_to_json), so a field the engine adds is stored without a schema change. The
// five columns of version 1 are carried over (tokens_per_second is the decode rate; an
// mtp_acceptance means the answer was drafted with MTP) and dropped; no index uses them.
constexpr const char* kSchemaV2 = R"sql(
ALTER TABLE messages ADD COLUMN stats_json TEXT;
UPDATE messages SET stats_json = json_object(
    'prompt_tokens', IFNULL(prompt_tokens, 0),
    'generated_tokens', IFNULL(generated_tokens, 0),
    'ttft_ms', IFNULL(ttft_ms, 0.0),
    'decode_tok_s', IFNULL(tokens_per_second, 0.0),
    'mtp', CASE WHEN mtp_acceptance IS NULL THEN json_object()
                ELSE json_object('model_has_mtp', json('true'), 'active', json('true'),
                                 'acceptance_rate', mtp_acceptance) END)
  WHERE prompt_tokens IS NOT NULL OR generated_tokens IS NOT NULL OR ttft_ms IS NOT NULL
     OR tokens_per_second IS NOT NULL OR mtp_acceptance IS NOT NULL;
ALTER TABLE messages DROP COLUMN prompt_tokens;
ALTER TABLE messages DROP COLUMN generated_tokens;
ALTER TABLE messages DROP COLUMN ttft_ms;
ALTER TABLE messages DROP COLUMN tokens_per_second;
ALTER TABLE messages DROP COLUMN mtp_acceptance;
)sql";

constexpr Migration kMigrations[] = {
    {1, "conversations, messages, settings", kSchemaV1},
    {2, "statistics as one JSON object", kSchemaV2},
    // Append new migrations here: {3, "...", "ALTER TABLE ..."}.
};

}  // namespace

std::span<const Migration> schemaMigrations() { return kMigrations; }

int latestSchemaVersion() { return schemaMigrations().back().version; }

int migrate(Database& db, std::span<const Migration> migrations) {
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i) + 1)
      throw peregrine::Error("schema migrations must be numbered 1, 2, 3, ...: entry " +
                             std::to_string(i) + " has version " +
                             std::to_string(migrations[i].version));
  }
  const int latest = static_cast<int>(migrations.size());
  const int current = db.userVersion();
  if (current > latest)
    throw SchemaTooNewError(db.path().toStdString() + ": schema version " +
                            std::to_string(current) + " was written by a newer Peregrine (this " +
                            "build knows versions up to " + std::to_string(latest) +
                            "); the file was left untouched");
  auto log = peregrine::log::get("storage");
  int ran = 0;
  for (int version = current + 1; version <= latest; ++version) {
    const Migration& migration = migrations[static_cast<std::size_t>(version - 1)];
    log->info("{}: migrating schema to version {} ({})", db.path().toStdString(), version,
              migration.summary);
    Transaction transaction(db);
    db.exec(migration.sql);
    db.setUserVersion(version);
    transaction.commit();
    ++ran;
  }
  return ran;
}

}  // namespace peregrine::app
