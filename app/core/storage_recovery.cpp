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

// What is wrong with the file: empty when it passes quick_check.
QString damageOf(const QString& path) {
  try {
    Database db(path, Database::Mode::ReadOnly);
    const QStringList findings = db.quickCheck();
    return findings.join(QStringLiteral("; "));
  } catch (const SqliteError& e) {
    return QString::fromStdString(e.what());
  }
}

}  // namespace

// ---- OpenReport -------------------------------------------------------------------------------

bool OpenReport::needsAttention() const {
  return outcome == OpenOutcome::RestoredFromBackup ||
         outcome == OpenOutcome::ResetAfterCorruption || !backupError.isEmpty();
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
  QStringList all = newestFirst();
  for (int i = std::max(keep_, 1); i < all.size(); ++i) {
    if (!QFile::remove(all[i]))
      peregrine::log::get("storage")->warn("cannot remove old backup {}", all[i].toStdString());
  }
  return path;
}

// ---- openChecked ------------------------------------------------------------------------------

Database openChecked(const QString& path, const BackupSet& backups, OpenReport& report) {
  auto log = peregrine::log::get("storage");
  const QFileInfo info(path);
  const bool existed = info.exists();
  QString problem;

  if (existed && info.size() == 0 && !backups.newestFirst().isEmpty()) {
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

  for (const QString& backup : backups.newestFirst()) {
    const QString damage = damageOf(backup);
    if (!damage.isEmpty()) {
      log->warn("backup {} is unusable too: {}", backup.toStdString(), damage.toStdString());
      continue;
    }
    if (!QFile::copy(backup, path))
      throw peregrine::Error(path.toStdString() + ": cannot copy the backup " +
                             backup.toStdString() + " into place; the damaged file is kept as " +
                             report.corruptCopyPath.toStdString());
    // Backups are read-only in some setups (copied from media); the live file must be writable.
    QFile::setPermissions(path, QFile::permissions(path) | QFile::WriteOwner | QFile::ReadOwner);
    report.outcome = OpenOutcome::RestoredFromBackup;
    report.backupUsed = backup;
    log->warn("{}: restored from backup {}", path.toStdString(), backup.toStdString());
    return Database(path);
  }

  report.outcome = OpenOutcome::ResetAfterCorruption;
  log->error("{}: no usable backup; starting an empty database", path.toStdString());
  return Database(path);
}

}  // namespace peregrine::app
