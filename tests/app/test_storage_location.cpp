// A database path that cannot work (a folder in the way, a symbolic link loop, a read-only
// folder or file): refused before SQLite sees it, with the plain reason and the place, nothing
// created or changed.
#include <gtest/gtest.h>

#include <cerrno>

#include <unistd.h>

#include <QFileInfo>

#include "core/conversation_store.h"
#include "storage_test_util.h"

namespace peregrine::app::test {
namespace {

class LocationTest : public StorageTest {
 protected:
  // The message of the error that opening the store throws ("" when it opens).
  std::string openError(StoreOptions options = {}) const {
    try {
      ConversationStore store(dbPath(), std::move(options));
    } catch (const peregrine::Error& e) {
      return e.what();
    }
    return {};
  }
  bool nothingCreated() const {
    return !QFileInfo::exists(backupDir()) &&
           QDir(dir_.path()).entryList({QStringLiteral("*.corrupt-*")}, QDir::AllEntries).isEmpty();
  }
};

TEST_F(LocationTest, AFolderWhereTheDatabaseShouldBeIsNamed) {
  ASSERT_TRUE(QDir().mkpath(dbPath()));
  const std::string error = openError();
  EXPECT_NE(error.find(dbPath().toStdString() + " is a folder"), std::string::npos) << error;
  EXPECT_TRUE(QFileInfo(dbPath()).isDir());
  EXPECT_TRUE(nothingCreated());
}

TEST_F(LocationTest, ASymbolicLinkLoopIsNamed) {
  ASSERT_EQ(::symlink("conversations.db", dbPath().toLocal8Bit().constData()), 0);
  const std::string error = openError();
  EXPECT_NE(error.find("symbolic link loop"), std::string::npos) << error;
  EXPECT_NE(error.find(dbPath().toStdString()), std::string::npos) << error;
  EXPECT_TRUE(QFileInfo(dbPath()).isSymLink());
  EXPECT_TRUE(nothingCreated());
}

TEST_F(LocationTest, AReadOnlyFolderIsCalledReadOnlyAndNamed) {
  for (const int error : {EROFS, EACCES}) {
    StoreOptions options;
    const QString folder = dir_.path();
    options.writeAccess = [folder, error](const QString& path) { return path == folder ? error : 0; };
    const std::string message = openError(options);
    EXPECT_NE(message.find("read-only"), std::string::npos) << message;
    EXPECT_NE(message.find("folder " + folder.toStdString()), std::string::npos) << message;
    EXPECT_FALSE(QFileInfo::exists(dbPath()));
    EXPECT_TRUE(nothingCreated());
  }
}

TEST_F(LocationTest, AReadOnlyDatabaseFileIsCalledReadOnly) {
  { ConversationStore store(dbPath()); }
  StoreOptions options;
  const QString db = dbPath();
  options.writeAccess = [db](const QString& path) { return path == db ? EACCES : 0; };
  const std::string message = openError(options);
  EXPECT_NE(message.find(db.toStdString() + " is read-only"), std::string::npos) << message;
}

TEST_F(LocationTest, AReallyReadOnlyFolderIsCalledReadOnly) {
  if (::geteuid() == 0) GTEST_SKIP() << "running as root, whom folder permissions do not stop";
  ASSERT_TRUE(QFile::setPermissions(dir_.path(), QFile::ReadOwner | QFile::ExeOwner));
  const std::string message = openError();
  QFile::setPermissions(dir_.path(), QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
  EXPECT_NE(message.find("read-only"), std::string::npos) << message;
  EXPECT_NE(message.find(dir_.path().toStdString()), std::string::npos) << message;
}

TEST_F(LocationTest, AWritableLocationOpens) {
  EXPECT_EQ(openError(), "");
}

}  // namespace
}  // namespace peregrine::app::test
