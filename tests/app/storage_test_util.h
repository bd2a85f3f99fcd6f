// Shared helpers for the storage tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>

#include <QDir>
#include <QFile>
#include <QTemporaryDir>

#include <spdlog/sinks/ostream_sink.h>

#include "core/conversation_store.h"
#include "peregrine/log.h"

// Readable QStrings in gtest failure messages.
inline void PrintTo(const QString& text, std::ostream* os) { *os << '"' << text.toStdString() << '"'; }

namespace peregrine::app::test {

// A deterministic wall clock: every reading is 1 ms later than the previous one, so "last
// activity" order never depends on how fast the machine is.
inline std::function<qint64()> steppingClock(qint64 start = 1'700'000'000'000) {
  auto t = std::make_shared<qint64>(start);
  return [t] { return (*t)++; };
}

inline StoreOptions testOptions() {
  StoreOptions options;
  options.clockMs = steppingClock();
  return options;
}

// A scratch folder holding the database, its backups and any damaged copies.
class StorageTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(dir_.isValid()); }
  QString dbPath() const { return dir_.filePath(QStringLiteral("conversations.db")); }
  QString backupDir() const { return dir_.filePath(QStringLiteral("backups")); }
  // Backups in backupDir(), three kept; the real clock (several stores write one after another,
  // and "last activity" order across them must hold; ties are broken by id).
  StoreOptions optionsWithBackups() const {
    StoreOptions o;
    o.backupDirectory = backupDir();
    o.backupsToKeep = 3;
    return o;
  }
  QStringList filesMatching(const QString& pattern) const {
    return QDir(dir_.path()).entryList({pattern}, QDir::Files, QDir::Name);
  }
  QByteArray readAll(const QString& path) const {
    QFile f(path);
    EXPECT_TRUE(f.open(QIODevice::ReadOnly)) << path.toStdString();
    return f.readAll();
  }

  QTemporaryDir dir_;
};

// Everything one subsystem's logger writes while the capture lives ("[level] message" lines), on
// top of its normal output.
class LogCapture {
 public:
  explicit LogCapture(std::string subsystem = "storage")
      : logger_(peregrine::log::get(subsystem)),
        sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_)) {
    sink_->set_pattern("[%l] %v");
    logger_->sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& sinks = logger_->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::string text() const { return stream_.str(); }
  bool contains(const std::string& part) const { return text().find(part) != std::string::npos; }

 private:
  std::ostringstream stream_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

}  // namespace peregrine::app::test
