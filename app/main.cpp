// peregrine — the desktop app: the window (ui/), the conversation store (app/core/) and the
// engine thread (app/bridge/), joined by ChatController and ModelMenu (app/controller/).
//
//   peregrine [--dark|--light] [--screenshot FILE [--ask TEXT]] | --help | --version
//
// --screenshot is for checking the real binary headless (xvfb-run): once a model is loaded (and,
// with --ask, the answer to TEXT has streamed in) the window is saved to FILE and the app quits.
// A start-up error (database, demo model) then shows no dialog: it is logged and the app exits
// with status 1. --help and --version need no display.
#include <QApplication>
#include <QCommandLineParser>
#include <QDateTime>
#include <QDir>
#include <QMessageBox>
#include <QSettings>
#include <QStandardPaths>
#include <QStatusBar>
#include <QTimer>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string_view>

#include "bridge/engine_client.h"
#include "bridge/model_library.h"
#include "controller/app_session.h"
#include "controller/chat_controller.h"
#include "controller/chat_settings_controller.h"
#include "controller/conversation_exporter.h"
#include "controller/model_menu.h"
#include "core/conversation_store.h"
#include "peregrine/error.h"
#include "peregrine/log.h"
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

// The app's name and version, for QSettings, --version and the desktop; static, so they can be
// set before any application object exists.
void setApplicationIdentity() {
  QCoreApplication::setOrganizationName(QStringLiteral("Peregrine"));
  QCoreApplication::setApplicationName(QStringLiteral("peregrine"));
  QCoreApplication::setApplicationVersion(QStringLiteral(PEREGRINE_VERSION));
}

struct CommandLine {
  QCommandLineParser parser;
  QCommandLineOption help = parser.addHelpOption();
  QCommandLineOption version = parser.addVersionOption();
  QCommandLineOption dark{QStringLiteral("dark"), QStringLiteral("Use the dark palette.")};
  QCommandLineOption light{QStringLiteral("light"), QStringLiteral("Use the light palette.")};
  QCommandLineOption screenshot{
      QStringLiteral("screenshot"),
      QStringLiteral("Save the window to FILE once a model is loaded, then quit. Start-up errors are "
                     "logged and end the app with a non-zero status instead of showing a dialog."),
      QStringLiteral("FILE")};
  QCommandLineOption ask{QStringLiteral("ask"), QStringLiteral("With --screenshot: send TEXT first."),
                         QStringLiteral("TEXT")};

  CommandLine() {
    parser.setApplicationDescription(QStringLiteral("Peregrine: a local Qwen 3.6 assistant"));
    parser.addOptions({dark, light, screenshot, ask});
  }
};

// --help and --version are answered before the QApplication exists: making one loads the
// platform plugin, which aborts where there is no display, and neither answer needs it.
// Returns only when neither was asked for.
void answerHelpOrVersion(int argc, char** argv) {
  CommandLine commandLine;
  QStringList arguments;
  for (int i = 0; i < argc; ++i) arguments << QString::fromLocal8Bit(argv[i]);
  // Errors (Qt's own options such as -platform included) are left to the full parse later.
  QCommandLineParser& parser = commandLine.parser;
  parser.parse(arguments);
  if (!parser.isSet(commandLine.help) && !parser.isSet(QStringLiteral("help-all")) &&
      !parser.isSet(commandLine.version))
    return;
  QCoreApplication core(argc, argv);  // the help text names the program from its arguments
  parser.process(core);               // prints the answer and exits
}

// The conversation database, or nullptr after saying why it cannot be opened: always in the log,
// and in a dialog unless the run is headless (--screenshot), where nobody could close it.
std::unique_ptr<app::ConversationStore> openStore(const QString& path, bool headless) {
  try {
    return std::make_unique<app::ConversationStore>(path);
  } catch (const std::exception& e) {
    // Nothing was modified (see ConversationStore); say why and where, and stop.
    log::get("app")->error("the conversation database cannot be opened: {}", e.what());
    if (!headless)
      QMessageBox::critical(nullptr, QStringLiteral("Peregrine"),
                            QCoreApplication::translate("main", "The conversation database cannot be opened:\n%1")
                                .arg(QString::fromStdString(e.what())));
    return nullptr;
  }
}

// With --screenshot, a demo model that cannot be made leaves nothing to show: say so and quit
// with a failure instead of waiting for a model that never comes.
void quitWhenTheDemoModelFails(app::ModelMenu& models) {
  QObject::connect(&models, &app::ModelMenu::demoModelReady, &models, [](const QString&, const QString& error) {
    if (error.isEmpty()) return;
    log::get("app")->error("--screenshot: no model to show, quitting: {}", error.toStdString());
    QCoreApplication::exit(1);
  });
}

// Without a display the default platform plugin ends the app with an abort (and a core dump)
// before any option is read; say what is missing instead. QT_QPA_PLATFORM or -platform pick a
// plugin that may need none (offscreen), so then Qt is left to decide.
void exitWhenThereIsNoDisplay(int argc, char** argv) {
  const auto isSet = [](const char* name) {
    const char* value = std::getenv(name);
    return value && *value;
  };
  if (isSet("DISPLAY") || isSet("WAYLAND_DISPLAY") || isSet("QT_QPA_PLATFORM")) return;
  for (int i = 1; i < argc; ++i) {
    const std::string_view argument = argv[i];
    if (argument == "-platform" || argument == "--platform" || argument.rfind("-platform=", 0) == 0) return;
  }
  log::get("app")->error(
      "no display to open the window on: neither DISPLAY nor WAYLAND_DISPLAY is set "
      "(QT_QPA_PLATFORM=offscreen runs without one; peregrine --help works anywhere)");
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  log::init_from_env();
  setApplicationIdentity();
  answerHelpOrVersion(argc, argv);
  exitWhenThereIsNoDisplay(argc, argv);

  QApplication app(argc, argv);
  QGuiApplication::setDesktopFileName(QStringLiteral("io.peregrine.Peregrine"));
  QApplication::setWindowIcon(QIcon::fromTheme(QStringLiteral("peregrine")));

  CommandLine commandLine;
  QCommandLineParser& parser = commandLine.parser;
  parser.process(app);
  const bool headless = parser.isSet(commandLine.screenshot);

  QSettings settings;
  const bool useDark = parser.isSet(commandLine.dark) ||
                       (!parser.isSet(commandLine.light) && settings.value(QStringLiteral("ui/dark"), false).toBool());
  ui::applyTheme(app, useDark);

  const QString dataDir = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
  const std::unique_ptr<app::ConversationStore> store =
      openStore(dataDir + QStringLiteral("/conversations.db"), headless);
  if (!store) return 1;

  // Deleted chats stay restorable for a while, then go for good (and stop turning up in backups).
  constexpr qint64 kDayMs = 24LL * 60 * 60 * 1000;
  try {
    store->purgeDeletedBefore(QDateTime::currentMSecsSinceEpoch() -
                              app::ConversationStore::kDeletedKeptDays * kDayMs);
  } catch (const peregrine::Error& e) {
    log::get("app")->warn("deleted chats could not be purged this time: {}", e.what());  // kept; next start retries
  }

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

  if (headless) {
    scheduleScreenshot(window, engine, chat, parser.value(commandLine.screenshot), parser.value(commandLine.ask));
    quitWhenTheDemoModelFails(models);
  }
  window.show();

  const app::OpenReport& report = store->openReport();
  if (report.needsAttention()) {
    // The store has logged it; the status line and a box (non-modal) tell the user.
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
