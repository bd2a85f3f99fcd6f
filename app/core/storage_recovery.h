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
};

struct OpenReport {
  OpenOutcome outcome = OpenOutcome::Opened;
  QString problem;           // what SQLite / quick_check said about the damaged file
  QString corruptCopyPath;   // where the damaged file was kept (with its -wal / -shm, if any)
  QString backupUsed;        // the backup the database was restored from
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
class BackupSet {
 public:
  BackupSet(const QString& databasePath, const QString& directory, int keep);

  // Writes a consistent copy of db and deletes the oldest backups beyond `keep`.
  // Returns the new backup's path. Throws peregrine::Error / SqliteError.
  QString create(const Database& db) const;
  QStringList newestFirst() const;
  const QString& directory() const { return directory_; }
  int keep() const { return keep_; }

 private:
  QString stem_;
  QString directory_;
  int keep_;
};

// Opens the database at path with integrity checking. A file that SQLite reports as corrupt or
// not a database, that fails PRAGMA quick_check, or that is empty while backups exist, is renamed
// to <stem>.corrupt-<UTC time>.db (never deleted) and replaced by a copy of the newest backup that
// passes quick_check; without one, a new empty database is started. The report says what happened.
// Errors that are not damage (permissions, a locked file, a full disk) are thrown unchanged.
Database openChecked(const QString& path, const BackupSet& backups, OpenReport& report);

}  // namespace peregrine::app
