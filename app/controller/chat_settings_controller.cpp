#include "controller/chat_settings_controller.h"

#include "controller/chat_controller.h"
#include "controller/chat_request.h"
#include "ui/chat_settings_panel.h"
#include "ui/main_window.h"

namespace peregrine::app {

ChatSettingsController::ChatSettingsController(ui::MainWindow& window, ChatController& chat, QObject* parent)
    : QObject(parent), window_(window), chat_(chat) {
  ui::ChatSettingsPanel* panel = window_.chatSettingsPanel();
  panel->setModelCardSampling(modelCardSampling(true), modelCardSampling(false));
  panel->setDefaultMaxTokens(chat_.defaultMaxTokens());
  panel->setSettings(chat_.chatSettings());
  connect(&chat_, &ChatController::chatSettingsChanged, panel, &ui::ChatSettingsPanel::setSettings);
  // Stored at once; a running answer keeps what it started with, the next one uses the edit.
  connect(panel, &ui::ChatSettingsPanel::settingsEdited, &chat_, &ChatController::setChatSettings);
}

}  // namespace peregrine::app
