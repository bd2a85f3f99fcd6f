// Writes PNGs of the main window with a sample conversation (a highlighted C++ block, a Python
// block and a thinking block), in the light and the dark palette, to the folder given as argument;
// one more with the chat settings dock open (a system prompt and the Coding preset), and one of a
// narrow window with the dock open (the messages must wrap, nothing cut off on the right), and one
// per palette with the error banner above the input box (a full disk).
// Run under a real X server (xvfb-run) so that fonts and styles render as on a desktop.
#include <QAction>
#include <QApplication>
#include <QDir>
#include <QScrollBar>
#include <QTimer>

#include "ui/chat_settings_panel.h"
#include "ui/chat_view.h"
#include "ui/code_block.h"
#include "ui/conversation_list.h"
#include "ui/conversation_list_model.h"
#include "ui/input_box.h"
#include "ui/main_window.h"
#include "ui/message_list_model.h"
#include "ui/message_widget.h"
#include "ui/status_bar_widget.h"
#include "ui/theme.h"
#include "ui/thinking_block.h"
#include "ui_test_text.h"

using namespace peregrine::ui;

namespace {

void fill(MainWindow& window) {
  QList<peregrine::app::Conversation> conversations;
  const QStringList titles = {QStringLiteral("Ring buffer in C++"), QStringLiteral("Trip to Lisbon: 3-day plan"),
                              QStringLiteral("Explain attention sinks"), QStringLiteral("SQL window functions"),
                              QStringLiteral("Birthday poem for Ana")};
  for (int i = 0; i < titles.size(); ++i) {
    peregrine::app::Conversation c;
    c.id = titles.size() - i;
    c.title = titles[i];
    c.updatedMs = 1763900000000 - i * 3600000;
    conversations << c;
  }
  window.conversationList()->model()->setConversations(conversations);
  window.conversationList()->setCurrentConversation(conversations.first().id);

  MessageItem question;
  question.id = 1;
  question.role = peregrine::app::Role::User;
  question.content = QStringLiteral("Write a fixed-size ring buffer in C++ and a quick Python check.");
  question.branchIndex = 1;
  question.branchCount = 2;
  MessageItem answer;
  answer.id = 2;
  answer.role = peregrine::app::Role::Assistant;
  answer.thinking = testing::sampleThinking();
  answer.content = testing::sampleAnswer();
  answer.footer = QStringLiteral("Qwen3.6-35B-A3B Q4_K_M · 412 tokens · 38.4 tok/s · first token 0.21 s · MTP 71%");
  window.messageModel()->setMessages({question, answer});
  // Show the thoughts opened, as after a click on "Thinking".
  if (ThinkingBlock* thinking = window.chatView()->message(2)->thinkingBlock()) thinking->setExpanded(true);

  window.inputBox()->setText(QStringLiteral("Can it be lock-free for one producer and one consumer?"));
  window.statusWidget()->setModel(QStringLiteral("Qwen3.6-35B-A3B Q4_K_M"));
  window.statusWidget()->setBackend(QStringLiteral("CPU · 16 threads"));
  window.statusWidget()->setContext(1873, 32768);
  window.statusWidget()->setTokensPerSecond(38.4);
}

void settle() {
  for (int i = 0; i < 5; ++i) {
    QCoreApplication::processEvents();
    QCoreApplication::sendPostedEvents();
  }
}

bool shoot(MainWindow& window, const QString& path) {
  settle();
  const bool ok = window.grab().save(path);
  qInfo("%s %s", ok ? "wrote" : "FAILED to write", qPrintable(path));
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  const QString outDir = argc > 1 ? QString::fromLocal8Bit(argv[1]) : QDir::currentPath();
  if (!QDir().mkpath(outDir)) {
    qCritical("cannot create %s", qPrintable(outDir));
    return 1;
  }
  bool ok = true;
  for (const bool dark : {false, true}) {
    applyTheme(app, dark);
    MainWindow window;
    window.resize(1280, 900);
    fill(window);
    window.show();
    settle();
    const QString name = dark ? QStringLiteral("dark") : QStringLiteral("light");
    QScrollBar* bar = window.chatView()->verticalScrollBar();
    bar->setValue(0);
    ok = shoot(window, outDir + QStringLiteral("/main-window-%1-top.png").arg(name)) && ok;
    bar->setValue(bar->maximum());
    ok = shoot(window, outDir + QStringLiteral("/main-window-%1-bottom.png").arg(name)) && ok;
    window.showError(QStringLiteral("Could not send the message: the disk holding /home/ada/.local/share/Peregrine/peregrine "
                                    "is full. Free some space on it and try again; the chats stored so far are kept."));
    settle();
    ok = shoot(window, outDir + QStringLiteral("/main-window-%1-error.png").arg(name)) && ok;
    window.clearError();
    if (!dark) {
      peregrine::app::ChatSettings settings;
      settings.systemPrompt = QStringLiteral("You are a careful C++ reviewer. Prefer standard library types.");
      settings.applyPreset(QLatin1String(peregrine::app::ChatSettings::kCoding));
      window.chatSettingsPanel()->setModelCardSampling({1.0, 0.95, 20, 0.0, 1.5}, {0.7, 0.8, 20, 0.0, 1.5});
      window.chatSettingsPanel()->setSettings(settings);
      window.chatSettingsAction()->trigger();
      ok = shoot(window, outDir + QStringLiteral("/main-window-light-settings.png")) && ok;
      const QSize wide = window.size();
      window.resize(900, 700);
      settle();
      bar->setValue(bar->maximum());
      ok = shoot(window, outDir + QStringLiteral("/main-window-light-narrow-settings.png")) && ok;
      window.resize(wide);
      window.chatSettingsAction()->trigger();
    }
    // The window must actually show the pieces the screenshots are about.
    MessageWidget* message = window.chatView()->message(2);
    if (!message || !message->thinkingBlock() || message->segmentCount() != 7 || !window.chatView()->lastCodeBlock()) {
      qCritical("the sample conversation did not render as thinking and 7 segments with code blocks");
      ok = false;
    }
  }
  return ok ? 0 : 1;
}
