// Shared helpers for the storage tests.
#pragma once

#include <gtest/gtest.h>

#include <ostream>

#include <QDir>
#include <QFile>
#include <QTemporaryDir>

#include "core/conversation_store.h"

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

}  // namespace peregrine::app::test
