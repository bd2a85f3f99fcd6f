// Opening the database safely: an integrity check at start, rotating backups, and recovery from a
// damaged file that never discards the user's data silently (the damaged file is kept beside the
// database and the caller receives a report to show).
#pragma once

#include <QString>
#include <QStringList>

#include "core/sqlite_db.h"

namespace peregrine::app {

enum class OpenOutcome {
  Created,               // there was no database; a new one was made
  Opened,                // the database passed the check
  RestoredFromBackup,    // the database was damaged; the newest sound backup replaced it
  ResetAfterCorruption,  // the database was damaged and no sound backup existed: started empty
  RestoredAfterLoss,      // there was no database but there were backups: the newest good one replaced it
  ResetAfterLoss,         // there was no database and no backup was good: started empty (backups kept)
};

struct OpenReport {
  OpenOutcome outcome = OpenOutcome::Opened;
  QString problem;           // what SQLite / quick_check said about the damaged file
  QString corruptCopyPath;   // where the damaged file was kept (with its -wal / -shm, if any)
  QString backupUsed;        // the backup the database was restored from
  QStringList unusableBackups;  // "<file>: <why>" for each backup passed over while restoring
  int interruptedMessages = 0;  // answers found mid-stream (the app had died); kept, marked interrupted
  QString backupMade;        // the backup written at this start, if any
  QString backupError;       // why that backup failed (not fatal)

  // True when the UI should tell the user something (recovery happened or a backup failed).
  bool needsAttention() const;
  // One or two sentences for the status bar / a dialog.
  QString userMessage() const;
};

// Rotating backups of one database file: <directory>/<stem>-backup-<sequence>-<UTC time>.db,
// the sequence number ordering them (the clock may not).
//
// A backup is good when it opens, passes PRAGMA quick_check and holds the schema (an empty file
// opens and passes the check, but holds nothing).
class BackupSet {
 public:
  BackupSet(const QString& databasePath, const QString& directory, int keep);

  // Writes a consistent copy of db and deletes the oldest backups beyond `keep`, except the
  // newest one holding more conversations than db when none of the kept ones does: a history
  // lost from the database is then still in a backup however often the app starts.
  // Returns the new backup's path. Throws peregrine::Error / SqliteError.
  QString create(const Database& db) const;
  QStringList newestFirst() const;
  // Why the backup cannot serve as the database; empty when it is good.
  static QString problemWith(const QString& backup);
  const QString& directory() const { return directory_; }
  int keep() const { return keep_; }

 private:
  void removeOld(const Database& live) const;

  QString stem_;
  QString directory_;
  int keep_;
};

// Opens the database at path with integrity checking. A file that SQLite reports as corrupt or
// not a database, that fails PRAGMA quick_check, or that is empty while backups exist, is renamed
// to <stem>.corrupt-<UTC time>.db (never deleted) and replaced by a copy of the newest good
// backup; without one, a new empty database is started. A missing file next to backups is
// replaced by the newest good backup the same way (the history was lost, not never made).
// The report says what happened, and so does the `storage` log. Errors that are not damage
// (permissions, a locked file, a full disk) are thrown unchanged.
Database openChecked(const QString& path, const BackupSet& backups, OpenReport& report);

}  // namespace peregrine::app
