// peregrine — the desktop app: the window (ui/), the conversation store (app/core/) and the
// engine thread (app/bridge/), joined by ChatController and ModelMenu (app/controller/).
//
//   peregrine [--dark|--light] [--screenshot FILE [--ask TEXT]]
//
// --screenshot is for checking the real binary headless (xvfb-run): once a model is loaded (and,
// with --ask, the answer to TEXT has streamed in) the window is saved to FILE and the app quits.
#include <QApplication>
#include <QCommandLineParser>
#include <QDateTime>
#include <QDir>
#include <QMessageBox>
#include <QSettings>
#include <QStandardPaths>
#include <QStatusBar>
#include <QTimer>

#include <memory>
#include <optional>

#include "bridge/engine_client.h"
#include "bridge/model_library.h"
#include "controller/app_session.h"
#include "controller/chat_controller.h"
#include "controller/chat_settings_controller.h"
#include "controller/conversation_exporter.h"
#include "controller/model_menu.h"
#include "core/conversation_store.h"
#include "peregrine/error.h"
#include "ui/main_window.h"
#include "ui/theme.h"

namespace {

using namespace peregrine;

QString welcomeText() {
  return QCoreApplication::translate(
      "main",
      "<h2>Welcome to Peregrine</h2>"
      "<p>Chat with a Qwen&nbsp;3.6 model that runs entirely on this computer.</p>"
      "<p><b>To add a model:</b> choose <i>File → Open model folder…</i> and pick the folder that "
      "holds your <code>.gguf</code> files; they appear in the <i>Model</i> menu.</p>"
      "<p>Until then a small <b>demo model with random weights</b> is loaded so you can try the "
      "window: its answers are gibberish by design.</p>"
      "<p>Enter sends, Shift+Enter starts a new line, Esc stops the answer, Ctrl+N starts a new chat.</p>");
}

// Saves the window once the app has something to show, then quits (see --screenshot).
void scheduleScreenshot(ui::MainWindow& window, app::EngineClient& engine, app::ChatController& chat,
                        const QString& file, const QString& ask) {
  auto shoot = [&window, file] {
    window.grab().save(file);
    QApplication::quit();
  };
  QObject::connect(&engine, &app::EngineClient::modelLoaded, &window, [&chat, ask, shoot](const auto&) {
    if (ask.isEmpty()) {
      QTimer::singleShot(500, shoot);
    } else {
      chat.send(ask);
    }
  });
  QObject::connect(&chat, &app::ChatController::answerFinished, &window,
                   [shoot] { QTimer::singleShot(500, shoot); });
  QObject::connect(&engine, &app::EngineClient::modelLoadFailed, &window, [shoot] { QTimer::singleShot(500, shoot); });
  QTimer::singleShot(60000, &window, shoot);  // whatever is on screen by then
}

}  // namespace

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QCoreApplication::setOrganizationName(QStringLiteral("Peregrine"));
  QCoreApplication::setApplicationName(QStringLiteral("peregrine"));
  QCoreApplication::setApplicationVersion(QStringLiteral(PEREGRINE_VERSION));
  QGuiApplication::setDesktopFileName(QStringLiteral("io.peregrine.Peregrine"));
  QApplication::setWindowIcon(QIcon::fromTheme(QStringLiteral("peregrine")));

  QCommandLineParser parser;
  parser.setApplicationDescription(QStringLiteral("Peregrine: a local Qwen 3.6 assistant"));
  parser.addHelpOption();
  parser.addVersionOption();
  QCommandLineOption dark(QStringLiteral("dark"), QStringLiteral("Use the dark palette."));
  QCommandLineOption light(QStringLiteral("light"), QStringLiteral("Use the light palette."));
  QCommandLineOption screenshot(QStringLiteral("screenshot"),
                                QStringLiteral("Save the window to FILE once a model is loaded, then quit."),
                                QStringLiteral("FILE"));
  QCommandLineOption ask(QStringLiteral("ask"), QStringLiteral("With --screenshot: send TEXT first."),
                         QStringLiteral("TEXT"));
  parser.addOptions({dark, light, screenshot, ask});
  parser.process(app);

  QSettings settings;
  const bool useDark = parser.isSet(dark) ||
                       (!parser.isSet(light) && settings.value(QStringLiteral("ui/dark"), false).toBool());
  ui::applyTheme(app, useDark);

  const QString dataDir = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
  QDir().mkpath(dataDir);
  std::unique_ptr<app::ConversationStore> store;
  try {
    store = std::make_unique<app::ConversationStore>(dataDir + QStringLiteral("/conversations.db"));
  } catch (const std::exception& e) {
    // Nothing was modified (see ConversationStore); say why and where, and stop.
    QMessageBox::critical(nullptr, QStringLiteral("Peregrine"),
                          QCoreApplication::translate("main", "The conversation database cannot be opened:\n%1")
                              .arg(QString::fromStdString(e.what())));
    return 1;
  }

  // Deleted chats stay restorable for a while, then go for good (and stop turning up in backups).
  constexpr qint64 kDayMs = 24LL * 60 * 60 * 1000;
  store->purgeDeletedBefore(QDateTime::currentMSecsSinceEpoch() -
                            app::ConversationStore::kDeletedKeptDays * kDayMs);

  // Declaration order is destruction order in reverse: the controller stores a running answer's
  // partial text first, then the engine thread is joined, then the store is closed.
  app::EngineClient engine;
  ui::MainWindow window;
  window.setWindowTitle(QStringLiteral("Peregrine"));
  app::ModelMenu models(window, engine, settings);
  app::ChatController chat(window, *store, engine);
  chat.setWelcomeText(welcomeText());
  app::ChatSettingsController chatSettings(window, chat);
  app::ConversationExporter exporter(window, chat, *store);
  app::AppSession session(window, chat, *store, settings);
  session.restore();  // window geometry and docks, the chat open last time

  if (parser.isSet(screenshot)) {
    scheduleScreenshot(window, engine, chat, parser.value(screenshot), parser.value(ask));
  }
  window.show();

  const app::OpenReport& report = store->openReport();
  if (report.needsAttention()) {
    window.statusBar()->showMessage(report.userMessage(), 30000);
    auto* box = new QMessageBox(QMessageBox::Information, QStringLiteral("Peregrine"), report.userMessage(),
                                QMessageBox::Ok, &window);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->show();
  }
  models.startUp();
  const int rc = app.exec();
  chat.shutdown();  // quit with an answer streaming: keep its text, marked interrupted
  return rc;
}
