#include "bridge/model_library.h"

#include <algorithm>

#include <QDir>
#include <QFileInfo>
#include <QSet>
#include <QStandardPaths>

#include "bridge/demo_model.h"

namespace peregrine::app {
namespace {

constexpr int kRescanDelayMs = 300;  // a file being copied in changes the folder many times

}  // namespace

ModelLibrary::ModelLibrary(QObject* parent)
    : QAbstractListModel(parent), appFolder_(defaultAppModelsFolder()) {
  rescanDelay_.setSingleShot(true);
  rescanDelay_.setInterval(kRescanDelayMs);
  connect(&rescanDelay_, &QTimer::timeout, this, &ModelLibrary::rescan);
  connect(&watcher_, &QFileSystemWatcher::directoryChanged, this, [this] { rescanDelay_.start(); });
}

QString ModelLibrary::defaultAppModelsFolder() {
  return QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) + QStringLiteral("/models");
}

void ModelLibrary::setUserFolder(const QString& folder) {
  userFolder_ = folder;
  rescan();
}

void ModelLibrary::setAppFolder(const QString& folder) {
  appFolder_ = folder;
  rescan();
}

QStringList ModelLibrary::modelFilesIn(const QString& folder) const {
  QStringList files;
  if (folder.isEmpty()) return files;
  const QDir dir(folder);
  if (!dir.exists()) return files;
  const QStringList patterns{QStringLiteral("*.gguf")};
  for (const QFileInfo& file : dir.entryInfoList(patterns, QDir::Files | QDir::Readable | QDir::Hidden)) {
    files << file.absoluteFilePath();
  }
  for (const QFileInfo& sub : dir.entryInfoList(QDir::Dirs | QDir::NoDotAndDotDot)) {
    for (const QFileInfo& file : QDir(sub.absoluteFilePath()).entryInfoList(patterns, QDir::Files)) {
      files << file.absoluteFilePath();
    }
  }
  return files;
}

int ModelLibrary::rescan() {
  rescanDelay_.stop();
  QList<ModelFileInfo> found;
  QSet<QString> seen;
  QHash<QString, CacheEntry> cache;
  for (const QString& folder : {userFolder_, appFolder_}) {
    for (const QString& path : modelFilesIn(folder)) {
      const QFileInfo file(path);
      const QString key = file.canonicalFilePath().isEmpty() ? path : file.canonicalFilePath();
      if (seen.contains(key)) continue;  // the same folder chosen twice, or a symlink
      seen.insert(key);
      CacheEntry entry = cache_.value(key);
      if (entry.size != file.size() || entry.modified != file.lastModified()) {
        entry = CacheEntry{file.size(), file.lastModified(), inspectModelFile(path)};
      }
      cache.insert(key, entry);
      found << entry.info;
    }
  }
  std::stable_sort(found.begin(), found.end(), [](const ModelFileInfo& a, const ModelFileInfo& b) {
    if (a.valid != b.valid) return a.valid;  // loadable models first
    return a.fileName.compare(b.fileName, Qt::CaseInsensitive) < 0;
  });
  beginResetModel();
  entries_ = std::move(found);
  cache_ = std::move(cache);
  endResetModel();
  updateWatcher();
  emit scanned();
  return count();
}

void ModelLibrary::updateWatcher() {
  const QStringList watched = watcher_.directories();
  if (!watched.isEmpty()) watcher_.removePaths(watched);
  for (const QString& folder : {userFolder_, appFolder_}) {
    if (!folder.isEmpty() && QDir(folder).exists()) watcher_.addPath(folder);
  }
}

int ModelLibrary::indexOfPath(const QString& path) const {
  const QString absolute = QFileInfo(path).absoluteFilePath();
  for (int i = 0; i < entries_.size(); ++i) {
    if (entries_[i].path == absolute) return i;
  }
  return -1;
}

int ModelLibrary::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : int(entries_.size());
}

QVariant ModelLibrary::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() < 0 || index.row() >= entries_.size()) return {};
  const ModelFileInfo& e = entries_[index.row()];
  switch (role) {
    case Qt::DisplayRole: return modelEntryLabel(e);
    case Qt::ToolTipRole: return e.valid ? e.path : e.path + QStringLiteral("\n") + e.error;
    case PathRole: return e.path;
    case FileNameRole: return e.fileName;
    case NameRole: return e.name;
    case SizeRole: return QVariant::fromValue(e.sizeBytes);
    case ArchitectureRole: return e.architecture;
    case QuantTypeRole: return e.quantType;
    case HasMtpRole: return e.hasMtp;
    case IsMoeRole: return e.isMoe;
    case ValidRole: return e.valid;
    case ErrorRole: return e.error;
    case IsDemoRole: return DemoModel::isDemo(e.path);
    case InAppFolderRole:
      return !appFolder_.isEmpty() && e.path.startsWith(QFileInfo(appFolder_).absoluteFilePath() + QLatin1Char('/'));
    default: return {};
  }
}

QHash<int, QByteArray> ModelLibrary::roleNames() const {
  QHash<int, QByteArray> names = QAbstractListModel::roleNames();
  names.insert(PathRole, "path");
  names.insert(FileNameRole, "fileName");
  names.insert(NameRole, "name");
  names.insert(SizeRole, "size");
  names.insert(ArchitectureRole, "architecture");
  names.insert(QuantTypeRole, "quantType");
  names.insert(HasMtpRole, "hasMtp");
  names.insert(IsMoeRole, "isMoe");
  names.insert(ValidRole, "valid");
  names.insert(ErrorRole, "error");
  names.insert(IsDemoRole, "isDemo");
  names.insert(InAppFolderRole, "inAppFolder");
  return names;
}

QString formatByteSize(quint64 bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double value = double(bytes);
  int unit = 0;
  while (value >= 1000.0 && unit < 4) value /= 1000.0, ++unit;
  return unit == 0 ? QStringLiteral("%1 B").arg(bytes)
                   : QStringLiteral("%1 %2").arg(value, 0, 'f', 1).arg(QLatin1String(units[unit]));
}

QString modelEntryLabel(const ModelFileInfo& info) {
  if (!info.valid) return info.fileName + QStringLiteral(" — unusable: ") + info.error;
  if (DemoModel::isDemo(info.path)) return DemoModel::displayName();
  QStringList parts{info.fileName};
  if (!info.quantType.isEmpty()) parts << info.quantType;
  if (info.hasMtp) parts << QStringLiteral("MTP");
  parts << formatByteSize(info.sizeBytes);
  return parts.join(QStringLiteral(" · "));
}

}  // namespace peregrine::app
