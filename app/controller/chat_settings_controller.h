// ChatSettingsController — keeps the window's per-chat settings panel (ui::ChatSettingsPanel)
// and the open conversation's stored settings in step: opening a chat shows its settings, and
// every edit in the panel is stored at once (through ChatController, so it drives the next
// answer). It also gives the panel the model card's sampling and the default token limit.
#pragma once

#include <QObject>

namespace peregrine::ui {
class MainWindow;
}

namespace peregrine::app {

class ChatController;

class ChatSettingsController : public QObject {
  Q_OBJECT
 public:
  ChatSettingsController(ui::MainWindow& window, ChatController& chat, QObject* parent = nullptr);

 private:
  ui::MainWindow& window_;
  ChatController& chat_;
};

}  // namespace peregrine::app
