// What the ChatController tests share: a temporary folder with a conversation database, the real
// engine thread with the tiny fixture model, the real window and the controller joining them.
// A test class derives from QObject and from this fixture; its init()/cleanup() slots call
// setUpChat()/tearDownChat().
#pragma once

#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include <chrono>
#include <functional>
#include <memory>

#include "bridge/engine_client.h"
#include "controller/chat_controller.h"
#include "core/conversation_store.h"
#include "ui/input_box.h"
#include "ui/main_window.h"

class ChatControllerFixture {
 protected:
  static QString tinyModelPath() { return QStringLiteral(PEREGRINE_TEST_DATA_DIR "/qwen35-tiny/tiny-f32.gguf"); }

  static peregrine::ModelOptions smallModelOptions() {
    peregrine::ModelOptions options;
    options.context_length = 8192;
    options.n_threads = 1;
    return options;
  }

  // A fresh folder and database, engine and window; the controller comes with makeController().
  bool setUpChat() {
    dir_ = std::make_unique<QTemporaryDir>();
    if (!dir_->isValid()) return false;
    openStore();
    engine_ = std::make_unique<peregrine::app::EngineClient>();
    window_ = std::make_unique<peregrine::ui::MainWindow>();
    streamedText_.clear();
    streamedThinking_.clear();
    return true;
  }

  // In the app's destruction order: the controller (it stores a running answer) before the engine
  // thread, the store last.
  void tearDownChat() {
    closeChat();
    dir_.reset();
  }

  void closeChat() {
    chat_.reset();
    window_.reset();
    engine_.reset();
    store_.reset();
  }

  // The database in the fixture's folder, without backups and with a short flush interval.
  void openStore() {
    peregrine::app::StoreOptions options;
    options.backupsToKeep = 0;
    options.flushInterval = std::chrono::milliseconds(20);
    store_ = std::make_unique<peregrine::app::ConversationStore>(dir_->filePath(QStringLiteral("chats.db")), options);
  }

  // The controller over the window, store and engine, with the tiny model loaded. Answers are at
  // most maxTokens long (EOS ignored, so the length is known). afterEachPiece runs after the
  // controller has handled each streamed piece (it is connected after the controller).
  bool makeController(int maxTokens, std::function<void()> afterEachPiece = {}) {
    peregrine::app::ChatController::Options options;
    options.maxTokens = maxTokens;
    options.ignoreEos = true;
    options.flushTimerMs = 10;
    chat_ = std::make_unique<peregrine::app::ChatController>(*window_, *store_, *engine_, options);
    QObject::connect(engine_.get(), &peregrine::app::EngineClient::answerText, chat_.get(),
                     [this, afterEachPiece](quint64, const QString& s) {
                       streamedText_ += s;
                       if (afterEachPiece) afterEachPiece();
                     });
    QObject::connect(engine_.get(), &peregrine::app::EngineClient::thinkingText, chat_.get(),
                     [this, afterEachPiece](quint64, const QString& s) {
                       streamedThinking_ += s;
                       if (afterEachPiece) afterEachPiece();
                     });
    QSignalSpy loaded(engine_.get(), &peregrine::app::EngineClient::modelLoaded);
    engine_->loadModel(tinyModelPath(), smallModelOptions());
    return loaded.wait(30000) || loaded.count() == 1;
  }

  // Types text into the input box and presses Enter, as a person sends a message.
  void sendText(const QString& text) {
    window_->inputBox()->setText(text);
    QTest::keyClick(window_->inputBox()->editor(), Qt::Key_Return);
  }

  std::unique_ptr<QTemporaryDir> dir_;
  std::unique_ptr<peregrine::app::ConversationStore> store_;
  std::unique_ptr<peregrine::app::EngineClient> engine_;
  std::unique_ptr<peregrine::ui::MainWindow> window_;
  std::unique_ptr<peregrine::app::ChatController> chat_;
  QString streamedText_;
  QString streamedThinking_;
};
