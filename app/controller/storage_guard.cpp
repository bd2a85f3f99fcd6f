#include "controller/storage_guard.h"

#include <utility>

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>

#include "core/sqlite_db.h"
#include "peregrine/log.h"

namespace peregrine::app {
namespace {

QString tr(const char* text) { return QCoreApplication::translate("peregrine::app::StorageGuard", text); }

}  // namespace

StorageGuard::StorageGuard(QString databasePath, Report report)
    : databasePath_(std::move(databasePath)), report_(std::move(report)) {}

bool StorageGuard::run(const QString& action, const std::function<void()>& body, bool quiet) const {
  try {
    body();
    return true;
  } catch (const std::exception& e) {
    if (quiet) return false;
    peregrine::log::get("app")->error("could not {}: {}", action.toStdString(), e.what());
    if (report_) report_(message(action, e));
    return false;
  }
}

QString StorageGuard::message(const QString& action, const std::exception& error) const {
  const auto* sqlite = dynamic_cast<const SqliteError*>(&error);
  if (sqlite && sqlite->isDiskFull()) {
    const QString folder = QDir::toNativeSeparators(QFileInfo(databasePath_).absolutePath());
    return tr("Could not %1: the disk holding %2 is full. Free some space on it and try again; "
              "the chats stored so far are kept.")
        .arg(action, folder);
  }
  if (sqlite) {
    return tr("Could not %1: %2 (%3)")
        .arg(action, QString::fromStdString(sqlite->reason()), QDir::toNativeSeparators(databasePath_));
  }
  return tr("Could not %1: %2").arg(action, QString::fromStdString(error.what()));
}

}  // namespace peregrine::app
