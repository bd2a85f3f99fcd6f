#include "core/database_location.h"

#include <cerrno>
#include <cstring>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

#include <QDir>
#include <QFileInfo>

#include "peregrine/error.h"

namespace peregrine::app {
namespace {

std::string text(const QString& s) { return s.toStdString(); }

bool isReadOnlyError(int error) { return error == EROFS || error == EACCES || error == EPERM; }

// Why the folder cannot be made: the nearest existing ancestor is a file, or is read-only.
std::string whyNoFolder(const QString& folder, const WriteAccessProbe& probe) {
  QFileInfo ancestor(folder);
  while (!ancestor.exists() && !ancestor.isRoot() && ancestor.absolutePath() != ancestor.absoluteFilePath())
    ancestor = QFileInfo(ancestor.absolutePath());
  const QString path = ancestor.absoluteFilePath();
  if (!ancestor.isDir()) return text(path) + " is a file, not a folder";
  if (const int error = probe(path); error != 0)
    return "the folder " + text(path) + " is read-only (" + std::strerror(error) + ")";
  return "the folder could not be made";
}

}  // namespace

int writeAccess(const QString& path) {
  return ::access(QFile::encodeName(path).constData(), W_OK) == 0 ? 0 : errno;
}

void prepareDatabaseLocation(const QString& path, const WriteAccessProbe& givenProbe) {
  const WriteAccessProbe probe = givenProbe ? givenProbe : WriteAccessProbe(writeAccess);
  const QString folder = QFileInfo(path).absolutePath();
  if (!QFileInfo(folder).isDir() && !QDir().mkpath(folder))
    throw peregrine::Error("cannot create the folder " + text(folder) + " for " + text(path) + ": " +
                           whyNoFolder(folder, probe));

  struct stat info {};
  if (::stat(QFile::encodeName(path).constData(), &info) != 0) {
    const int error = errno;
    if (error == ELOOP)
      throw peregrine::Error(text(path) + " is a symbolic link loop (following its links never reaches a file); "
                             "remove or fix the link");
    if (error != ENOENT) throw peregrine::Error(text(path) + ": " + std::strerror(error));
    // Missing (or a link to a missing file): SQLite creates it, if the folder lets it.
  } else if (S_ISDIR(info.st_mode)) {
    throw peregrine::Error(text(path) + " is a folder, not a database file; move it away");
  } else if (!S_ISREG(info.st_mode)) {
    // A FIFO or a device would block or mislead SQLite.
    throw peregrine::Error(text(path) + " is not a regular file, so it cannot be the database");
  } else if (const int error = probe(path); isReadOnlyError(error)) {
    throw peregrine::Error(text(path) + " is read-only (" + std::strerror(error) +
                           "); the app needs to write to it");
  }
  // SQLite writes its journal (-wal, -shm) beside the file, so the folder must be writable too.
  if (const int error = probe(folder); isReadOnlyError(error))
    throw peregrine::Error("the folder " + text(folder) + " is read-only (" + std::strerror(error) +
                           "): the database " + text(QFileInfo(path).fileName()) +
                           " and its journal files are written there");
}

}  // namespace peregrine::app
