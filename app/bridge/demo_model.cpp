#include "bridge/demo_model.h"

#include <exception>

#include <QDir>
#include <QFileInfo>

#include "bridge/model_file_info.h"
#include "peregrine/log.h"
#include "peregrine/synthetic.h"

namespace peregrine::app {
namespace {

constexpr uint64_t kDemoSeed = 20261123;  // fixed, so every install has the same demo

// Why the models folder cannot be made or written; empty when it can.
QString folderProblem(const QString& folder) {
  const QFileInfo info(folder);
  if (info.exists() && !info.isDir())
    return QStringLiteral("cannot create the models folder %1: a file of that name is in the way").arg(folder);
  if (!QDir().mkpath(folder))
    return QStringLiteral("cannot create the models folder %1 (is the folder above it read-only?)").arg(folder);
  if (!QFileInfo(folder).isWritable()) return QStringLiteral("the models folder %1 is read-only").arg(folder);
  return {};
}

DemoModelResult failed(DemoModelResult result) {
  peregrine::log::get("app")->error("the demo model cannot be made: {}", result.error.toStdString());
  return result;
}

}  // namespace

QString DemoModel::fileName() { return QStringLiteral("peregrine-demo-random-weights.gguf"); }

QString DemoModel::displayName() {
  return QStringLiteral("Demo model (random weights, tiny: output is gibberish)");
}

bool DemoModel::isDemo(const QString& path) { return QFileInfo(path).fileName() == fileName(); }

DemoModelResult DemoModel::ensure(const QString& folder) {
  DemoModelResult result;
  result.path = QDir(folder).absoluteFilePath(fileName());
  try {
    if (QFileInfo::exists(result.path) && inspectModelFile(result.path).valid) return result;
    result.error = folderProblem(folder);
    if (!result.error.isEmpty()) return failed(result);

    const auto shape = peregrine::synthetic::builtin_shape("tiny");
    if (!shape) {
      result.error = QStringLiteral("the synthetic generator has no 'tiny' shape");
      return failed(result);
    }
    peregrine::synthetic::Options options;
    options.shape = *shape;
    options.type = peregrine::synthetic::FileType::F32;
    options.out = result.path.toStdString();
    options.seed = kDemoSeed;
    options.mtp = true;
    options.threads = 1;
    const auto report = peregrine::synthetic::write_model(options);  // renames into place when complete
    peregrine::log::get("app")->info("made the demo model {} ({} bytes, {:.2f} s)", options.out.string(),
                                     report.file_bytes, report.seconds);
    result.created = true;
  } catch (const std::exception& e) {
    result.error = QStringLiteral("could not write %1: %2").arg(result.path, QString::fromStdString(e.what()));
    return failed(result);
  }
  return result;
}

DemoModelJob::~DemoModelJob() {
  if (worker_.joinable()) worker_.join();
}

void DemoModelJob::start(const QString& folder) {
  if (running_) return;
  if (worker_.joinable()) worker_.join();  // the previous run has reported already
  running_ = true;
  worker_ = std::thread([this, folder] {
    const DemoModelResult result = DemoModel::ensure(folder);
    // Queued: runs on the job's thread; dropped if the job is destroyed first.
    QMetaObject::invokeMethod(
        this,
        [this, result] {
          running_ = false;
          emit finished(result.path, result.created, result.error);
        },
        Qt::QueuedConnection);
  });
}

}  // namespace peregrine::app
