// The one place that talks to SQLite's C API: a connection, prepared statements, transactions,
// the integrity check and the online backup. Everything above works with these wrappers only.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <QString>
#include <QStringList>

#include "peregrine/error.h"

struct sqlite3;
struct sqlite3_stmt;

namespace peregrine::app {

// A failed SQLite call. The message names the database file and the statement.
class SqliteError : public peregrine::Error {
 public:
  // systemErrno: the operating system's error behind an I/O failure (sqlite3_system_errno), 0
  // when there was none.
  SqliteError(const std::string& message, int extendedCode, int systemErrno = 0);
  int primaryCode() const { return extendedCode_ & 0xff; }
  int extendedCode() const { return extendedCode_; }
  // True when the file itself is damaged or is not a database, as opposed to a busy lock, a full
  // disk or a missing permission: only then may the caller set the file aside and restore a backup.
  bool isCorruption() const;
  // True when the file could not grow: SQLITE_FULL (a write found no space, or the file reached
  // PRAGMA max_page_count), or an I/O error whose cause was ENOSPC / EDQUOT (SQLite reports a
  // failed fsync or a -shm that cannot grow as I/O errors).
  bool isDiskFull() const;
  // SQLite's short description of the code ("database disk image is malformed"), for users.
  std::string reason() const;

 private:
  int extendedCode_;
  int systemErrno_;
};

class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql);
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  ~Statement();

  // Parameters are 1-based, as in SQL (?1, ?2, ...).
  Statement& bind(int index, qint64 value);
  Statement& bind(int index, int value) { return bind(index, static_cast<qint64>(value)); }
  Statement& bind(int index, double value);
  Statement& bind(int index, const QString& value);
  Statement& bindNull(int index);
  Statement& bind(int index, const std::optional<qint64>& value);
  Statement& bind(int index, const std::optional<double>& value);
  Statement& bind(int index, const std::optional<QString>& value);

  // Advances to the next row; false when the statement has finished (it is then reset, ready to
  // be bound and run again).
  bool step();
  // Runs a statement that returns no rows (or whose rows do not matter).
  void run();

  bool isNull(int column) const;
  qint64 int64(int column) const;
  double real(int column) const;
  QString text(int column) const;
  std::optional<qint64> optionalInt64(int column) const;
  std::optional<double> optionalReal(int column) const;

 private:
  [[noreturn]] void fail(int code, std::string_view what) const;

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

class Database {
 public:
  enum class Mode { ReadWriteCreate, ReadOnly };

  // Opens (or creates) the file. Throws SqliteError; note that SQLite reads the file lazily, so
  // a damaged file usually shows itself at the first statement, not here.
  Database(const QString& path, Mode mode = Mode::ReadWriteCreate);
  Database(Database&& other) noexcept;
  Database& operator=(Database&&) = delete;
  Database(const Database&) = delete;
  ~Database();

  // Runs one or more statements that return no rows.
  void exec(std::string_view sql);
  Statement prepare(std::string_view sql) const;
  // The single value of a one-row, one-column query (for PRAGMAs and counts).
  qint64 queryInt64(std::string_view sql) const;
  QString queryText(std::string_view sql) const;

  qint64 lastInsertId() const;
  int changes() const;
  // False in autocommit mode: no BEGIN, or SQLite rolled the transaction back itself (it may after
  // SQLITE_FULL, SQLITE_IOERR, SQLITE_BUSY or SQLITE_NOMEM).
  bool inTransaction() const;
  // PRAGMA max_page_count: the size in pages past which a write fails with SQLITE_FULL (SQLite
  // raises the value given to at least the current page count). Returns the limit now in force.
  qint64 maxPageCount() const;
  qint64 setMaxPageCount(qint64 pages);
  int userVersion() const;
  void setUserVersion(int version);

  // PRAGMA quick_check: an empty list when the file is sound, else SQLite's findings.
  QStringList quickCheck(int maxFindings = 20) const;
  // Copies a consistent snapshot of the whole database to destination (online backup API).
  void backupTo(const QString& destination) const;
  // Registers peregrine_contains(haystack, needle): Unicode case-insensitive substring test
  // (SQLite's LIKE folds ASCII only).
  void registerContainsFunction();

  const QString& path() const { return path_; }
  void close();

 private:
  [[noreturn]] void fail(int code, std::string_view what) const;

  QString path_;
  sqlite3* db_ = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back when destroyed uncommitted (an exception unwound past it)
// unless SQLite already did.
class Transaction {
 public:
  explicit Transaction(Database& db);
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  void commit();

 private:
  Database& db_;
  bool done_ = false;
};

}  // namespace peregrine::app
