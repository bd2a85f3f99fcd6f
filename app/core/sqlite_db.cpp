#include "core/sqlite_db.h"

#include <sqlite3.h>

#include <cerrno>

#include <QByteArray>

#include "peregrine/log.h"

namespace peregrine::app {
namespace {

std::string describe(sqlite3* db, int code) {
  const char* message = db ? sqlite3_errmsg(db) : sqlite3_errstr(code);
  return std::string(message ? message : sqlite3_errstr(code)) + " (SQLite code " +
         std::to_string(code) + ")";
}

std::string fileOf(sqlite3* db) {
  const char* name = db ? sqlite3_db_filename(db, "main") : nullptr;
  return name && *name ? name : "(in-memory database)";
}

// The OS error behind the last I/O failure on db (ENOSPC, EACCES, ...), 0 when none.
int systemErrnoOf(sqlite3* db) { return db ? sqlite3_system_errno(db) : 0; }

std::string shortSql(std::string_view sql) {
  constexpr std::size_t kMax = 120;
  std::string text(sql.substr(0, kMax));
  for (char& c : text)
    if (c == '\n') c = ' ';
  if (sql.size() > kMax) text += "...";
  return text;
}

void containsFunction(sqlite3_context* context, int argc, sqlite3_value** argv) {
  if (argc != 2 || sqlite3_value_type(argv[0]) == SQLITE_NULL ||
      sqlite3_value_type(argv[1]) == SQLITE_NULL) {
    sqlite3_result_int(context, 0);
    return;
  }
  const auto* haystack = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
  const int haystackBytes = sqlite3_value_bytes(argv[0]);
  const auto* needle = reinterpret_cast<const char*>(sqlite3_value_text(argv[1]));
  const int needleBytes = sqlite3_value_bytes(argv[1]);
  const QString h = QString::fromUtf8(haystack, haystackBytes);
  const QString n = QString::fromUtf8(needle, needleBytes);
  sqlite3_result_int(context, h.contains(n, Qt::CaseInsensitive) ? 1 : 0);
}

}  // namespace

SqliteError::SqliteError(const std::string& message, int extendedCode, int systemErrno)
    : peregrine::Error(message), extendedCode_(extendedCode), systemErrno_(systemErrno) {}

bool SqliteError::isCorruption() const {
  const int primary = primaryCode();
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB ||
         extendedCode_ == SQLITE_IOERR_SHORT_READ;
}

bool SqliteError::isDiskFull() const {
  if (primaryCode() == SQLITE_FULL) return true;
  return primaryCode() == SQLITE_IOERR && (systemErrno_ == ENOSPC || systemErrno_ == EDQUOT);
}

std::string SqliteError::reason() const {
  const char* text = sqlite3_errstr(extendedCode_);
  return text ? text : "unknown SQLite error";
}

// ---- Statement --------------------------------------------------------------------------------

Statement::Statement(sqlite3* db, std::string_view sql) : db_(db) {
  const int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt_);
    stmt_ = nullptr;
    throw SqliteError(fileOf(db_) + ": cannot prepare '" + shortSql(sql) + "': " + describe(db_, rc),
                      sqlite3_extended_errcode(db_));
  }
}

Statement::Statement(Statement&& other) noexcept : db_(other.db_), stmt_(other.stmt_) {
  other.stmt_ = nullptr;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::fail(int code, std::string_view what) const {
  const char* sql = stmt_ ? sqlite3_sql(stmt_) : nullptr;
  throw SqliteError(fileOf(db_) + ": " + std::string(what) + " '" + shortSql(sql ? sql : "") +
                        "': " + describe(db_, code),
                    sqlite3_extended_errcode(db_), systemErrnoOf(db_));
}

Statement& Statement::bind(int index, qint64 value) {
  const int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) fail(rc, "cannot bind parameter " + std::to_string(index) + " of");
  return *this;
}

Statement& Statement::bind(int index, double value) {
  const int rc = sqlite3_bind_double(stmt_, index, value);
  if (rc != SQLITE_OK) fail(rc, "cannot bind parameter " + std::to_string(index) + " of");
  return *this;
}

Statement& Statement::bind(int index, const QString& value) {
  const QByteArray utf8 = value.toUtf8();
  const int rc = sqlite3_bind_text64(stmt_, index, utf8.constData(),
                                     static_cast<sqlite3_uint64>(utf8.size()), SQLITE_TRANSIENT,
                                     SQLITE_UTF8);
  if (rc != SQLITE_OK) fail(rc, "cannot bind parameter " + std::to_string(index) + " of");
  return *this;
}

Statement& Statement::bindNull(int index) {
  const int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK) fail(rc, "cannot bind parameter " + std::to_string(index) + " of");
  return *this;
}

Statement& Statement::bind(int index, const std::optional<qint64>& value) {
  return value ? bind(index, *value) : bindNull(index);
}

Statement& Statement::bind(int index, const std::optional<double>& value) {
  return value ? bind(index, *value) : bindNull(index);
}

Statement& Statement::bind(int index, const std::optional<QString>& value) {
  return value ? bind(index, *value) : bindNull(index);
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  // Reset right away so the statement can be bound and run again (bindings are kept).
  sqlite3_reset(stmt_);
  if (rc == SQLITE_DONE) return false;
  fail(rc, "cannot run");
}

void Statement::run() {
  while (step()) {
  }
}

bool Statement::isNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

qint64 Statement::int64(int column) const { return sqlite3_column_int64(stmt_, column); }

double Statement::real(int column) const { return sqlite3_column_double(stmt_, column); }

QString Statement::text(int column) const {
  const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  const int bytes = sqlite3_column_bytes(stmt_, column);
  return data ? QString::fromUtf8(data, bytes) : QString();
}

std::optional<qint64> Statement::optionalInt64(int column) const {
  if (isNull(column)) return std::nullopt;
  return int64(column);
}

std::optional<double> Statement::optionalReal(int column) const {
  if (isNull(column)) return std::nullopt;
  return real(column);
}

// ---- Database ---------------------------------------------------------------------------------

Database::Database(const QString& path, Mode mode) : path_(path) {
  const int flags = mode == Mode::ReadOnly ? SQLITE_OPEN_READONLY
                                           : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  const QByteArray name = path.toUtf8();
  const int rc = sqlite3_open_v2(name.constData(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    const std::string message = path.toStdString() + ": cannot open SQLite database: " +
                                describe(db_, rc);
    const int extended = db_ ? sqlite3_extended_errcode(db_) : rc;
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw SqliteError(message, extended);
  }
  sqlite3_extended_result_codes(db_, 1);
  // Another instance (or a backup reader) may hold the lock for a moment.
  sqlite3_busy_timeout(db_, 3000);
}

Database::Database(Database&& other) noexcept : path_(std::move(other.path_)), db_(other.db_) {
  other.db_ = nullptr;
}

Database::~Database() { close(); }

void Database::close() {
  if (!db_) return;
  const int rc = sqlite3_close_v2(db_);
  if (rc != SQLITE_OK)
    peregrine::log::get("storage")->warn("{}: closing the database failed: {}",
                                         path_.toStdString(), sqlite3_errstr(rc));
  db_ = nullptr;
}

void Database::fail(int code, std::string_view what) const {
  throw SqliteError(path_.toStdString() + ": " + std::string(what) + ": " + describe(db_, code),
                    db_ ? sqlite3_extended_errcode(db_) : code, systemErrnoOf(db_));
}

void Database::exec(std::string_view sql) {
  char* error = nullptr;
  const std::string text(sql);
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    const std::string detail = error ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    throw SqliteError(path_.toStdString() + ": cannot run '" + shortSql(sql) + "': " + detail +
                          " (SQLite code " + std::to_string(rc) + ")",
                      sqlite3_extended_errcode(db_), systemErrnoOf(db_));
  }
}

Statement Database::prepare(std::string_view sql) const { return Statement(db_, sql); }

qint64 Database::queryInt64(std::string_view sql) const {
  Statement statement = prepare(sql);
  if (!statement.step())
    throw SqliteError(path_.toStdString() + ": '" + shortSql(sql) + "' returned no row", 0);
  return statement.int64(0);
}

QString Database::queryText(std::string_view sql) const {
  Statement statement = prepare(sql);
  if (!statement.step())
    throw SqliteError(path_.toStdString() + ": '" + shortSql(sql) + "' returned no row", 0);
  return statement.text(0);
}

qint64 Database::lastInsertId() const { return sqlite3_last_insert_rowid(db_); }

int Database::changes() const { return sqlite3_changes(db_); }

bool Database::inTransaction() const { return db_ && !sqlite3_get_autocommit(db_); }

qint64 Database::maxPageCount() const { return queryInt64("PRAGMA max_page_count"); }

qint64 Database::setMaxPageCount(qint64 pages) {
  // PRAGMA arguments cannot be bound; the value is an integer we formatted ourselves.
  return queryInt64("PRAGMA max_page_count = " + std::to_string(pages));
}

int Database::userVersion() const {
  return static_cast<int>(queryInt64("PRAGMA user_version"));
}

void Database::setUserVersion(int version) {
  // PRAGMA arguments cannot be bound; the value is an int we formatted ourselves.
  exec("PRAGMA user_version = " + std::to_string(version));
}

QStringList Database::quickCheck(int maxFindings) const {
  Statement statement = prepare("PRAGMA quick_check(" + std::to_string(maxFindings) + ")");
  QStringList findings;
  while (statement.step()) {
    // A finding may span lines and starts with a "*** in database main ***" banner.
    for (const QString& line : statement.text(0).split(QLatin1Char('\n'), Qt::SkipEmptyParts)) {
      if (line != QLatin1String("ok") && !line.startsWith(QLatin1String("***")))
        findings << line.trimmed();
    }
  }
  return findings;
}

void Database::backupTo(const QString& destination) const {
  sqlite3* target = nullptr;
  const QByteArray name = destination.toUtf8();
  int rc = sqlite3_open_v2(name.constData(), &target, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                           nullptr);
  if (rc != SQLITE_OK) {
    const std::string detail = describe(target, rc);
    sqlite3_close_v2(target);
    throw SqliteError(destination.toStdString() + ": cannot create backup file: " + detail, rc);
  }
  sqlite3_backup* backup = sqlite3_backup_init(target, "main", db_, "main");
  if (!backup) {
    const std::string detail = describe(target, sqlite3_errcode(target));
    const int code = sqlite3_extended_errcode(target);
    sqlite3_close_v2(target);
    throw SqliteError(path_.toStdString() + ": cannot start backup to " +
                          destination.toStdString() + ": " + detail,
                      code);
  }
  // One pass copies every page; the source stays readable for this connection meanwhile.
  rc = sqlite3_backup_step(backup, -1);
  const int finish = sqlite3_backup_finish(backup);
  if (rc == SQLITE_DONE) rc = finish;
  if (rc != SQLITE_OK && rc != SQLITE_DONE) {
    const std::string detail = describe(target, rc);
    const int systemErrno = systemErrnoOf(target);
    sqlite3_close_v2(target);
    throw SqliteError(path_.toStdString() + ": backup to " + destination.toStdString() +
                          " failed: " + detail,
                      rc, systemErrno);
  }
  // The copy is a self-contained rollback-journal file: readable without -wal / -shm companions.
  sqlite3_exec(target, "PRAGMA journal_mode=DELETE", nullptr, nullptr, nullptr);
  sqlite3_close_v2(target);
}

void Database::registerContainsFunction() {
  const int rc = sqlite3_create_function_v2(db_, "peregrine_contains", 2,
                                            SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr,
                                            &containsFunction, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) fail(rc, "cannot register peregrine_contains()");
}

// ---- Transaction ------------------------------------------------------------------------------

Transaction::Transaction(Database& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }

Transaction::~Transaction() {
  if (done_ || !db_.inTransaction()) return;
  try {
    db_.exec("ROLLBACK");
  } catch (const SqliteError& e) {
    peregrine::log::get("storage")->error("rollback failed: {}", e.what());
  }
}

void Transaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace peregrine::app
