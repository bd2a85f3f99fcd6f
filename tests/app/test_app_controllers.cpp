// The app's controllers around ChatController (QTest, offscreen): the per-chat settings panel
// (stored per conversation, and carried by the request the engine gets), what the app remembers
// across a restart (window, last chat, per-chat settings, backend), export from the Chat menu,
// and the busy state while a model loads.
#include <QAction>
#include <QCheckBox>
#include <QComboBox>
#include <QDockWidget>
#include <QDoubleSpinBox>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMenu>
#include <QPlainTextEdit>
#include <QSettings>
#include <QMenuBar>
#include <QSpinBox>
#include <QStatusBar>
#include <QTemporaryDir>
#include <QtTest>

#include <memory>

#include "bridge/engine_client.h"
#include "controller/app_session.h"
#include "controller/chat_controller.h"
#include "controller/chat_request.h"
#include "controller/chat_settings_controller.h"
#include "controller/conversation_exporter.h"
#include "controller/model_menu.h"
#include "core/chat_settings.h"
#include "core/conversation_store.h"
#include "ui/chat_settings_panel.h"
#include "ui/error_banner.h"
#include "ui/input_box.h"
#include "ui/main_window.h"
#include "ui/status_bar_widget.h"

using namespace peregrine;
using app::ChatController;
using app::ChatSettings;

namespace {

QString tinyModelPath() { return QStringLiteral(PEREGRINE_TEST_DATA_DIR "/qwen35-tiny/tiny-f32.gguf"); }

// What a user does to pick an entry of a combo box (activated is the "user chose" signal).
void choose(QComboBox* box, const QVariant& data) {
  const int row = box->findData(data);
  QVERIFY2(row >= 0, qPrintable(data.toString()));
  box->setCurrentIndex(row);
  emit box->activated(row);
}

// The app's objects as main() makes them, over one store and one settings file.
struct AppUnderTest {
  AppUnderTest(app::ConversationStore& store, app::EngineClient& engine, QSettings& settings, const QString& models)
      : menu(window, engine, settings, models),
        chat(window, store, engine, options()),
        chatSettings(window, chat),
        exporter(window, chat, store),
        session(window, chat, store, settings) {}

  static ChatController::Options options() {
    ChatController::Options o;
    o.maxTokens = 64;
    o.ignoreEos = true;
    o.flushTimerMs = 10;
    return o;
  }

  ui::MainWindow window;
  app::ModelMenu menu;
  ChatController chat;
  app::ChatSettingsController chatSettings;
  app::ConversationExporter exporter;
  app::AppSession session;
};

}  // namespace

class AppControllersTest : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() {
    // QSettings() (MainWindow's close saves there too) must not touch the user's files.
    QVERIFY(settingsHome_.isValid());
    QSettings::setPath(QSettings::NativeFormat, QSettings::UserScope, settingsHome_.path());
    QSettings::setPath(QSettings::IniFormat, QSettings::UserScope, settingsHome_.path());
  }

  void init() {
    dir_ = std::make_unique<QTemporaryDir>();
    QVERIFY(dir_->isValid());
    QVERIFY(QDir().mkpath(modelsFolder()));
    openStore();
    engine_ = std::make_unique<app::EngineClient>();
    settings_ = std::make_unique<QSettings>(dir_->filePath(QStringLiteral("peregrine.ini")), QSettings::IniFormat);
  }

  void cleanup() {
    app_.reset();
    engine_.reset();
    settings_.reset();
    store_.reset();
    dir_.reset();
  }

  void chatSettingsRoundTripAndPresets() {
    ChatSettings s;
    QVERIFY(s.usesModelCardSampling());
    s.systemPrompt = QStringLiteral("Answer in French.");
    s.thinking = false;
    s.applyPreset(QLatin1String(ChatSettings::kCoding));
    QCOMPARE(s.sampling, *ChatSettings::presetValues(QLatin1String(ChatSettings::kCoding)));
    s.maxTokens = 300;
    s.mtp = QStringLiteral("3");
    const QJsonObject json = s.toJson(QJsonObject{{QStringLiteral("future_key"), 7}});
    QCOMPARE(json.value(QStringLiteral("future_key")).toInt(), 7);  // unknown keys are kept
    QCOMPARE(ChatSettings::fromJson(json), s);
    // Edited values make a custom preset; choosing none goes back to the model card.
    s.setCustomSampling({0.42, 0.9, 10, 0.1, 0.0});
    QCOMPARE(ChatSettings::fromJson(s.toJson()).preset, QLatin1String(ChatSettings::kCustom));
    QCOMPARE(ChatSettings::fromJson(s.toJson()).sampling.temperature, 0.42);
    s.applyPreset(QString());
    QVERIFY(!s.toJson().contains(QStringLiteral("temperature")));
    // The key the first controller read.
    QCOMPARE(ChatSettings::fromJson({{QStringLiteral("systemPrompt"), QStringLiteral("old")}}).systemPrompt,
             QStringLiteral("old"));
    // Every preset differs from the others.
    QCOMPARE(ChatSettings::presetNames().size(), 3);
    QVERIFY(!(*ChatSettings::presetValues(QStringLiteral("precise")) == *ChatSettings::presetValues(QStringLiteral("creative"))));
  }

  void settingsPanelIsPerChatAndDrivesTheRequest() {
    makeApp();
    QVERIFY(loadTinyModel());
    ui::ChatSettingsPanel* panel = app_->window.chatSettingsPanel();
    app_->chat.newConversation();
    const qint64 first = app_->chat.currentConversation();
    // A new chat shows the model card's sampling for thinking mode.
    QCOMPARE(panel->presetBox()->currentData().toString(), QString());
    QCOMPARE(panel->temperatureBox()->value(), app::modelCardSampling(true).temperature);
    QCOMPARE(panel->maxTokensBox()->value(), 64);

    panel->systemPromptEdit()->setPlainText(QStringLiteral("You are a terse assistant."));
    choose(panel->presetBox(), QLatin1String(ChatSettings::kPrecise));
    QCOMPARE(panel->topKBox()->value(), ChatSettings::presetValues(QStringLiteral("precise"))->topK);
    panel->temperatureBox()->setValue(0.42);  // an edited value: preset Custom
    QCOMPARE(panel->presetBox()->currentData().toString(), QLatin1String(ChatSettings::kCustom));
    panel->maxTokensBox()->setValue(24);
    choose(panel->mtpBox(), QStringLiteral("off"));
    panel->thinkingBox()->setChecked(false);
    QVERIFY(!app_->window.thinkingAction()->isChecked());  // the menu toggle follows

    // Stored with the conversation.
    const ChatSettings stored = ChatSettings::fromJson(store_->conversation(first)->settings);
    QCOMPARE(stored.systemPrompt, QStringLiteral("You are a terse assistant."));
    QCOMPARE(stored.sampling.temperature, 0.42);
    QCOMPARE(stored.maxTokens.value_or(0), 24);
    QCOMPARE(stored.mtp, QStringLiteral("off"));
    QVERIFY(!stored.thinking);

    // And carried by the request the engine gets.
    QSignalSpy finished(&app_->chat, &ChatController::answerFinished);
    app_->window.inputBox()->setText(QStringLiteral("Hello"));
    QTest::keyClick(app_->window.inputBox()->editor(), Qt::Key_Return);
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 30000);
    const app::GenerationRequest& request = *app_->chat.lastRequest();
    QCOMPARE(request.messages.front().role, std::string("system"));
    QCOMPARE(request.messages.front().content, std::string("You are a terse assistant."));
    QCOMPARE(request.sampling.temperature, 0.42f);
    QCOMPARE(request.sampling.top_k, 20);
    QCOMPARE(request.maxTokens, 24);
    QVERIFY(request.mtp == MtpSetting::off());
    QVERIFY(!request.options.enable_thinking);
    // The engine obeyed the limit (ignoreEos: exactly that many), and the answer records what it used.
    const app::Message answer = store_->currentPath(first).last();
    QVERIFY(answer.stats.has_value());
    QCOMPARE(answer.stats->generated_tokens, 24);
    QCOMPARE(answer.sampling.value(QStringLiteral("temperature")).toDouble(), 0.42);
    QCOMPARE(answer.sampling.value(QStringLiteral("mtp")).toString(), QStringLiteral("off"));

    // Another chat has its own (default) settings; coming back shows the first chat's.
    app_->chat.newConversation();
    QCOMPARE(panel->systemPromptEdit()->toPlainText(), QString());
    QVERIFY(panel->thinkingBox()->isChecked());
    QCOMPARE(panel->maxTokensBox()->value(), 64);
    app_->chat.openConversation(first);
    QCOMPARE(panel->systemPromptEdit()->toPlainText(), QStringLiteral("You are a terse assistant."));
    QCOMPARE(panel->temperatureBox()->value(), 0.42);
    QVERIFY(!panel->thinkingBox()->isChecked());
    // The menu toggle changes the panel too.
    app_->window.thinkingAction()->trigger();
    QVERIFY(panel->thinkingBox()->isChecked());
  }

  void settingsPersistAcrossRestart() {
    makeApp();
    app_->session.restore();
    app_->window.show();
    app_->chat.newConversation();
    const qint64 chatId = app_->chat.currentConversation();
    app_->chat.newConversation();  // a second chat, so "the last one" is not just the first
    app_->chat.openConversation(chatId);
    app_->window.chatSettingsPanel()->systemPromptEdit()->setPlainText(QStringLiteral("Be brief."));
    choose(app_->window.chatSettingsPanel()->presetBox(), QLatin1String(ChatSettings::kCreative));
    app_->window.chatSettingsAction()->trigger();  // shows the dock
    QVERIFY(app_->window.chatSettingsDock()->isVisible());
    app_->window.resize(910, 630);
    QAction* cpu = app_->menu.backendMenu()->findChild<QAction*>(QStringLiteral("backend_cpu"));
    QVERIFY(cpu);
    cpu->trigger();
    app_->window.close();  // saves
    app_.reset();
    settings_.reset();
    store_.reset();

    // The next start.
    openStore();
    settings_ = std::make_unique<QSettings>(dir_->filePath(QStringLiteral("peregrine.ini")), QSettings::IniFormat);
    makeApp();
    app_->session.restore();
    QCOMPARE(app_->window.size(), QSize(910, 630));
    QCOMPARE(app_->chat.currentConversation(), chatId);
    QVERIFY(!app_->window.chatSettingsDock()->isHidden());
    ui::ChatSettingsPanel* panel = app_->window.chatSettingsPanel();
    QCOMPARE(panel->systemPromptEdit()->toPlainText(), QStringLiteral("Be brief."));
    QCOMPARE(panel->presetBox()->currentData().toString(), QLatin1String(ChatSettings::kCreative));
    QCOMPARE(app_->menu.backend(), BackendKind::Cpu);
    QCOMPARE(app_->menu.modelOptions().backend, BackendKind::Cpu);
    QVERIFY(app_->menu.backendMenu()->findChild<QAction*>(QStringLiteral("backend_cpu"))->isChecked());
    QVERIFY(!app_->menu.backendMenu()->findChild<QAction*>(QStringLiteral("backend_auto"))->isChecked());
  }

  void exportWritesMarkdownAndJson() {
    const qint64 id = store_->createConversation(QStringLiteral("Paris: trip/plan"));
    const qint64 question = store_->appendUserMessage(id, app::kNoMessage, QStringLiteral("What is the capital of France?"));
    const qint64 answer = store_->beginAssistantMessage(id, question, QStringLiteral("tiny"));
    store_->appendStreamText(answer, QStringLiteral("Paris."));
    store_->finishAssistantMessage(answer, std::nullopt);
    makeApp();
    app_->chat.openConversation(id);
    QString suggested;
    QString chosen = dir_->filePath(QStringLiteral("out.md"));
    app_->exporter.setPathChooser([&](const QString& path, const QString&) {
      suggested = path;
      return chosen;
    });
    app_->window.exportMarkdownAction()->trigger();
    QVERIFY(suggested.endsWith(QStringLiteral("Paris- trip-plan.md")));
    QFile markdown(chosen);
    QVERIFY(markdown.open(QIODevice::ReadOnly));
    const QString text = QString::fromUtf8(markdown.readAll());
    QVERIFY(text.startsWith(QStringLiteral("# Paris: trip/plan")));
    QVERIFY(text.contains(QStringLiteral("What is the capital of France?")));
    QVERIFY(text.contains(QStringLiteral("Paris.")));

    chosen = dir_->filePath(QStringLiteral("out.json"));
    app_->window.exportJsonAction()->trigger();
    QFile json(chosen);
    QVERIFY(json.open(QIODevice::ReadOnly));
    const QJsonObject root = QJsonDocument::fromJson(json.readAll()).object();
    QCOMPARE(root.value(QStringLiteral("format")).toString(), QStringLiteral("peregrine.conversation"));
    QCOMPARE(root.value(QStringLiteral("messages")).toArray().size(), 2);

    // Cancelling the dialog writes nothing; an unwritable path is reported, not thrown.
    chosen.clear();
    QVERIFY(!app_->exporter.exportCurrent(app::ConversationExporter::Format::Json));
    QVERIFY(!app_->exporter.exportTo(id, app::ConversationExporter::Format::Json,
                                     dir_->filePath(QStringLiteral("missing/dir/out.json"))));
    QVERIFY(app_->window.errorBanner()->message().startsWith(QStringLiteral("Could not export the chat")));
    // The actions are in the Chat menu.
    bool inMenu = false;
    for (QMenu* menu : app_->window.menuBar()->findChildren<QMenu*>())
      inMenu = inMenu || (menu->actions().contains(app_->window.exportJsonAction()) &&
                          menu->actions().contains(app_->window.newChatAction()));
    QVERIFY(inMenu);
  }

  void modelLoadShowsBusyStateAndErrors() {
    makeApp();
    ui::StatusBarWidget* status = app_->window.statusWidget();
    QVERIFY(!status->isBusy());
    QSignalSpy loaded(engine_.get(), &app::EngineClient::modelLoaded);
    app_->menu.load(tinyModelPath());
    QVERIFY(status->isBusy());
    QVERIFY(status->modelText().startsWith(QStringLiteral("Loading")));
    QTRY_COMPARE_WITH_TIMEOUT(loaded.count(), 1, 30000);
    QVERIFY(!status->isBusy());
    QVERIFY(!status->backendText().isEmpty());

    const QString bad = modelsFolder() + QStringLiteral("/broken.gguf");
    QFile file(bad);
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.write("GGUF and nothing else");
    file.close();
    QSignalSpy failed(engine_.get(), &app::EngineClient::modelLoadFailed);
    app_->menu.load(bad);
    QVERIFY(status->isBusy());
    QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, 30000);
    QVERIFY(!status->isBusy());
    QVERIFY(app_->menu.lastError().contains(QStringLiteral("broken.gguf")));
    QVERIFY(app_->window.statusBar()->currentMessage().contains(QStringLiteral("broken.gguf")));
  }

 private:
  QString modelsFolder() const { return dir_->filePath(QStringLiteral("models")); }

  void openStore() {
    app::StoreOptions options;
    options.backupsToKeep = 0;
    options.flushInterval = std::chrono::milliseconds(20);
    store_ = std::make_unique<app::ConversationStore>(dir_->filePath(QStringLiteral("chats.db")), options);
  }

  void makeApp() { app_ = std::make_unique<AppUnderTest>(*store_, *engine_, *settings_, modelsFolder()); }

  bool loadTinyModel() {
    QSignalSpy loaded(engine_.get(), &app::EngineClient::modelLoaded);
    peregrine::ModelOptions options;
    options.context_length = 4096;
    engine_->loadModel(tinyModelPath(), options);
    return loaded.wait(30000) || loaded.count() == 1;
  }

  QTemporaryDir settingsHome_;
  std::unique_ptr<QTemporaryDir> dir_;
  std::unique_ptr<app::ConversationStore> store_;
  std::unique_ptr<app::EngineClient> engine_;
  std::unique_ptr<QSettings> settings_;
  std::unique_ptr<AppUnderTest> app_;
};

QTEST_MAIN(AppControllersTest)
#include "test_app_controllers.moc"
