// The desktop app's controllers over the real engine thread, the real store and the real window
// (QTest, offscreen): send → streamed answer appears → stored complete; stop keeps the partial
// answer; regenerate makes a sibling branch; quitting during generation neither hangs nor loses
// the partial text; search, delete and undo; first start makes and loads the demo model; a bad
// model file is reported in the window.
#include <QAction>
#include <QElapsedTimer>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QMessageBox>
#include <QPointer>
#include <QSettings>
#include <QStatusBar>
#include <QTemporaryDir>
#include <QtTest>

#include <memory>
#include <optional>

#include "chat_controller_fixture.h"
#include "bridge/demo_model.h"
#include "bridge/engine_client.h"
#include "bridge/model_library.h"
#include "controller/chat_controller.h"
#include "controller/model_menu.h"
#include "core/chat_settings.h"
#include "core/conversation_store.h"
#include "ui/chat_view.h"
#include "ui/conversation_list.h"
#include "ui/conversation_list_model.h"
#include "ui/input_box.h"
#include "ui/main_window.h"
#include "ui/message_list_model.h"
#include "ui/message_widget.h"
#include "ui/status_bar_widget.h"

using namespace peregrine;
using app::ChatController;
using app::MessageState;

class ChatControllerTest : public QObject, private ChatControllerFixture {
  Q_OBJECT

 private slots:
  void init() {
    QVERIFY(setUpChat());
    textWhileStreaming_ = false;
  }

  void cleanup() { tearDownChat(); }

  void sendStreamsTheAnswerAndStoresIt() {
    QVERIFY(makeStreamingController(/*maxTokens=*/48));
    QSignalSpy finished(chat_.get(), &ChatController::answerFinished);
    sendText(QStringLiteral("What is the capital of France?"));
    QVERIFY(chat_->isGenerating());
    QVERIFY(window_->inputBox()->isGenerating());
    // The question is committed before the answer streams.
    const QList<app::Message> before = store_->currentPath(chat_->currentConversation());
    QCOMPARE(before.size(), 2);
    QCOMPARE(before[0].content, QStringLiteral("What is the capital of France?"));
    QCOMPARE(before[1].state, MessageState::Streaming);
    QCOMPARE(store_->message(before[0].id)->state, MessageState::Complete);

    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 30000);
    QCOMPARE(finished.at(0).at(1).value<MessageState>(), MessageState::Complete);
    QVERIFY2(textWhileStreaming_, "the chat view showed no text while the answer streamed");

    const QList<app::Message> path = store_->currentPath(chat_->currentConversation());
    QCOMPARE(path.size(), 2);
    const app::Message& answer = path[1];
    QCOMPARE(answer.state, MessageState::Complete);
    QVERIFY(!(answer.content + answer.thinking).isEmpty());
    QCOMPARE(answer.content, streamedText_);
    QCOMPARE(answer.thinking, streamedThinking_);
    QVERIFY(answer.stats.has_value());
    QCOMPARE(answer.stats->generated_tokens, 48);
    QVERIFY(answer.stats->prompt_tokens > 0);
    QVERIFY(answer.stats->decode_tok_s > 0);
    QVERIFY(answer.model.size() > 0);
    QVERIFY(!window_->inputBox()->isGenerating());

    // The view shows the stored answer and the status bar the speed.
    ui::MessageWidget* shown = window_->chatView()->lastMessage();
    QCOMPARE(shown->messageId(), answer.id);
    QVERIFY(!shown->isStreaming());
    QVERIFY(window_->statusWidget()->speedText().contains(QStringLiteral("tok/s")));
    QVERIFY(!window_->statusWidget()->speedText().startsWith(QStringLiteral("—")));
    // The conversation list shows the chat, titled from the question.
    QCOMPARE(window_->conversationList()->model()->rowCount(), 1);
    QVERIFY(window_->conversationList()->model()->index(0).data().toString().contains(QStringLiteral("capital")));
  }

  // The controller changes the message list model only: a second question and its answer add two
  // rows, the widgets of the first exchange stay the same objects (no rebuild from the store), and
  // the rows equal what the store holds afterwards.
  void sendingKeepsTheEarlierMessageWidgets() {
    QVERIFY(makeStreamingController(/*maxTokens=*/8));
    QSignalSpy finished(chat_.get(), &ChatController::answerFinished);
    sendText(QStringLiteral("First question"));
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 30000);
    const QList<ui::MessageWidget*> first = window_->chatView()->messages();
    QCOMPARE(first.size(), 2);
    const QPointer<ui::MessageWidget> question(first[0]), answer(first[1]);
    QSignalSpy resets(window_->messageModel(), &QAbstractItemModel::modelReset);

    sendText(QStringLiteral("Second question"));
    QCOMPARE(window_->chatView()->messages().size(), 4);
    QPointer<ui::MessageWidget> streaming = window_->chatView()->messages().last();
    QVERIFY(streaming->isStreaming());
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, 30000);

    QCOMPARE(resets.count(), 0);
    const QList<ui::MessageWidget*> after = window_->chatView()->messages();
    QCOMPARE(after.size(), 4);
    QVERIFY(question && answer && streaming);
    QCOMPARE(after[0], question.data());
    QCOMPARE(after[1], answer.data());
    QCOMPARE(after[3], streaming.data());  // the finished answer is the widget that streamed
    QVERIFY(!streaming->isStreaming());
    QVERIFY(!streaming->findChild<QLabel*>(QStringLiteral("messageFooter"))->text().isEmpty());

    QList<ui::MessageItem> stored;
    for (const app::Message& m : store_->currentPath(chat_->currentConversation()))
      stored << ui::messageItemFrom(m, store_->siblings(m.id));
    QCOMPARE(stored.size(), 4);
    const QList<ui::MessageItem>& rows = window_->messageModel()->messages();
    for (int i = 0; i < stored.size(); ++i) {
      QVERIFY2(rows[i] == stored[i], qPrintable(QStringLiteral("row %1 differs from the store").arg(i)));
      QCOMPARE(after[i]->thinking(), stored[i].thinking);
      QCOMPARE(after[i]->content(), stored[i].content);
    }
  }

  // Issue 12: the MTP acceptance of a real answer used to be lost between the engine and the
  // store. One statistics type from the engine to the database and the footer.
  void mtpAcceptanceReachesTheDatabaseAndTheFooter() {
    QVERIFY(makeStreamingController(/*maxTokens=*/32));  // the fixture has an MTP block
    QVERIFY(engine_->model()->hasMtp);
    chat_->newConversation();
    app::ChatSettings settings = chat_->chatSettings();
    settings.mtp = QStringLiteral("2");  // draft two tokens per step
    chat_->setChatSettings(settings);
    std::optional<peregrine::GenerationStats> reported;
    QObject::connect(engine_.get(), &app::EngineClient::finished, chat_.get(),
                     [&reported](quint64, const peregrine::GenerationStats& stats) { reported = stats; });
    QSignalSpy finished(chat_.get(), &ChatController::answerFinished);
    sendText(QStringLiteral("Draft ahead, please"));
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 30000);

    QVERIFY(reported.has_value());
    QVERIFY2(reported->mtp.active, "the engine did not draft with the MTP block");
    QVERIFY(reported->mtp.drafted > 0);
    const app::Message answer = *store_->message(finished.at(0).at(0).toLongLong());
    QVERIFY(answer.stats.has_value());
    QVERIFY(answer.stats->mtp.active);
    QCOMPARE(answer.stats->mtp.acceptance_rate, reported->mtp.acceptance_rate);
    QCOMPARE(answer.stats->mtp.drafted, reported->mtp.drafted);
    QCOMPARE(answer.stats->mtp.accepted, reported->mtp.accepted);
    // The whole object, as the engine reported it.
    QCOMPARE(QString::fromStdString(peregrine::generation_stats_to_json(*answer.stats)),
             QString::fromStdString(peregrine::generation_stats_to_json(*reported)));

    ui::MessageWidget* shown = window_->chatView()->message(answer.id);
    QVERIFY(shown);
    const QString footer = shown->findChild<QLabel*>(QStringLiteral("messageFooter"))->text();
    const QString expected =
        QStringLiteral("MTP %1%").arg(reported->mtp.acceptance_rate * 100.0, 0, 'f', 0);
    QVERIFY2(footer.contains(expected), qPrintable(footer + QStringLiteral(" lacks ") + expected));
  }

  void stopKeepsThePartialAnswer() {
    QVERIFY(makeStreamingController(/*maxTokens=*/4000));
    QSignalSpy finished(chat_.get(), &ChatController::answerFinished);
    sendText(QStringLiteral("Tell me a long story"));
    QTRY_VERIFY_WITH_TIMEOUT(streamedText_.size() + streamedThinking_.size() > 20, 30000);
    QTest::keyClick(window_->inputBox()->editor(), Qt::Key_Escape);
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 10000);
    QCOMPARE(finished.at(0).at(1).value<MessageState>(), MessageState::Interrupted);

    const app::Message answer = store_->currentPath(chat_->currentConversation()).last();
    QCOMPARE(answer.role, app::Role::Assistant);
    QCOMPARE(answer.state, MessageState::Interrupted);
    QCOMPARE(answer.content, streamedText_);
    QCOMPARE(answer.thinking, streamedThinking_);
    QVERIFY(!(answer.content + answer.thinking).isEmpty());
    QVERIFY(answer.stats.has_value());
    QVERIFY(answer.stats->generated_tokens < 4000);
    QCOMPARE(answer.stats->stop_reason, std::optional(peregrine::StopReason::Cancelled));
    QVERIFY(!chat_->isGenerating());
    QVERIFY(window_->chatView()->lastMessage()->findChild<QLabel*>(QStringLiteral("messageFooter"))
                ->text().contains(QStringLiteral("interrupted")));
    // The client is free for the next question.
    QCOMPARE(engine_->state(), app::EngineClient::State::Ready);
  }

  void regenerateCreatesABranch() {
    QVERIFY(makeStreamingController(/*maxTokens=*/16));
    QSignalSpy finished(chat_.get(), &ChatController::answerFinished);
    sendText(QStringLiteral("Question"));
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 30000);
    const qint64 first = window_->chatView()->lastMessage()->messageId();
    const app::Message firstStored = *store_->message(first);

    emit window_->chatView()->regenerateRequested(first);
    QVERIFY(chat_->isGenerating());
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, 30000);
    const qint64 second = window_->chatView()->lastMessage()->messageId();
    QVERIFY(second != first);
    QCOMPARE(store_->siblings(second).ids, (QList<qint64>{first, second}));
    QCOMPARE(store_->message(second)->parentId, firstStored.parentId);
    QCOMPARE(store_->message(second)->state, MessageState::Complete);
    // The old answer is kept as it was.
    QCOMPARE(store_->message(first)->content, firstStored.content);
    QCOMPARE(store_->message(first)->thinking, firstStored.thinking);
    auto* position = window_->chatView()->lastMessage()->findChild<QLabel*>(QStringLiteral("branchPosition"));
    QVERIFY(position);
    QCOMPARE(position->text(), QStringLiteral("2/2"));
    // ◀ goes back to the first answer.
    emit window_->chatView()->lastMessage()->branchRequested(second, -1);
    QCOMPARE(window_->chatView()->lastMessage()->messageId(), first);
    QCOMPARE(store_->conversation(chat_->currentConversation())->currentLeafId, first);
  }

  void editCreatesABranch() {
    QVERIFY(makeStreamingController(/*maxTokens=*/8));
    QSignalSpy finished(chat_.get(), &ChatController::answerFinished);
    sendText(QStringLiteral("Original question"));
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 30000);
    const QList<app::Message> first = store_->currentPath(chat_->currentConversation());
    QCOMPARE(first.size(), 2);

    emit window_->chatView()->editRequested(first[0].id);
    QCOMPARE(chat_->editedMessage(), first[0].id);
    QCOMPARE(window_->inputBox()->text(), QStringLiteral("Original question"));
    sendText(QStringLiteral("Edited question"));
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, 30000);

    const QList<app::Message> second = store_->currentPath(chat_->currentConversation());
    QCOMPARE(second.size(), 2);
    QCOMPARE(second[0].content, QStringLiteral("Edited question"));
    QCOMPARE(store_->siblings(second[0].id).ids, (QList<qint64>{first[0].id, second[0].id}));
    QCOMPARE(store_->message(first[0].id)->content, QStringLiteral("Original question"));
    QCOMPARE(store_->messages(chat_->currentConversation()).size(), 4);
    QCOMPARE(chat_->editedMessage(), app::kNoMessage);

    // Esc while editing cancels the edit (nothing is sent).
    emit window_->chatView()->editRequested(second[0].id);
    QTest::keyClick(window_->inputBox()->editor(), Qt::Key_Escape);
    QCOMPARE(chat_->editedMessage(), app::kNoMessage);
    QCOMPARE(window_->inputBox()->text(), QString());
  }

  void quittingDuringGenerationDoesNotHang() {
    QVERIFY(makeStreamingController(/*maxTokens=*/100000));
    window_->show();
    sendText(QStringLiteral("Go on forever"));
    QTRY_VERIFY_WITH_TIMEOUT(streamedText_.size() + streamedThinking_.size() > 20, 30000);
    const qint64 answerId = chat_->streamingMessage();
    QVERIFY(answerId);

    QElapsedTimer clock;
    clock.start();
    QVERIFY(window_->close());  // MainWindow::closing → the controller stores the partial answer
    QVERIFY(!chat_->isGenerating());
    QTest::qWait(50);           // late engine signals arrive and are ignored
    chat_.reset();
    window_.reset();
    engine_.reset();            // cancels the answer and joins the engine thread
    QVERIFY2(clock.elapsed() < 3000, qPrintable(QStringLiteral("quit took %1 ms").arg(clock.elapsed())));

    const app::Message answer = *store_->message(answerId);
    QCOMPARE(answer.state, MessageState::Interrupted);
    QVERIFY(!(answer.content + answer.thinking).isEmpty());
    // Everything stored was streamed (nothing invented, at most the pieces after the close missing).
    // (left() rather than startsWith(): a null QString starts with nothing in Qt 6.)
    QVERIFY2(streamedText_.left(answer.content.size()) == answer.content,
             qPrintable(QStringLiteral("stored %1 chars, streamed %2: [%3] vs [%4]")
                            .arg(answer.content.size()).arg(streamedText_.size())
                            .arg(answer.content.right(40), streamedText_.right(40))));
    QVERIFY(streamedThinking_.left(answer.thinking.size()) == answer.thinking);
  }

  void sendWithoutModelKeepsTheText() {
    chat_ = std::make_unique<ChatController>(*window_, *store_, *engine_);
    QSignalSpy failed(chat_.get(), &ChatController::generationFailed);
    sendText(QStringLiteral("Hello?"));
    QCOMPARE(failed.count(), 1);
    QCOMPARE(window_->inputBox()->text(), QStringLiteral("Hello?"));
    QVERIFY(store_->listConversations().isEmpty());
    QVERIFY(window_->statusBar()->currentMessage().contains(QStringLiteral("Model menu")));
  }

  void searchDeleteAndUndo() {
    QVERIFY(makeStreamingController(/*maxTokens=*/4));
    QSignalSpy finished(chat_.get(), &ChatController::answerFinished);
    sendText(QStringLiteral("Ring buffers in C"));
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 30000);
    const qint64 id = chat_->currentConversation();
    ui::ConversationListModel* list = window_->conversationList()->model();

    emit window_->conversationList()->searchChanged(QStringLiteral("buffers"));
    QCOMPARE(list->rowCount(), 1);
    emit window_->conversationList()->searchChanged(QStringLiteral("zebra"));
    QCOMPARE(list->rowCount(), 0);
    emit window_->conversationList()->searchChanged(QString());
    QCOMPARE(list->rowCount(), 1);

    QVERIFY(list->setData(list->index(0), QStringLiteral("Renamed"), Qt::EditRole));
    QCOMPARE(store_->conversation(id)->title, QStringLiteral("Renamed"));

    emit window_->conversationList()->deleteRequested(id);
    QCOMPARE(list->rowCount(), 0);
    QVERIFY(window_->chatView()->messages().isEmpty());
    QVERIFY(window_->undoDeleteAction()->isEnabled());
    window_->undoDeleteAction()->trigger();
    QVERIFY(!window_->undoDeleteAction()->isEnabled());
    QCOMPARE(list->rowCount(), 1);
    QCOMPARE(chat_->currentConversation(), id);
    QCOMPARE(window_->chatView()->messages().size(), 2);
  }

  void thinkingToggleIsPerChatAndReachesTheRequest() {
    QVERIFY(makeStreamingController(/*maxTokens=*/4));
    QSignalSpy finished(chat_.get(), &ChatController::answerFinished);
    chat_->newConversation();
    QVERIFY(chat_->thinkingEnabled());
    QAction* action = window_->thinkingAction();
    QVERIFY(action);
    QVERIFY(action->isChecked());
    action->trigger();  // off
    QVERIFY(!chat_->thinkingEnabled());
    sendText(QStringLiteral("No thinking please"));
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 30000);
    const app::Message answer = store_->currentPath(chat_->currentConversation()).last();
    QCOMPARE(answer.sampling.value(QStringLiteral("thinking")).toBool(true), false);
    // A new chat starts with thinking on again.
    chat_->newConversation();
    QVERIFY(chat_->thinkingEnabled());
    QVERIFY(action->isChecked());
  }

  void firstStartMakesTheDemoModelAndReportsBadFiles() {
    const QString models = dir_->filePath(QStringLiteral("models"));
    QVERIFY(QDir().mkpath(models));
    QSettings settings(dir_->filePath(QStringLiteral("settings.ini")), QSettings::IniFormat);
    app::ModelMenu menu(*window_, *engine_, settings, models);
    QSignalSpy demo(&menu, &app::ModelMenu::demoModelReady);
    QSignalSpy loaded(engine_.get(), &app::EngineClient::modelLoaded);
    menu.startUp();
    QTRY_COMPARE_WITH_TIMEOUT(demo.count(), 1, 30000);
    QCOMPARE(demo.at(0).at(1).toString(), QString());
    QTRY_COMPARE_WITH_TIMEOUT(loaded.count(), 1, 30000);
    QVERIFY(app::DemoModel::isDemo(engine_->model()->path));
    QCOMPARE(window_->statusWidget()->modelText(), app::DemoModel::displayName());
    QCOMPARE(settings.value(QLatin1String(app::ModelMenu::kLastModelKey)).toString(), engine_->model()->path);
    QCOMPARE(menu.library().count(), 1);
    const QList<QAction*> entries = menu.menu()->actions();
    QVERIFY(entries.first()->isChecked());

    // A broken file is listed (disabled) and loading it anyway is reported in the window.
    const QString bad = models + QStringLiteral("/broken.gguf");
    {
      QFile f(bad);
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write("GGUF but not really a model file");
    }
    menu.library().rescan();
    QCOMPARE(menu.library().count(), 2);
    QSignalSpy failed(engine_.get(), &app::EngineClient::modelLoadFailed);
    menu.load(bad);
    QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, 30000);
    QVERIFY(menu.lastError().contains(QStringLiteral("broken.gguf")));
    auto* box = window_->findChild<QMessageBox*>(QStringLiteral("modelErrorBox"));
    QVERIFY(box);
    QVERIFY(box->isVisible());
    QVERIFY(window_->statusBar()->currentMessage().contains(QStringLiteral("broken.gguf")));
    box->close();
  }

 private:
  // The streamed pieces are checked against the view after the controller has shown each one.
  bool makeStreamingController(int maxTokens) {
    return makeController(maxTokens, [this] { noteView(); });
  }

  void noteView() {
    ui::MessageWidget* w = window_->chatView()->message(chat_->streamingMessage());
    if (chat_->isGenerating() && w && w->isStreaming() && !(w->thinking() + w->content()).isEmpty())
      textWhileStreaming_ = true;
  }

  bool textWhileStreaming_ = false;
};

QTEST_MAIN(ChatControllerTest)
#include "test_chat_controller.moc"
