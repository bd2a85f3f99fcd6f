// Helpers of the engine-bridge tests: fixture paths and waiting on the Qt event loop.
#pragma once

#include <functional>

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QString>
#include <QTimer>

namespace peregrine::app::test {

inline QString dataPath(const QString& relative) {
  return QStringLiteral(PEREGRINE_TEST_DATA_DIR "/") + relative;
}
inline QString tinyModelPath() { return dataPath(QStringLiteral("qwen35-tiny/tiny-f32.gguf")); }

// Runs the event loop until done() or the timeout; returns done().
inline bool waitUntil(const std::function<bool()>& done, int timeoutMs = 30000) {
  QElapsedTimer clock;
  clock.start();
  while (!done()) {
    if (clock.elapsed() > timeoutMs) return done();
    QEventLoop loop;
    QTimer::singleShot(2, &loop, &QEventLoop::quit);
    loop.exec();
  }
  return true;
}

// Runs the event loop for a while (lets queued calls arrive, or proves none do).
inline void spinFor(int ms) {
  QEventLoop loop;
  QTimer::singleShot(ms, &loop, &QEventLoop::quit);
  loop.exec();
}

}  // namespace peregrine::app::test
