// StorageGuard — the one place where a failed store call made for the user (a Qt slot: send,
// rename, delete, settings, export, the streamed answer) stops. An exception that left a slot would
// reach Qt's event loop, and Qt ends the app there (SIGABRT): the question typed and everything on
// screen would be gone. run() catches it, logs it, and hands the user a sentence: for a full disk
// "… the disk holding <the database's folder> is full …", for anything else what failed and
// SQLite's (or the system's) reason. The caller decides what the window keeps (the typed text, the
// streamed answer) and shows the sentence through its report function.
#pragma once

#include <exception>
#include <functional>

#include <QString>

namespace peregrine::app {

class StorageGuard {
 public:
  using Report = std::function<void(const QString& message)>;

  // databasePath: the conversation store's file (named in the messages).
  StorageGuard(QString databasePath, Report report);

  // Runs body. Returns true when it completed; on an exception logs it and returns false, and,
  // unless quiet (a failure already reported, retried in the background), reports
  // message(action, exception). action says what the user asked for: "send the message".
  bool run(const QString& action, const std::function<void()>& body, bool quiet = false) const;

  // "Could not <action>: the disk holding <folder> is full. …" for a full disk; "Could not
  // <action>: <reason> (<database file>)" for another SQLite error; "Could not <action>: <what>"
  // for anything else.
  QString message(const QString& action, const std::exception& error) const;

 private:
  QString databasePath_;
  Report report_;
};

}  // namespace peregrine::app
