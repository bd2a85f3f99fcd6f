#include "controller/model_menu.h"

#include <QAction>
#include <QActionGroup>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QSettings>
#include <QStatusBar>

#include "bridge/demo_model.h"
#include "bridge/engine_client.h"
#include "bridge/model_library.h"
#include "ui/main_window.h"
#include "ui/status_bar_widget.h"

namespace peregrine::app {

ModelMenu::ModelMenu(ui::MainWindow& window, EngineClient& engine, QSettings& settings,
                     const QString& appFolder, QObject* parent)
    : QObject(parent),
      window_(window),
      engine_(engine),
      settings_(settings),
      library_(new ModelLibrary(this)),
      demoJob_(new DemoModelJob(this)),
      menu_(new QMenu(tr("&Model"), &window)),
      backendMenu_(new QMenu(tr("&Backend"), &window)),
      cancelLoad_(new QAction(tr("&Cancel loading"), &window)) {
  menu_->setObjectName(QStringLiteral("modelMenu"));
  backendMenu_->setObjectName(QStringLiteral("backendMenu"));
  const QString backendName = settings_.value(QLatin1String(kBackendKey)).toString();
  backend_ = peregrine::parse_backend_kind(backendName.toStdString()).value_or(peregrine::BackendKind::Auto);
  buildBackendMenu();
  cancelLoad_->setObjectName(QStringLiteral("cancelLoadAction"));
  cancelLoad_->setShortcut(QKeySequence(Qt::Key_Escape));
  cancelLoad_->setEnabled(false);
  // On the window, so Esc works wherever the focus is while a model loads; disabled otherwise,
  // so Esc then reaches the widgets (the input box stops a generation with it).
  window_.addAction(cancelLoad_);
  connect(cancelLoad_, &QAction::triggered, &engine_, &EngineClient::cancelLoads);
  connect(window_.statusWidget(), &ui::StatusBarWidget::cancelRequested, &engine_, &EngineClient::cancelLoads);
  connect(&engine_, &EngineClient::stateChanged, this,
          [this](EngineClient::State state) { cancelLoad_->setEnabled(state == EngineClient::State::Loading); });
  library_->setAppFolder(appFolder.isEmpty() ? ModelLibrary::defaultAppModelsFolder() : appFolder);
  library_->setUserFolder(settings_.value(QLatin1String(kUserFolderKey)).toString());

  // File menu first, then the widgets' Chat menu, then Model.
  QMenuBar* bar = window_.menuBar();
  QAction* firstMenu = bar->actions().value(0);
  auto* file = new QMenu(tr("&File"), &window);
  file->setObjectName(QStringLiteral("fileMenu"));
  QAction* openFolder = file->addAction(tr("&Open model folder…"));
  openFolder->setObjectName(QStringLiteral("openModelFolderAction"));
  openFolder->setShortcut(QKeySequence(QStringLiteral("Ctrl+O")));
  connect(openFolder, &QAction::triggered, this, &ModelMenu::chooseFolder);
  bar->insertMenu(firstMenu, file);
  bar->addMenu(menu_);

  connect(library_, &ModelLibrary::scanned, this, &ModelMenu::rebuild);
  connect(&engine_, &EngineClient::modelLoading, this, &ModelMenu::onLoading);
  connect(&engine_, &EngineClient::modelLoaded, this, &ModelMenu::onLoaded);
  connect(&engine_, &EngineClient::modelLoadFailed, this, &ModelMenu::onLoadFailed);
  connect(&engine_, &EngineClient::modelLoadCancelled, this, &ModelMenu::onLoadCancelled);
  connect(&engine_, &EngineClient::modelLoadProgress, window_.statusWidget(),
          [this](const QString&, quint64 done, quint64 total) { window_.statusWidget()->setProgress(done, total); });
  connect(&engine_, &EngineClient::modelUnloaded, this, &ModelMenu::showNoModel);
  connect(demoJob_, &DemoModelJob::finished, this, &ModelMenu::onDemoFinished);
  rebuild();
}

ModelMenu::~ModelMenu() = default;

bool ModelMenu::isMakingDemo() const { return demoJob_->isRunning(); }

void ModelMenu::startUp() {
  library_->rescan();
  const QString last = settings_.value(QLatin1String(kLastModelKey)).toString();
  const int lastRow = last.isEmpty() ? -1 : library_->indexOfPath(last);
  if (lastRow >= 0 && library_->entry(lastRow).valid) {
    load(last);
    return;
  }
  for (int row = 0; row < library_->count(); ++row) {
    const ModelFileInfo& info = library_->entry(row);
    if (info.valid && !DemoModel::isDemo(info.path)) {
      load(info.path);
      return;
    }
  }
  // First start (or no usable model): the demo model, so the window can be tried at once.
  window_.statusBar()->showMessage(tr("No model found: making the random-weight demo model…"));
  QDir().mkpath(library_->appFolder());
  demoJob_->start(library_->appFolder());
}

void ModelMenu::onDemoFinished(const QString& path, bool created, const QString& error) {
  Q_UNUSED(created);
  library_->rescan();
  if (!error.isEmpty()) {
    showError(tr("Demo model"), tr("The demo model could not be made: %1").arg(error));
  } else {
    load(path);
  }
  emit demoModelReady(path, error);
}

void ModelMenu::load(const QString& path) {
  if (engine_.model() && engine_.model()->path == path) return;
  lastError_.clear();
  engine_.loadModel(path, modelOptions());
}

peregrine::ModelOptions ModelMenu::modelOptions() const {
  peregrine::ModelOptions options = EngineClient::recommendedModelOptions();
  options.backend = backend_;
  return options;
}

void ModelMenu::setBackend(peregrine::BackendKind backend) {
  settings_.setValue(QLatin1String(kBackendKey), QString::fromUtf8(peregrine::backend_kind_name(backend).data()));
  for (QAction* action : backendMenu_->actions())
    action->setChecked(action->data().toInt() == static_cast<int>(backend));
  if (backend == backend_) return;
  backend_ = backend;
  if (engine_.model()) {
    lastError_.clear();
    engine_.loadModel(engine_.model()->path, modelOptions());
  }
}

void ModelMenu::buildBackendMenu() {
  auto* group = new QActionGroup(backendMenu_);
  group->setExclusive(true);
  const bool haveCuda = peregrine::cuda_device_count() > 0;
  const std::pair<peregrine::BackendKind, QString> choices[] = {
      {peregrine::BackendKind::Auto, haveCuda ? tr("Auto (CUDA here)") : tr("Auto (CPU here)")},
      {peregrine::BackendKind::Cpu, tr("CPU")},
      {peregrine::BackendKind::Cuda, tr("CUDA (NVIDIA GPU)")},
  };
  for (const auto& [kind, label] : choices) {
    QAction* action = backendMenu_->addAction(label);
    action->setObjectName(QStringLiteral("backend_") + QString::fromUtf8(peregrine::backend_kind_name(kind).data()));
    action->setData(static_cast<int>(kind));
    action->setCheckable(true);
    action->setChecked(kind == backend_);
    group->addAction(action);
    connect(action, &QAction::triggered, this, [this, kind = kind] { setBackend(kind); });
  }
  QAction* cuda = backendMenu_->actions().last();
  if (!haveCuda) cuda->setToolTip(tr("No CUDA device found (or this build has no CUDA backend): loading will fail"));
  backendMenu_->setToolTipsVisible(true);
}

void ModelMenu::onLoading(const QString& path) {
  const QString name = QFileInfo(path).fileName();
  window_.statusWidget()->setModel(tr("Loading %1…").arg(name));
  window_.statusWidget()->setBusy(true);
  window_.statusBar()->showMessage(tr("Loading %1…").arg(name));
}

void ModelMenu::setUserFolder(const QString& folder) {
  settings_.setValue(QLatin1String(kUserFolderKey), folder);
  library_->setUserFolder(folder);
  library_->rescan();
  window_.statusBar()->showMessage(tr("Model files found: %1").arg(library_->count()), 5000);
}

void ModelMenu::chooseFolder() {
  const QString folder = QFileDialog::getExistingDirectory(
      &window_, tr("Folder with model files (*.gguf)"), library_->userFolder());
  if (!folder.isEmpty()) setUserFolder(folder);
}

void ModelMenu::rebuild() {
  menu_->clear();
  const QString loaded = engine_.model() ? engine_.model()->path : QString();
  auto* group = new QActionGroup(menu_);
  group->setExclusive(true);
  for (int row = 0; row < library_->count(); ++row) {
    const ModelFileInfo& info = library_->entry(row);
    QAction* action = menu_->addAction(modelEntryLabel(info));
    action->setData(info.path);
    action->setToolTip(info.valid ? info.path : info.path + QLatin1Char('\n') + info.error);
    action->setCheckable(true);
    action->setChecked(info.path == loaded);
    action->setEnabled(info.valid);
    group->addAction(action);
    const QString path = info.path;
    connect(action, &QAction::triggered, this, [this, path] { load(path); });
  }
  if (library_->count() == 0) menu_->addAction(tr("No model files found"))->setEnabled(false);
  menu_->setToolTipsVisible(true);
  menu_->addSeparator();
  QAction* open = menu_->addAction(tr("Open model folder…"));
  connect(open, &QAction::triggered, this, &ModelMenu::chooseFolder);
  QAction* rescan = menu_->addAction(tr("Rescan model folders"));
  connect(rescan, &QAction::triggered, library_, &ModelLibrary::rescan);
  menu_->addMenu(backendMenu_);
  menu_->addAction(cancelLoad_);
  QAction* unload = menu_->addAction(tr("Unload model"));
  unload->setEnabled(engine_.hasModel());
  connect(unload, &QAction::triggered, &engine_, [this] { engine_.unloadModel(); });
}

void ModelMenu::onLoaded(const ModelSummary& info) {
  window_.statusWidget()->setBusy(false);
  lastError_.clear();
  settings_.setValue(QLatin1String(kLastModelKey), info.path);
  const QString name = DemoModel::isDemo(info.path) ? DemoModel::displayName() : info.name;
  window_.statusWidget()->setModel(name);
  window_.statusWidget()->setBackend(backendDescription(info));
  window_.statusWidget()->setContext(0, info.contextLength);
  window_.statusBar()->showMessage(tr("Loaded %1 in %2 s").arg(name).arg(info.loadSeconds, 0, 'f', 1), 5000);
  rebuild();
}

// What the engine says the model runs on (Auto resolved), not what was asked for.
QString ModelMenu::backendDescription(const ModelSummary& info) const {
  const QString backend = engine_.modelBackend();
  if (backend == QLatin1String("cuda")) {
    const QString device = engine_.modelBackendDevice();
    return device.isEmpty() ? tr("CUDA · device %1").arg(modelOptions().cuda_device) : tr("CUDA · %1").arg(device);
  }
  if (backend == QLatin1String("cpu"))
    return info.threads == 1 ? tr("CPU · 1 thread") : tr("CPU · %1 threads").arg(info.threads);
  return backend;
}

void ModelMenu::showNoModel() {
  window_.statusWidget()->setBusy(false);
  window_.statusWidget()->setModel(QString());
  window_.statusWidget()->setBackend(QString());
  rebuild();
}

void ModelMenu::onLoadCancelled(const QString& path) {
  showNoModel();
  window_.statusBar()->showMessage(tr("Loading %1 cancelled").arg(QFileInfo(path).fileName()), 5000);
}

void ModelMenu::onLoadFailed(const QString& path, const QString& message) {
  showNoModel();
  showError(tr("Model not loaded"),
            tr("%1 could not be loaded:\n%2").arg(QFileInfo(path).fileName(), message));
}

void ModelMenu::showError(const QString& title, const QString& text) {
  lastError_ = text;
  window_.statusBar()->showMessage(text.section(QLatin1Char('\n'), 0, 0), 15000);
  // Non-modal: the app keeps running and nothing waits on the box.
  if (!errorBox_) {
    errorBox_ = new QMessageBox(QMessageBox::Warning, title, text, QMessageBox::Ok, &window_);
    errorBox_->setObjectName(QStringLiteral("modelErrorBox"));
    errorBox_->setAttribute(Qt::WA_DeleteOnClose);
    errorBox_->setWindowModality(Qt::NonModal);
  } else {
    errorBox_->setWindowTitle(title);
    errorBox_->setText(text);
  }
  errorBox_->show();
}

}  // namespace peregrine::app
