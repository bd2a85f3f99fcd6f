// ModelLibrary — the local model files the model menu offers: *.gguf files in the folder the
// user chose and in the app's own models folder (QStandardPaths::AppDataLocation/models), each
// folder and its direct subfolders (the publisher/model layout of other apps).
//
// Every file is listed, the broken ones too: a file the engine could not load is shown with its
// error (ErrorRole) instead of disappearing, so the user learns why. Reading an entry touches
// only the GGUF header (see inspectModelFile); results are cached by path, size and mtime, so a
// rescan re-reads only new or changed files. Folders are watched (QFileSystemWatcher) and
// rescanned shortly after they change; rescan() does it on demand. Scans run on the calling
// (GUI) thread: header reads take milliseconds per file.
#pragma once

#include <QAbstractListModel>
#include <QDateTime>
#include <QFileSystemWatcher>
#include <QHash>
#include <QList>
#include <QStringList>
#include <QTimer>

#include "bridge/model_file_info.h"

namespace peregrine::app {

class ModelLibrary : public QAbstractListModel {
  Q_OBJECT

 public:
  enum Role {
    PathRole = Qt::UserRole + 1,
    FileNameRole,
    NameRole,
    SizeRole,          // bytes (quint64)
    ArchitectureRole,
    QuantTypeRole,
    HasMtpRole,
    IsMoeRole,
    ValidRole,
    ErrorRole,
    IsDemoRole,        // the random-weight demo model made on first start
    InAppFolderRole,   // lives in the app's models folder (not the user's folder)
  };

  explicit ModelLibrary(QObject* parent = nullptr);

  // <AppDataLocation>/models (created on demand by the caller, e.g. DemoModel).
  static QString defaultAppModelsFolder();

  void setUserFolder(const QString& folder);   // empty: none
  void setAppFolder(const QString& folder);    // default: defaultAppModelsFolder()
  QString userFolder() const { return userFolder_; }
  QString appFolder() const { return appFolder_; }

  // Re-reads both folders now; returns the number of entries.
  int rescan();

  int count() const { return int(entries_.size()); }
  const ModelFileInfo& entry(int row) const { return entries_.at(row); }
  int indexOfPath(const QString& path) const;  // -1 when not listed

  int rowCount(const QModelIndex& parent = QModelIndex()) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QHash<int, QByteArray> roleNames() const override;

 signals:
  void scanned();

 private:
  struct CacheEntry {
    qint64 size = -1;
    QDateTime modified;
    ModelFileInfo info;
  };

  QStringList modelFilesIn(const QString& folder) const;
  void updateWatcher();

  QString userFolder_;
  QString appFolder_;
  QList<ModelFileInfo> entries_;
  QHash<QString, CacheEntry> cache_;
  QFileSystemWatcher watcher_;
  QTimer rescanDelay_;
};

// Menu text for one entry: "Qwen3.6-27B · Q4_K_M · 16.5 GB", or the file name and the error.
QString modelEntryLabel(const ModelFileInfo& info);
// "1.3 MB", "16.5 GB".
QString formatByteSize(quint64 bytes);

}  // namespace peregrine::app
