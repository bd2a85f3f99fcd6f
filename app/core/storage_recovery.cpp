#include "core/storage_recovery.h"

#include <algorithm>

#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QRegularExpression>

#include "peregrine/log.h"

namespace peregrine::app {
namespace {

QString utcStamp() {
  return QDateTime::currentDateTimeUtc().toString(QStringLiteral("yyyyMMdd-HHmmss"));
}

// "<stem>-backup-000042-..." -> 42; -1 for files that are not ours.
qint64 backupSequence(const QString& fileName, const QString& stem) {
  static const QRegularExpression pattern(QStringLiteral("^(.*)-backup-(\\d+)-[0-9-]+\\.db$"));
  const QRegularExpressionMatch match = pattern.match(fileName);
  if (!match.hasMatch() || match.captured(1) != stem) return -1;
  return match.captured(2).toLongLong();
}

// Moves the damaged database (and its WAL companions, which belong to it) out of the way.
QString setAside(const QString& path) {
  const QFileInfo info(path);
  QString target;
  for (int attempt = 0;; ++attempt) {
    const QString suffix = attempt == 0 ? QString() : QStringLiteral("-%1").arg(attempt);
    target = info.dir().filePath(info.completeBaseName() + QStringLiteral(".corrupt-") +
                                 utcStamp() + suffix + QStringLiteral(".db"));
    if (!QFileInfo::exists(target)) break;
  }
  if (!QFile::rename(path, target))
    throw peregrine::Error(path.toStdString() + ": the database is damaged and could not be " +
                           "renamed to " + target.toStdString() +
                           "; nothing was changed (check the folder's permissions)");
  for (const char* companion : {"-wal", "-shm", "-journal"}) {
    const QString from = path + QLatin1String(companion);
    if (QFileInfo::exists(from) && !QFile::rename(from, target + QLatin1String(companion)))
      peregrine::log::get("storage")->warn("{}: could not move {} next to the damaged copy",
                                           path.toStdString(), from.toStdString());
  }
  return target;
}

// Conversations in a database (deleted ones too: they can still be restored); -1 when unreadable.
qint64 conversationCount(const Database& db) {
  try {
    return db.queryInt64("SELECT COUNT(*) FROM conversations");
  } catch (const SqliteError&) {
    return -1;
  }
}

qint64 conversationCount(const QString& path) {
  try {
    return conversationCount(Database(path, Database::Mode::ReadOnly));
  } catch (const SqliteError&) {
    return -1;
  }
}

// The backup rotation must keep beyond the newest `kept`: the newest one holding more
// conversations than the live database, unless one of the kept ones already does.
QString lastFullerBackup(const QStringList& newestFirst, int kept, qint64 live) {
  for (int i = 0; i < newestFirst.size(); ++i) {
    if (conversationCount(newestFirst[i]) > live) return i < kept ? QString() : newestFirst[i];
  }
  return {};
}

// A lost database's -wal / -shm belong to the lost file; replayed into a restored copy they would
// damage it. Moved aside, not deleted.
void setAsideCompanionsOfLost(const QString& path) {
  for (const char* companion : {"-wal", "-shm", "-journal"}) {
    const QString from = path + QLatin1String(companion);
    if (!QFileInfo::exists(from)) continue;
    const QString to = from + QStringLiteral(".orphaned-") + utcStamp();
    if (QFile::rename(from, to))
      peregrine::log::get("storage")->warn("{}: kept as {} (its database is missing)", from.toStdString(),
                                           to.toStdString());
    else
      throw peregrine::Error(from.toStdString() + ": left behind by the missing database and cannot be moved " +
                             "aside; nothing was changed (check the folder's permissions)");
  }
}

// Copies the newest good backup to path; false when none is good. Each backup passed over is
// logged and listed in the report.
bool restoreNewestGoodBackup(const QString& path, const QStringList& newestFirst, OpenReport& report) {
  auto log = peregrine::log::get("storage");
  for (const QString& backup : newestFirst) {
    const QString problem = BackupSet::problemWith(backup);
    if (!problem.isEmpty()) {
      log->warn("backup {} is unusable: {}", backup.toStdString(), problem.toStdString());
      report.unusableBackups << QFileInfo(backup).fileName() + QStringLiteral(": ") + problem;
      continue;
    }
    if (!QFile::copy(backup, path)) {
      std::string message = path.toStdString() + ": cannot copy the backup " + backup.toStdString() + " into place";
      if (!report.corruptCopyPath.isEmpty())
        message += "; the damaged file is kept as " + report.corruptCopyPath.toStdString();
      throw peregrine::Error(message);
    }
    // Backups are read-only in some setups (copied from media); the live file must be writable.
    QFile::setPermissions(path, QFile::permissions(path) | QFile::WriteOwner | QFile::ReadOwner);
    report.backupUsed = backup;
    log->warn("{}: restored from backup {} ({} conversations)", path.toStdString(), backup.toStdString(),
              conversationCount(backup));
    return true;
  }
  return false;
}

// The database file is gone while backups remain: the history was lost, not never made.
Database restoreLost(const QString& path, const QStringList& backups, OpenReport& report) {
  auto log = peregrine::log::get("storage");
  log->warn("{}: the database is missing; {} backup(s) found", path.toStdString(), backups.size());
  report.problem = QStringLiteral("the file was missing");
  setAsideCompanionsOfLost(path);
  if (restoreNewestGoodBackup(path, backups, report)) {
    report.outcome = OpenOutcome::RestoredAfterLoss;
  } else {
    report.outcome = OpenOutcome::ResetAfterLoss;
    log->error("{}: the database is missing and none of its {} backup(s) is usable; starting an empty "
               "database (the backups are left as they are)",
               path.toStdString(), backups.size());
  }
  return Database(path);
}

}  // namespace

// ---- OpenReport -------------------------------------------------------------------------------

bool OpenReport::needsAttention() const {
  return outcome == OpenOutcome::RestoredFromBackup || outcome == OpenOutcome::ResetAfterCorruption ||
         outcome == OpenOutcome::RestoredAfterLoss || outcome == OpenOutcome::ResetAfterLoss ||
         !backupError.isEmpty();
}

QString OpenReport::userMessage() const {
  QString message;
  switch (outcome) {
    case OpenOutcome::Created:
    case OpenOutcome::Opened:
      break;
    case OpenOutcome::RestoredFromBackup:
      message = QStringLiteral(
                    "The conversation database was damaged (%1). It was restored from the backup "
                    "%2; changes made after that backup may be missing. The damaged file was "
                    "kept as %3.")
                    .arg(problem, QFileInfo(backupUsed).fileName(), corruptCopyPath);
      break;
    case OpenOutcome::ResetAfterCorruption:
      message = QStringLiteral(
                    "The conversation database was damaged (%1) and no usable backup was found, "
                    "so a new empty database was started. The damaged file was kept as %2.")
                    .arg(problem, corruptCopyPath);
      break;
    case OpenOutcome::RestoredAfterLoss:
      message = QStringLiteral(
                    "The conversation database was missing. It was restored from the backup %1; "
                    "changes made after that backup may be missing.")
                    .arg(QFileInfo(backupUsed).fileName());
      break;
    case OpenOutcome::ResetAfterLoss:
      message = QStringLiteral(
                    "The conversation database was missing and none of its backups could be used "
                    "(%1), so a new empty database was started. The backups were left as they are.")
                    .arg(unusableBackups.join(QStringLiteral("; ")));
      break;
  }
  if (!backupError.isEmpty()) {
    if (!message.isEmpty()) message += QLatin1Char(' ');
    message += QStringLiteral("The automatic backup failed: %1").arg(backupError);
  }
  return message;
}

// ---- BackupSet --------------------------------------------------------------------------------

BackupSet::BackupSet(const QString& databasePath, const QString& directory, int keep)
    : stem_(QFileInfo(databasePath).completeBaseName()), directory_(directory), keep_(keep) {}

QStringList BackupSet::newestFirst() const {
  const QDir dir(directory_);
  std::vector<std::pair<qint64, QString>> found;
  for (const QString& name : dir.entryList({stem_ + QStringLiteral("-backup-*.db")}, QDir::Files)) {
    const qint64 sequence = backupSequence(name, stem_);
    if (sequence >= 0) found.emplace_back(sequence, dir.filePath(name));
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  QStringList paths;
  for (const auto& entry : found) paths << entry.second;
  return paths;
}

QString BackupSet::create(const Database& db) const {
  if (!QDir().mkpath(directory_))
    throw peregrine::Error(directory_.toStdString() + ": cannot create the backup folder");
  const QStringList existing = newestFirst();
  const qint64 next =
      existing.isEmpty() ? 1 : backupSequence(QFileInfo(existing.front()).fileName(), stem_) + 1;
  const QString name = QStringLiteral("%1-backup-%2-%3.db")
                           .arg(stem_)
                           .arg(next, 6, 10, QLatin1Char('0'))
                           .arg(utcStamp());
  const QString path = QDir(directory_).filePath(name);
  // Written under a temporary name first: a half-written backup must never look like a backup.
  const QString partial = path + QStringLiteral(".partial");
  QFile::remove(partial);
  try {
    db.backupTo(partial);
  } catch (...) {
    QFile::remove(partial);
    throw;
  }
  if (!QFile::rename(partial, path)) {
    QFile::remove(partial);
    throw peregrine::Error(path.toStdString() + ": cannot move the finished backup into place");
  }
  removeOld(db);
  return path;
}

void BackupSet::removeOld(const Database& live) const {
  auto log = peregrine::log::get("storage");
  const QStringList all = newestFirst();
  const int kept = std::max(keep_, 1);
  if (all.size() <= kept) return;
  const qint64 liveCount = conversationCount(live);
  const QString fuller = lastFullerBackup(all, kept, liveCount);
  if (!fuller.isEmpty())
    log->info("keeping the backup {} beyond the newest {}: it holds {} conversations, the database {}",
              fuller.toStdString(), kept, conversationCount(fuller), liveCount);
  for (int i = kept; i < all.size(); ++i) {
    if (all[i] != fuller && !QFile::remove(all[i])) log->warn("cannot remove old backup {}", all[i].toStdString());
  }
}

QString BackupSet::problemWith(const QString& backup) {
  if (QFileInfo(backup).size() == 0) return QStringLiteral("the file is empty");
  try {
    Database db(backup, Database::Mode::ReadOnly);
    const QStringList findings = db.quickCheck();
    if (!findings.isEmpty()) return findings.join(QStringLiteral("; "));
    if (db.userVersion() <= 0 ||
        db.queryInt64("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'conversations'") == 0)
      return QStringLiteral("it holds no conversation tables");
    return {};
  } catch (const SqliteError& e) {
    return QString::fromStdString(e.reason());
  }
}

// ---- openChecked ------------------------------------------------------------------------------

Database openChecked(const QString& path, const BackupSet& backups, OpenReport& report) {
  auto log = peregrine::log::get("storage");
  const QFileInfo info(path);
  const bool existed = info.exists();
  const QStringList available = backups.newestFirst();
  if (!existed && !available.isEmpty()) return restoreLost(path, available, report);
  QString problem;

  if (existed && info.size() == 0 && !available.isEmpty()) {
    // We never leave an empty file behind (the schema is written at creation), so an empty file
    // next to backups means the contents were lost.
    problem = QStringLiteral("the file is empty");
  } else {
    try {
      Database db(path);
      // quick_check reads every page before anything is written to the file.
      const QStringList findings = db.quickCheck();
      if (findings.isEmpty()) {
        report.outcome = existed ? OpenOutcome::Opened : OpenOutcome::Created;
        return db;
      }
      problem = findings.join(QStringLiteral("; "));
    } catch (const SqliteError& e) {
      if (!e.isCorruption()) throw;
      log->error("{}", e.what());
      problem = QString::fromStdString(e.reason());
    }
  }

  log->error("{}: the database is damaged: {}", path.toStdString(), problem.toStdString());
  report.problem = problem;
  report.corruptCopyPath = setAside(path);
  log->warn("{}: damaged file kept as {}", path.toStdString(), report.corruptCopyPath.toStdString());

  if (restoreNewestGoodBackup(path, available, report)) {
    report.outcome = OpenOutcome::RestoredFromBackup;
    return Database(path);
  }

  report.outcome = OpenOutcome::ResetAfterCorruption;
  log->error("{}: no usable backup; starting an empty database", path.toStdString());
  return Database(path);
}

}  // namespace peregrine::app
