// AppSession — what the app remembers between runs, in QSettings: the window (geometry, splitter,
// docks) and the chat that was open. Per-chat settings live in the conversation store, and the
// model folder, the last model and the backend are ModelMenu's; together with this they make
// "the app comes back as it was left".
//
// restore() once after the window and the controllers exist; save() runs when the window closes
// and when the application quits (and may be called any time).
#pragma once

#include <QObject>

class QSettings;

namespace peregrine::ui {
class MainWindow;
}

namespace peregrine::app {

class ChatController;
class ConversationStore;

class AppSession : public QObject {
  Q_OBJECT
 public:
  static constexpr const char* kLastChatKey = "chat/lastConversation";

  AppSession(ui::MainWindow& window, ChatController& chat, const ConversationStore& store,
             QSettings& settings, QObject* parent = nullptr);

  // Window state, then the last chat when it still exists (not deleted).
  void restore();
  void save();

 private:
  ui::MainWindow& window_;
  ChatController& chat_;
  const ConversationStore& store_;
  QSettings& settings_;
};

}  // namespace peregrine::app
