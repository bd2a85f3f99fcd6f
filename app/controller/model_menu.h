// ModelMenu — the window's File and Model menus over ModelLibrary and EngineClient.
//
// The Model menu lists every model file of the library (unusable ones disabled, with the reason
// as tooltip), the loaded one checked; choosing one loads it. File → Open model folder… sets the
// user's folder (remembered in settings). Load progress (a bar that fills as the weights reach
// backend memory) and the loaded model with the backend it runs on go to the status line; a load
// can be cancelled there, with Esc or from the Model menu. A failed load is shown in the window
// (status line and a non-modal message box) and the app keeps going.
//
// startUp() picks what to load on start: the model loaded last time if it is still usable, else
// the first usable model found, else (first start with no model) the random-weight demo model,
// made on a worker thread in the app's models folder and then loaded.
#pragma once

#include <QObject>
#include <QPointer>
#include <QString>

#include "bridge/bridge_types.h"
#include "peregrine/backend.h"
#include "peregrine/model.h"

class QAction;
class QMenu;
class QMessageBox;
class QSettings;

namespace peregrine::ui {
class MainWindow;
}

namespace peregrine::app {

class DemoModelJob;
class EngineClient;
class ModelLibrary;

class ModelMenu : public QObject {
  Q_OBJECT

 public:
  // Settings keys.
  static constexpr const char* kUserFolderKey = "models/userFolder";
  static constexpr const char* kLastModelKey = "models/lastModel";
  static constexpr const char* kBackendKey = "engine/backend";  // "auto", "cpu", "cuda"

  // appFolder empty: ModelLibrary::defaultAppModelsFolder().
  ModelMenu(ui::MainWindow& window, EngineClient& engine, QSettings& settings,
            const QString& appFolder = {}, QObject* parent = nullptr);
  ~ModelMenu() override;

  ModelLibrary& library() { return *library_; }
  QMenu* menu() const { return menu_; }

  void startUp();
  void load(const QString& path);
  void setUserFolder(const QString& folder);
  // Where models run from now on; reloads the loaded model on the new backend.
  void setBackend(peregrine::BackendKind backend);
  peregrine::BackendKind backend() const { return backend_; }
  // What a load asks for: the recommended options on the chosen backend.
  peregrine::ModelOptions modelOptions() const;
  QMenu* backendMenu() const { return backendMenu_; }
  // Cancels the running and queued loads (Esc); enabled only while a model loads.
  QAction* cancelLoadAction() const { return cancelLoad_; }
  // The last load error shown to the user (empty when the last load worked).
  const QString& lastError() const { return lastError_; }
  // True while the demo model is being made.
  bool isMakingDemo() const;

 signals:
  // Startup found no model and made (or failed to make) the demo model.
  void demoModelReady(const QString& path, const QString& error);

 private:
  void rebuild();
  void buildBackendMenu();
  void onLoading(const QString& path);
  void chooseFolder();
  void onLoaded(const ModelSummary& info);
  void onLoadFailed(const QString& path, const QString& message);
  void onLoadCancelled(const QString& path);
  void showNoModel();
  QString backendDescription(const ModelSummary& info) const;
  void onDemoFinished(const QString& path, bool created, const QString& error);
  void showError(const QString& title, const QString& text);

  ui::MainWindow& window_;
  EngineClient& engine_;
  QSettings& settings_;
  ModelLibrary* library_;
  DemoModelJob* demoJob_;
  QMenu* menu_;
  QMenu* backendMenu_;
  QAction* cancelLoad_;
  peregrine::BackendKind backend_ = peregrine::BackendKind::Auto;
  QPointer<QMessageBox> errorBox_;
  QString lastError_;
};

}  // namespace peregrine::app
