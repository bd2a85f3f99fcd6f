// ModelLibrary and inspectModelFile on the fixtures, corrupt files included; DemoModel.
#include <gtest/gtest.h>

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QTemporaryDir>
#include <QThread>

#include "bridge/demo_model.h"
#include "bridge/engine_client.h"
#include "bridge/model_library.h"
#include "bridge_test_util.h"

namespace peregrine::app {
namespace {

using test::dataPath;
using test::waitUntil;

TEST(ModelFileInfo, ReadsTheFixtureModels) {
  const ModelFileInfo tiny = inspectModelFile(dataPath("qwen35-tiny/tiny-f32.gguf"));
  EXPECT_TRUE(tiny.valid) << tiny.error.toStdString();
  EXPECT_TRUE(tiny.error.isEmpty());
  EXPECT_EQ(tiny.fileName, "tiny-f32.gguf");
  EXPECT_EQ(tiny.architecture, "qwen35");
  EXPECT_EQ(tiny.quantType, "F32");
  EXPECT_TRUE(tiny.hasMtp);
  EXPECT_FALSE(tiny.isMoe);
  EXPECT_EQ(tiny.layers, 4);
  EXPECT_EQ(tiny.sizeBytes, quint64(QFileInfo(dataPath("qwen35-tiny/tiny-f32.gguf")).size()));
  EXPECT_GT(tiny.parameters, 0);

  const ModelFileInfo quant = inspectModelFile(dataPath("qwen35-tiny/tiny-quant.gguf"));
  EXPECT_TRUE(quant.valid) << quant.error.toStdString();
  EXPECT_EQ(quant.quantType, "Q4_K_M");

  const ModelFileInfo moe = inspectModelFile(dataPath("qwen35-tiny/tiny-moe-f32.gguf"));
  EXPECT_TRUE(moe.valid) << moe.error.toStdString();
  EXPECT_EQ(moe.architecture, "qwen35moe");
  EXPECT_TRUE(moe.isMoe);
}

TEST(ModelFileInfo, EveryCorruptFileComesBackInvalidWithAReason) {
  const QDir dir(dataPath("gguf-corrupt"));
  const auto files = dir.entryInfoList({"*.gguf"}, QDir::Files);
  ASSERT_GT(files.size(), 40);
  for (const QFileInfo& file : files) {
    const ModelFileInfo info = inspectModelFile(file.absoluteFilePath());
    EXPECT_FALSE(info.valid) << file.fileName().toStdString();  // valid-base.gguf is GGUF, not a model
    EXPECT_FALSE(info.error.isEmpty()) << file.fileName().toStdString();
    EXPECT_EQ(info.fileName, file.fileName());
  }
  const ModelFileInfo headersOnly = inspectModelFile(dataPath("gguf-corrupt/tiny-f32-headers-only.gguf"));
  EXPECT_TRUE(headersOnly.error.contains("tiny-f32-headers-only.gguf")) << headersOnly.error.toStdString();
  const ModelFileInfo missing = inspectModelFile(dataPath("no-such-model.gguf"));
  EXPECT_FALSE(missing.valid);
  EXPECT_FALSE(missing.error.isEmpty());
}

TEST(ModelFileInfo, NamesLlamaCppFileTypes) {
  EXPECT_EQ(fileTypeName(0), "F32");
  EXPECT_EQ(fileTypeName(7), "Q8_0");
  EXPECT_EQ(fileTypeName(15), "Q4_K_M");
  EXPECT_EQ(fileTypeName(32), "BF16");
  EXPECT_TRUE(fileTypeName(4).isEmpty());
}

bool copyInto(const QString& from, const QString& folder, const QString& name = {}) {
  return QFile::copy(from, QDir(folder).filePath(name.isEmpty() ? QFileInfo(from).fileName() : name));
}

TEST(ModelLibrary, ListsBothFoldersWithBrokenFilesAndTheirErrors) {
  QTemporaryDir user, app;
  ASSERT_TRUE(user.isValid() && app.isValid());
  ASSERT_TRUE(copyInto(dataPath("qwen35-tiny/tiny-f32.gguf"), user.path()));
  ASSERT_TRUE(copyInto(dataPath("gguf-corrupt/bad-magic.gguf"), user.path()));
  ASSERT_TRUE(copyInto(dataPath("gguf-corrupt/tiny-f32-headers-only.gguf"), user.path()));
  QFile notes(QDir(user.path()).filePath("notes.txt"));
  ASSERT_TRUE(notes.open(QIODevice::WriteOnly));
  notes.write("not a model");
  notes.close();
  ASSERT_TRUE(QDir(app.path()).mkpath("publisher/model"));
  ASSERT_TRUE(copyInto(dataPath("qwen35-tiny/tiny-moe-f32.gguf"), app.path() + "/publisher"));

  ModelLibrary library;
  library.setAppFolder(app.path());
  library.setUserFolder(user.path());
  ASSERT_EQ(library.count(), 4);
  ASSERT_EQ(library.rowCount(), 4);
  // Loadable models first, then the broken ones, each by file name.
  EXPECT_EQ(library.entry(0).fileName, "tiny-f32.gguf");
  EXPECT_EQ(library.entry(1).fileName, "tiny-moe-f32.gguf");
  EXPECT_EQ(library.entry(2).fileName, "bad-magic.gguf");
  EXPECT_EQ(library.entry(3).fileName, "tiny-f32-headers-only.gguf");

  const QModelIndex bad = library.index(2);
  EXPECT_FALSE(library.data(bad, ModelLibrary::ValidRole).toBool());
  EXPECT_FALSE(library.data(bad, ModelLibrary::ErrorRole).toString().isEmpty());
  EXPECT_TRUE(library.data(bad, Qt::DisplayRole).toString().contains("unusable"));
  const QModelIndex moe = library.index(1);
  EXPECT_TRUE(library.data(moe, ModelLibrary::ValidRole).toBool());
  EXPECT_TRUE(library.data(moe, ModelLibrary::IsMoeRole).toBool());
  EXPECT_TRUE(library.data(moe, ModelLibrary::InAppFolderRole).toBool());
  EXPECT_FALSE(library.data(library.index(0), ModelLibrary::InAppFolderRole).toBool());
  EXPECT_EQ(library.data(library.index(0), ModelLibrary::QuantTypeRole).toString(), "F32");
  EXPECT_TRUE(library.data(library.index(0), ModelLibrary::HasMtpRole).toBool());
  EXPECT_EQ(library.data(library.index(0), ModelLibrary::SizeRole).toULongLong(),
            quint64(QFileInfo(dataPath("qwen35-tiny/tiny-f32.gguf")).size()));
  EXPECT_EQ(library.indexOfPath(QDir(user.path()).filePath("bad-magic.gguf")), 2);
  EXPECT_TRUE(library.roleNames().contains(ModelLibrary::ErrorRole));

  // The same folder twice lists each file once.
  library.setAppFolder(user.path());
  EXPECT_EQ(library.count(), 3);
}

TEST(ModelLibrary, RescansWhenAWatchedFolderChanges) {
  QTemporaryDir user;
  ASSERT_TRUE(user.isValid());
  ModelLibrary library;
  library.setAppFolder({});
  library.setUserFolder(user.path());
  EXPECT_EQ(library.count(), 0);
  int scans = 0;
  QObject::connect(&library, &ModelLibrary::scanned, &library, [&] { ++scans; });

  ASSERT_TRUE(copyInto(dataPath("qwen35-tiny/tiny-f32.gguf"), user.path()));
  EXPECT_TRUE(waitUntil([&] { return library.count() == 1; }, 5000)) << "no rescan after a file appeared";
  EXPECT_GE(scans, 1);

  ASSERT_TRUE(QFile::remove(QDir(user.path()).filePath("tiny-f32.gguf")));
  EXPECT_TRUE(waitUntil([&] { return library.count() == 0; }, 5000));
}

TEST(DemoModel, MakesASmallLoadableModelOnce) {
  QTemporaryDir dir;
  ASSERT_TRUE(dir.isValid());
  const QString folder = dir.path() + "/models";
  QElapsedTimer clock;
  clock.start();
  const DemoModelResult made = DemoModel::ensure(folder);
  const qint64 ms = clock.elapsed();
  ASSERT_TRUE(made.ok()) << made.error.toStdString();
  EXPECT_TRUE(made.created);
  EXPECT_LT(ms, 5000);
  EXPECT_TRUE(made.path.contains("random-weights"));
  const ModelFileInfo info = inspectModelFile(made.path);
  EXPECT_TRUE(info.valid) << info.error.toStdString();
  EXPECT_LT(info.sizeBytes, 5u * 1000 * 1000);
  EXPECT_TRUE(DemoModel::isDemo(made.path));

  const DemoModelResult again = DemoModel::ensure(folder);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.path, made.path);

  ModelLibrary library;
  library.setAppFolder(folder);
  ASSERT_EQ(library.count(), 1);
  EXPECT_TRUE(library.data(library.index(0), ModelLibrary::IsDemoRole).toBool());
  EXPECT_TRUE(library.data(library.index(0), Qt::DisplayRole).toString().contains("random weights"));

  // It loads and answers (gibberish) through the bridge.
  EngineClient client;
  bool loaded = false;
  QString reason;
  QObject::connect(&client, &EngineClient::modelLoaded, &client, [&](const ModelSummary&) { loaded = true; });
  QObject::connect(&client, &EngineClient::finished, &client,
                   [&](quint64, const peregrine::GenerationStats& stats) {
                     const std::string_view name = peregrine::stop_reason_name(stats.stop_reason.value());
                     reason = QString::fromUtf8(name.data(), static_cast<int>(name.size()));
                   });
  peregrine::ModelOptions options;
  options.context_length = 512;
  client.loadModel(made.path, options);
  ASSERT_TRUE(waitUntil([&] { return loaded; }));
  GenerationRequest request;
  request.messages.push_back(peregrine::ChatMessage{"user", "Hello", std::nullopt, {}, {}, {}});
  request.maxTokens = 8;
  client.generate(request);
  ASSERT_TRUE(waitUntil([&] { return !reason.isEmpty(); }));
  EXPECT_TRUE(reason == "max_tokens" || reason == "eos") << reason.toStdString();
}

TEST(DemoModel, AReplacedBrokenDemoFileIsRemade) {
  QTemporaryDir dir;
  ASSERT_TRUE(dir.isValid());
  QFile broken(QDir(dir.path()).filePath(DemoModel::fileName()));
  ASSERT_TRUE(broken.open(QIODevice::WriteOnly));
  broken.write("GGUF but not really");
  broken.close();
  const DemoModelResult made = DemoModel::ensure(dir.path());
  ASSERT_TRUE(made.ok()) << made.error.toStdString();
  EXPECT_TRUE(made.created);
  EXPECT_TRUE(inspectModelFile(made.path).valid);
}

TEST(DemoModel, JobReportsOnTheGuiThread) {
  QTemporaryDir dir;
  ASSERT_TRUE(dir.isValid());
  DemoModelJob job;
  QString path, error;
  bool done = false, onGui = false;
  QObject::connect(&job, &DemoModelJob::finished, &job, [&](const QString& p, bool, const QString& e) {
    path = p;
    error = e;
    done = true;
    onGui = QThread::currentThread() == QCoreApplication::instance()->thread();
  });
  job.start(dir.path());
  EXPECT_TRUE(job.isRunning());
  ASSERT_TRUE(waitUntil([&] { return done; }));
  EXPECT_TRUE(onGui);
  EXPECT_TRUE(error.isEmpty()) << error.toStdString();
  EXPECT_TRUE(QFileInfo::exists(path));
  EXPECT_FALSE(job.isRunning());
}

TEST(ModelLibrary, FormatsSizes) {
  EXPECT_EQ(formatByteSize(512), "512 B");
  EXPECT_EQ(formatByteSize(1'280'000), "1.3 MB");
  EXPECT_EQ(formatByteSize(16'500'000'000ull), "16.5 GB");
}

}  // namespace
}  // namespace peregrine::app
