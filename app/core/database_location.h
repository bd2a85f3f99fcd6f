// Where the database lives, checked before SQLite sees it. SQLite's own error for a folder in the
// way, a symbolic link loop or a read-only folder is "unable to open database file", which names
// no reason; these checks name it, and the place.
#pragma once

#include <functional>

#include <QString>

namespace peregrine::app {

// 0 when this process may write to path (a file or a folder), else the errno (EACCES, EROFS, ...).
using WriteAccessProbe = std::function<int(const QString& path)>;

// access(path, W_OK). Root passes it on any folder that is not on a read-only file system.
int writeAccess(const QString& path);

// Makes the database's folder when it is missing, then checks that SQLite can create or open
// the file there and write its journal beside it. Throws peregrine::Error with a plain reason
// ("... is a folder, not a database file", "... is a symbolic link loop", "the folder ... is
// read-only", ...) and changes nothing else. An empty probe means writeAccess.
void prepareDatabaseLocation(const QString& path, const WriteAccessProbe& probe = {});

}  // namespace peregrine::app
