// The offline demo model made on first start, so a person can try the UI before adding a real
// model. It is a random-weight model of the `tiny` synthetic shape (64 wide, 4 layers plus the
// MTP block, 512-token byte-level vocabulary, F32, ~1.3 MB, well under a second to write) made
// with the project's own generator (peregrine/synthetic.h). Its output is gibberish by design;
// file name and label say so.
#pragma once

#include <thread>

#include <QObject>
#include <QString>

namespace peregrine::app {

struct DemoModelResult {
  QString path;
  bool created = false;  // false: a valid demo model was already there
  QString error;         // empty on success
  bool ok() const { return error.isEmpty(); }
};

class DemoModel {
 public:
  static QString fileName();     // "peregrine-demo-random-weights.gguf"
  static QString displayName();  // menu text, says "random weights"
  static bool isDemo(const QString& path);

  // Makes <folder>/fileName() unless a valid one is there. Blocking (disk I/O and generation):
  // call it off the GUI thread, e.g. through DemoModelJob. Never throws; a failure is also logged
  // (error level, with the reason: a file in the way of the folder, a read-only folder, ...).
  static DemoModelResult ensure(const QString& folder);
};

// Runs DemoModel::ensure on a worker thread and reports on the thread that owns the job.
// Destroying the job waits for the worker (at most the time to write ~1 MB).
class DemoModelJob : public QObject {
  Q_OBJECT

 public:
  explicit DemoModelJob(QObject* parent = nullptr) : QObject(parent) {}
  ~DemoModelJob() override;

  // Starts once; a second call while running is ignored.
  void start(const QString& folder);
  bool isRunning() const { return running_; }

 signals:
  void finished(const QString& path, bool created, const QString& error);

 private:
  std::thread worker_;
  bool running_ = false;
};

}  // namespace peregrine::app
