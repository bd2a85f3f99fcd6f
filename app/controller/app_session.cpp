#include "controller/app_session.h"

#include <optional>

#include <QCoreApplication>
#include <QSettings>

#include "controller/chat_controller.h"
#include "core/conversation_store.h"
#include "ui/main_window.h"

namespace peregrine::app {

AppSession::AppSession(ui::MainWindow& window, ChatController& chat, const ConversationStore& store,
                       QSettings& settings, QObject* parent)
    : QObject(parent), window_(window), chat_(chat), store_(store), settings_(settings) {
  connect(&window_, &ui::MainWindow::closing, this, &AppSession::save);
  if (QCoreApplication* app = QCoreApplication::instance())
    connect(app, &QCoreApplication::aboutToQuit, this, &AppSession::save);
}

void AppSession::restore() {
  window_.restoreWindowState(settings_);
  const qint64 last = settings_.value(QLatin1String(kLastChatKey), 0).toLongLong();
  const std::optional<Conversation> conversation = last ? store_.conversation(last) : std::nullopt;
  if (conversation && !conversation->deleted) chat_.openConversation(last);
}

void AppSession::save() {
  window_.saveWindowState(settings_);
  settings_.setValue(QLatin1String(kLastChatKey), chat_.currentConversation());
  settings_.sync();
}

}  // namespace peregrine::app
