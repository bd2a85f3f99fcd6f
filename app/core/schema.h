// The storage schema as an ordered list of migrations keyed by PRAGMA user_version.
// Migration N turns a version N-1 database into version N. New migrations are appended to the
// list in schema.cpp; existing ones are never edited (users' databases already ran them).
#pragma once

#include <span>
#include <string>

#include "core/sqlite_db.h"

namespace peregrine::app {

struct Migration {
  int version;            // user_version after this migration
  const char* summary;    // for the log
  const char* sql;        // one or more statements
};

// The migrations of this build, versions 1, 2, ... in order.
std::span<const Migration> schemaMigrations();
int latestSchemaVersion();

// The database was written by a newer Peregrine; it is left untouched.
class SchemaTooNewError : public peregrine::Error {
 public:
  using peregrine::Error::Error;
};

// Brings db from its user_version to the last of `migrations`, each migration in its own
// transaction together with its user_version bump, so a failure leaves the previous version.
// Returns how many migrations ran. Throws SchemaTooNewError when the file is newer than the list,
// peregrine::Error when the list is not 1, 2, 3, ... and SqliteError when a migration fails.
int migrate(Database& db, std::span<const Migration> migrations = schemaMigrations());

}  // namespace peregrine::app
