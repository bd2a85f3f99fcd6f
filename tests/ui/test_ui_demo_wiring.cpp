// The widgets driven through the demo wiring with real storage: send → streamed answer appears →
// stored; stop; regenerate makes a branch the ◀ ▶ navigator switches between; rename and delete.
#include <QLabel>
#include <QTemporaryDir>
#include <QtTest>

#include "demo_wiring.h"
#include "ui/chat_view.h"
#include "ui/conversation_list.h"
#include "ui/conversation_list_model.h"
#include "ui/input_box.h"
#include "ui/main_window.h"
#include "ui/message_widget.h"
#include "ui/thinking_block.h"

using namespace peregrine;
using ui::demo::DemoWiring;

class DemoWiringTest : public QObject {
  Q_OBJECT
 private slots:
  void init() {
    dir_ = std::make_unique<QTemporaryDir>();
    QVERIFY(dir_->isValid());
    app::StoreOptions options;
    options.backupsToKeep = 0;
    store_ = std::make_unique<app::ConversationStore>(dir_->filePath(QStringLiteral("chats.db")), options);
    window_ = std::make_unique<ui::MainWindow>();
    wiring_ = std::make_unique<DemoWiring>(*window_, *store_, 0);
  }
  void cleanup() {
    wiring_.reset();
    window_.reset();
    store_.reset();
  }

  void sendStreamsAndStores() {
    QSignalSpy finished(wiring_.get(), &DemoWiring::answerFinished);
    window_->inputBox()->setText(QStringLiteral("How do ring buffers work?"));
    QTest::keyClick(window_->inputBox()->editor(), Qt::Key_Return);
    QVERIFY(wiring_->isStreaming());
    QVERIFY(window_->inputBox()->isGenerating());
    // The question is stored before the answer streams.
    const QList<app::Message> before = store_->currentPath(wiring_->currentConversation());
    QCOMPARE(before.size(), 2);
    QCOMPARE(before[0].content, QStringLiteral("How do ring buffers work?"));
    QCOMPARE(before[1].state, app::MessageState::Streaming);
    // Part-way, the chat already shows text.
    QTRY_VERIFY(window_->chatView()->lastMessage()->segmentCount() >= 2);
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 10000);

    const QList<app::Message> path = store_->currentPath(wiring_->currentConversation());
    QCOMPARE(path.size(), 2);
    QCOMPARE(path[1].content, DemoWiring::cannedAnswer());
    QCOMPARE(path[1].thinking, DemoWiring::cannedThinking());
    QCOMPARE(path[1].state, app::MessageState::Complete);
    ui::MessageWidget* answer = window_->chatView()->lastMessage();
    QCOMPARE(answer->messageId(), path[1].id);
    auto* thinking = qobject_cast<ui::ThinkingBlock*>(answer->segmentWidget(0));
    QVERIFY(thinking);
    QVERIFY(!thinking->isExpanded());
    QVERIFY(window_->chatView()->lastCodeBlock());
    QCOMPARE(window_->conversationList()->model()->rowCount(), 1);
    QCOMPARE(window_->conversationList()->model()->index(0).data().toString(),
             store_->conversation(wiring_->currentConversation())->title);
  }

  void stopKeepsThePartialAnswer() {
    QSignalSpy finished(wiring_.get(), &DemoWiring::answerFinished);
    window_->inputBox()->setText(QStringLiteral("Tell me more"));
    QTest::keyClick(window_->inputBox()->editor(), Qt::Key_Return);
    QTest::keyClick(window_->inputBox()->editor(), Qt::Key_Escape);
    QCOMPARE(finished.count(), 1);
    const QList<app::Message> path = store_->currentPath(wiring_->currentConversation());
    QCOMPARE(path[1].state, app::MessageState::Interrupted);
    QVERIFY(window_->chatView()->lastMessage()->findChild<QLabel*>(QStringLiteral("messageFooter"))
                ->text().contains(QStringLiteral("interrupted")));
  }

  void regenerateMakesABranch() {
    QSignalSpy finished(wiring_.get(), &DemoWiring::answerFinished);
    window_->inputBox()->setText(QStringLiteral("Question"));
    QTest::keyClick(window_->inputBox()->editor(), Qt::Key_Return);
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 10000);
    const qint64 first = window_->chatView()->lastMessage()->messageId();
    emit window_->chatView()->regenerateRequested(first);
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, 10000);
    const qint64 second = window_->chatView()->lastMessage()->messageId();
    QVERIFY(second != first);
    QCOMPARE(store_->siblings(second).ids, (QList<qint64>{first, second}));
    auto* position = window_->chatView()->lastMessage()->findChild<QLabel*>(QStringLiteral("branchPosition"));
    QCOMPARE(position->text(), QStringLiteral("2/2"));
    emit window_->chatView()->lastMessage()->branchRequested(second, -1);
    QCOMPARE(window_->chatView()->lastMessage()->messageId(), first);
    QCOMPARE(window_->chatView()->messages().size(), 2);
  }

  void renameAndDelete() {
    QSignalSpy finished(wiring_.get(), &DemoWiring::answerFinished);
    window_->inputBox()->setText(QStringLiteral("First chat"));
    QTest::keyClick(window_->inputBox()->editor(), Qt::Key_Return);
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 10000);
    const qint64 id = wiring_->currentConversation();
    ui::ConversationListModel* model = window_->conversationList()->model();
    QVERIFY(model->setData(model->index(0), QStringLiteral("Renamed"), Qt::EditRole));
    QCOMPARE(store_->conversation(id)->title, QStringLiteral("Renamed"));
    QCOMPARE(model->index(0).data().toString(), QStringLiteral("Renamed"));
    emit window_->conversationList()->deleteRequested(id);
    QCOMPARE(model->rowCount(), 0);
    QVERIFY(window_->chatView()->messages().isEmpty());
  }

 private:
  std::unique_ptr<QTemporaryDir> dir_;
  std::unique_ptr<app::ConversationStore> store_;
  std::unique_ptr<ui::MainWindow> window_;
  std::unique_ptr<DemoWiring> wiring_;
};

QTEST_MAIN(DemoWiringTest)
#include "test_ui_demo_wiring.moc"
