// Storage failures on the app's GUI path (issue 13 item 1): a full disk (PRAGMA max_page_count
// through ConversationStore::simulateFullDisk, with the last free space used up: fillDisk) or a database that cannot be written
// (simulateReadOnly) while the user sends, an answer starts or streams, or a chat is renamed,
// deleted, its settings saved or exported. Before the fix each of these ended the app with an
// uncaught SqliteError. Now: no abort, a message above the input box saying what failed (for a
// full disk: that the disk holding the database's folder is full), the typed text kept, nothing
// stored before lost (checked by reopening the file), and the app works again once space is back.
#include <QAction>
#include <QDir>
#include <QFileInfo>
#include <QLabel>
#include <QTemporaryDir>
#include <QtTest>

#include <memory>
#include <utility>

#include "chat_controller_fixture.h"
#include "bridge/engine_client.h"
#include "controller/chat_controller.h"
#include "controller/conversation_exporter.h"
#include "core/chat_settings.h"
#include "core/conversation_store.h"
#include "ui/chat_view.h"
#include "ui/conversation_list.h"
#include "ui/conversation_list_model.h"
#include "ui/error_banner.h"
#include "ui/input_box.h"
#include "ui/main_window.h"
#include "ui/message_list_model.h"
#include "ui/message_widget.h"

using namespace peregrine;
using app::ChatController;
using app::MessageState;

class ChatStorageErrorsTest : public QObject, private ChatControllerFixture {
  Q_OBJECT

 private slots:
  void init() { QVERIFY(setUpChat()); }

  void cleanup() { tearDownChat(); }

  void sendOnAFullDiskKeepsTheTextAndTheChats() {
    QVERIFY(makeController(/*maxTokens=*/4));
    QSignalSpy finished(chat_.get(), &ChatController::answerFinished);
    QSignalSpy failed(chat_.get(), &ChatController::storageFailed);
    sendText(QStringLiteral("First question"));
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 30000);
    const qint64 conversation = chat_->currentConversation();
    const QList<app::Message> before = store_->messages(conversation);
    QCOMPARE(before.size(), 2);

    fillDisk();
    const QString question = QStringLiteral("Second question, typed with care");
    sendText(question);
    QCOMPARE(failed.count(), 1);
    const QString message = failed.at(0).at(0).toString();
    QVERIFY2(message.contains(QStringLiteral("disk")) && message.contains(QStringLiteral("full")), qPrintable(message));
    QVERIFY2(message.contains(databaseFolder()), qPrintable(message));
    QCOMPARE(window_->errorBanner()->message(), message);
    QCOMPARE(window_->inputBox()->text(), question);  // the typed text is still there
    QVERIFY(!chat_->isGenerating());
    QVERIFY(!window_->inputBox()->isGenerating());
    QCOMPARE(window_->messageModel()->rowCount(), 2);
    QCOMPARE(store_->messages(conversation).size(), 2);

    // Space again: Enter sends the kept text, the answer streams and is stored.
    store_->simulateFullDisk(false);
    QTest::keyClick(window_->inputBox()->editor(), Qt::Key_Return);
    QVERIFY(chat_->isGenerating());
    QVERIFY(window_->errorBanner()->message().isEmpty());
    QCOMPARE(window_->inputBox()->text(), QString());
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, 30000);
    QCOMPARE(finished.at(1).at(1).value<MessageState>(), MessageState::Complete);

    const QList<app::Message> after = reopenAndReadChat(conversation);
    QCOMPARE(after.size(), 4);
    for (int i = 0; i < 2; ++i) {
      QCOMPARE(after[i].id, before[i].id);
      QCOMPARE(after[i].content, before[i].content);
      QCOMPARE(after[i].state, before[i].state);
    }
    QCOMPARE(after[2].content, question);
    QCOMPARE(after[3].state, MessageState::Complete);
  }

  // The question is stored, then the disk fills before the answer's row can be: the question
  // stays on screen and in the store, its text goes back into the box, and Enter answers that
  // stored question (no second copy of it).
  void answerThatCannotStartKeepsTheQuestion() {
    QVERIFY(makeController(/*maxTokens=*/4));
    QSignalSpy finished(chat_.get(), &ChatController::answerFinished);
    QSignalSpy failed(chat_.get(), &ChatController::storageFailed);
    chat_->newConversation();
    const qint64 conversation = chat_->currentConversation();
    bool armed = true;
    connect(window_->messageModel(), &QAbstractItemModel::rowsInserted, this, [&] {
      if (std::exchange(armed, false)) fillDisk();  // right after the question's row is shown
    });
    sendText(QStringLiteral("Will this be answered?"));
    QCOMPARE(failed.count(), 1);
    QVERIFY(failed.at(0).at(0).toString().contains(databaseFolder()));
    QVERIFY(!chat_->isGenerating());
    QCOMPARE(window_->inputBox()->text(), QStringLiteral("Will this be answered?"));
    const QList<app::Message> stored = store_->currentPath(conversation);
    QCOMPARE(stored.size(), 1);
    QCOMPARE(stored[0].content, QStringLiteral("Will this be answered?"));
    QCOMPARE(window_->messageModel()->rowCount(), 1);
    QCOMPARE(window_->messageModel()->at(0).id, stored[0].id);

    store_->simulateFullDisk(false);
    QTest::keyClick(window_->inputBox()->editor(), Qt::Key_Return);
    QVERIFY(chat_->isGenerating());
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 30000);
    const QList<app::Message> path = store_->currentPath(conversation);
    QCOMPARE(path.size(), 2);
    QCOMPARE(path[0].id, stored[0].id);
    QCOMPARE(path[1].parentId, stored[0].id);
    QCOMPARE(store_->messages(conversation).size(), 2);

    // Regenerating on a full disk: the answer on screen stays, nothing changes in the store.
    fillDisk();
    emit window_->chatView()->regenerateRequested(path[1].id);
    QCOMPARE(failed.count(), 2);
    QVERIFY(!chat_->isGenerating());
    QCOMPARE(window_->messageModel()->rowCount(), 2);
    QCOMPARE(window_->messageModel()->at(1).id, path[1].id);
    QCOMPARE(store_->conversation(conversation)->currentLeafId, path[1].id);
  }

  // The disk fills while the answer streams: the text keeps arriving on screen, the error is shown
  // once, and stopping keeps every piece on screen; once there is space again the whole answer is
  // stored (the next send writes it first).
  void diskFullWhileStreamingKeepsTheAnswer() {
    QVERIFY(makeController(/*maxTokens=*/100000));
    QSignalSpy finished(chat_.get(), &ChatController::answerFinished);
    QSignalSpy failed(chat_.get(), &ChatController::storageFailed);
    sendText(QStringLiteral("Tell me everything"));
    QTRY_VERIFY_WITH_TIMEOUT(streamedText_.size() + streamedThinking_.size() > 20, 30000);
    const qint64 answerId = chat_->streamingMessage();
    store_->simulateFullDisk(true);
    QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, 60000);  // the answer outgrows its page
    QVERIFY(failed.at(0).at(0).toString().contains(databaseFolder()));
    QVERIFY(chat_->isGenerating());
    const qsizetype shownWhenFull = streamedText_.size() + streamedThinking_.size();
    QTRY_VERIFY_WITH_TIMEOUT(streamedText_.size() + streamedThinking_.size() > shownWhenFull + 100, 30000);
    QCOMPARE(failed.count(), 1);  // said once, not at every token

    QTest::keyClick(window_->inputBox()->editor(), Qt::Key_Escape);
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 10000);
    QVERIFY(!chat_->isGenerating());
    ui::MessageWidget* shown = window_->chatView()->message(answerId);
    QVERIFY(shown);
    QVERIFY(!shown->isStreaming());
    QCOMPARE(shown->content(), streamedText_);
    QCOMPARE(shown->thinking(), streamedThinking_);
    QCOMPARE(failed.count(), 2);  // its end could not be stored either
    QVERIFY(!window_->errorBanner()->message().isEmpty());

    // Still full: a send fails and keeps its text; opening the chat again shows the answer as it
    // ended on screen, not the shorter text that reached the file.
    sendText(QStringLiteral("Next"));
    QCOMPARE(failed.count(), 3);
    QCOMPARE(window_->inputBox()->text(), QStringLiteral("Next"));
    chat_->openConversation(chat_->currentConversation());
    shown = window_->chatView()->message(answerId);
    QVERIFY(shown);
    QVERIFY(!shown->isStreaming());
    QCOMPARE(shown->content(), streamedText_);
    QCOMPARE(shown->thinking(), streamedThinking_);

    store_->simulateFullDisk(false);
    const QString streamedText = streamedText_, streamedThinking = streamedThinking_;
    sendText(QStringLiteral("Next"));
    QVERIFY(chat_->isGenerating());
    const app::Message stored = *store_->message(answerId);
    QCOMPARE(stored.state, MessageState::Interrupted);
    QCOMPARE(stored.content, streamedText);
    QCOMPARE(stored.thinking, streamedThinking);
    QVERIFY(stored.stats.has_value());
    QCOMPARE(shown->content(), streamedText);
    QVERIFY(!shown->findChild<QLabel*>(QStringLiteral("messageFooter"))->text().isEmpty());
    chat_->stop();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, 10000);
  }

  // Rename, settings and delete / undo: the store keeps what it had, the window shows what is
  // stored, and the reason is shown (full disk, or SQLite's words for a read-only file).
  void renameSettingsAndDeleteFailuresAreShown() {
    QVERIFY(makeController(/*maxTokens=*/4));
    QSignalSpy failed(chat_.get(), &ChatController::storageFailed);
    chat_->newConversation();
    const qint64 id = chat_->currentConversation();
    ui::ConversationListModel* list = window_->conversationList()->model();
    QVERIFY(list->setData(list->index(listRow(id)), QStringLiteral("Trip"), Qt::EditRole));
    QCOMPARE(failed.count(), 0);

    fillDisk();
    list->setData(list->index(listRow(id)), QString(5000, QLatin1Char('t')), Qt::EditRole);
    QCOMPARE(failed.count(), 1);
    QVERIFY(failed.at(0).at(0).toString().contains(QStringLiteral("full")));
    QVERIFY(failed.at(0).at(0).toString().contains(QStringLiteral("rename")));
    QCOMPARE(store_->conversation(id)->title, QStringLiteral("Trip"));
    QCOMPARE(list->index(listRow(id)).data().toString(), QStringLiteral("Trip"));  // what is stored

    app::ChatSettings settings = chat_->chatSettings();
    settings.systemPrompt = QString(5000, QLatin1Char('s'));
    chat_->setChatSettings(settings);
    QCOMPARE(failed.count(), 2);
    QVERIFY(failed.at(1).at(0).toString().contains(databaseFolder()));
    QVERIFY(chat_->chatSettings().systemPrompt.isEmpty());
    store_->simulateFullDisk(false);
    const int chats = static_cast<int>(store_->listConversations().size());

    store_->simulateReadOnly(true);
    emit window_->conversationList()->deleteRequested(id);
    QCOMPARE(failed.count(), 3);
    const QString reason = failed.at(2).at(0).toString();
    QVERIFY2(reason.contains(QStringLiteral("readonly")) || reason.contains(QStringLiteral("read-only")), qPrintable(reason));
    QVERIFY2(reason.contains(QStringLiteral("delete")), qPrintable(reason));
    QVERIFY(!store_->conversation(id)->deleted);
    QVERIFY(listRow(id) >= 0);
    QCOMPARE(chat_->currentConversation(), id);
    QVERIFY(!window_->undoDeleteAction()->isEnabled());

    store_->simulateReadOnly(false);
    emit window_->conversationList()->deleteRequested(id);
    QCOMPARE(listRow(id), -1);
    store_->simulateReadOnly(true);
    window_->undoDeleteAction()->trigger();
    QCOMPARE(failed.count(), 4);
    QVERIFY(store_->conversation(id)->deleted);
    QVERIFY(window_->undoDeleteAction()->isEnabled());  // still possible once the file can be written
    store_->simulateReadOnly(false);
    window_->undoDeleteAction()->trigger();
    QVERIFY(listRow(id) >= 0);
    QCOMPARE(failed.count(), 4);

    // A new chat on a read-only file: nothing happens but the message.
    store_->simulateReadOnly(true);
    window_->newChatAction()->trigger();
    QCOMPARE(failed.count(), 5);
    QCOMPARE(chat_->currentConversation(), id);
    QCOMPARE(reopenAndCountChats(), chats);
  }

  // An export that cannot be written is shown above the input box, with the path.
  void exportFailureIsShown() {
    QVERIFY(makeController(/*maxTokens=*/4));
    app::ConversationExporter exporter(*window_, *chat_, *store_);
    chat_->newConversation();
    const QString target = dir_->filePath(QStringLiteral("missing/dir/out.md"));
    QVERIFY(!exporter.exportTo(chat_->currentConversation(), app::ConversationExporter::Format::Markdown, target));
    const QString message = window_->errorBanner()->message();
    QVERIFY2(message.contains(QStringLiteral("export")), qPrintable(message));
    QVERIFY2(message.contains(QDir::toNativeSeparators(target)), qPrintable(message));
  }

 private:
  QString databaseFolder() const { return QDir::toNativeSeparators(QFileInfo(store_->path()).absolutePath()); }

  int listRow(qint64 conversationId) const {
    const ui::ConversationListModel* list = window_->conversationList()->model();
    for (int row = 0; row < list->rowCount(); ++row)
      if (list->idAt(row) == conversationId) return row;
    return -1;
  }

  // The file cannot grow, and the last page of the messages table is filled up with messages of a
  // scratch chat (halving their size until even one character no longer fits), so the next message
  // of any size needs a page the "disk" does not have.
  void fillDisk() {
    const qint64 scratch = store_->createConversation(QStringLiteral("scratch"));
    store_->simulateFullDisk(true);
    int stored = 0;
    for (int size = 4096; size >= 1; size /= 2) {
      for (;;) {
        try {
          store_->appendUserMessage(scratch, app::kNoMessage, QString(size, QLatin1Char('f')));
        } catch (const app::SqliteError& e) {
          QVERIFY2(e.isDiskFull(), e.what());
          break;
        }
        QVERIFY(++stored < 10000);
      }
    }
  }

  // Closes everything and opens the file again: what a restart would find.
  void reopen() {
    closeChat();
    openStore();
  }

  QList<app::Message> reopenAndReadChat(qint64 conversation) {
    reopen();
    return store_->currentPath(conversation);
  }

  int reopenAndCountChats() {
    reopen();
    return static_cast<int>(store_->listConversations().size());
  }

};

QTEST_MAIN(ChatStorageErrorsTest)
#include "test_chat_storage_errors.moc"
