// The input box's keys, the conversation list, the status line, the per-chat settings panel and
// the main window's shortcuts and remembered geometry.
#include <QAction>
#include <QApplication>
#include <QCheckBox>
#include <QClipboard>
#include <QComboBox>
#include <QDockWidget>
#include <QDoubleSpinBox>
#include <QLineEdit>
#include <QLabel>
#include <QListView>
#include <QMenu>
#include <QMenuBar>
#include <QScrollBar>
#include <QPlainTextEdit>
#include <QSignalSpy>
#include <QSpinBox>
#include <QSettings>
#include <QTemporaryDir>
#include <QToolButton>
#include <QtTest>

#include "ui/chat_settings_panel.h"
#include "ui/chat_view.h"
#include "ui/conversation_list.h"
#include "ui/conversation_list_model.h"
#include "ui/error_banner.h"
#include "ui/input_box.h"
#include "ui/main_window.h"
#include "ui/message_list_model.h"
#include "ui/message_widget.h"
#include "ui/status_bar_widget.h"

using namespace peregrine::ui;
using peregrine::app::ChatSettings;
using peregrine::app::Conversation;
using peregrine::app::SamplingValues;
using peregrine::app::Role;
using peregrine::app::SearchHit;

namespace {

Conversation conversation(qint64 id, const QString& title) {
  Conversation c;
  c.id = id;
  c.title = title;
  c.updatedMs = 1700000000000 + id;
  return c;
}

}  // namespace

class WindowTest : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() {
    QVERIFY(settingsDir_.isValid());
    QSettings::setDefaultFormat(QSettings::IniFormat);
    QSettings::setPath(QSettings::IniFormat, QSettings::UserScope, settingsDir_.path());
    QCoreApplication::setOrganizationName(QStringLiteral("PeregrineTest"));
    QCoreApplication::setApplicationName(QStringLiteral("test_ui_window"));
  }

  void enterSendsShiftEnterBreaksEscStops() {
    InputBox box;
    box.show();
    QSignalSpy send(&box, &InputBox::sendRequested);
    QSignalSpy stop(&box, &InputBox::stopRequested);
    QTest::keyClicks(box.editor(), QStringLiteral("first line"));
    QTest::keyClick(box.editor(), Qt::Key_Return, Qt::ShiftModifier);
    QTest::keyClicks(box.editor(), QStringLiteral("second"));
    QCOMPARE(box.text(), QStringLiteral("first line\nsecond"));
    QCOMPARE(send.count(), 0);
    QTest::keyClick(box.editor(), Qt::Key_Return);
    QCOMPARE(send.count(), 1);
    QCOMPARE(send[0][0].toString(), QStringLiteral("first line\nsecond"));
    QCOMPARE(box.text(), QString());
    // Enter on an empty box sends nothing; while generating, Enter keeps the text.
    QTest::keyClick(box.editor(), Qt::Key_Enter);
    QCOMPARE(send.count(), 1);
    box.setGenerating(true);
    QTest::keyClicks(box.editor(), QStringLiteral("next"));
    QTest::keyClick(box.editor(), Qt::Key_Return);
    QCOMPARE(send.count(), 1);
    QCOMPARE(box.text(), QStringLiteral("next"));
    QTest::keyClick(box.editor(), Qt::Key_Escape);
    QCOMPARE(stop.count(), 1);
  }

  void conversationListShowsRowsAndEmitsRequests() {
    ConversationList list;
    list.model()->setConversations({conversation(3, QStringLiteral("Ring buffers")),
                                    conversation(2, QStringLiteral("")),
                                    conversation(1, QStringLiteral("Trip plan"))});
    QCOMPARE(list.model()->rowCount(), 3);
    QCOMPARE(list.model()->index(0).data().toString(), QStringLiteral("Ring buffers"));
    QCOMPARE(list.model()->index(1).data().toString(), QStringLiteral("New chat"));
    QCOMPARE(list.model()->index(2).data(ConversationListModel::IdRole).toLongLong(), 1);

    QSignalSpy selected(&list, &ConversationList::conversationSelected);
    list.setCurrentConversation(1);  // programmatic: no signal
    QCOMPARE(selected.count(), 0);
    QCOMPARE(list.currentConversation(), 1);
    list.view()->setCurrentIndex(list.model()->index(0));
    QCOMPARE(selected.count(), 1);
    QCOMPARE(selected[0][0].toLongLong(), 3);

    QSignalSpy rename(&list, &ConversationList::renameRequested);
    QVERIFY(list.model()->setData(list.model()->index(0), QStringLiteral("  Circular queues "), Qt::EditRole));
    QCOMPARE(rename.count(), 1);
    QCOMPARE(rename[0][0].toLongLong(), 3);
    QCOMPARE(rename[0][1].toString(), QStringLiteral("Circular queues"));
    QVERIFY(!list.model()->setData(list.model()->index(0), QStringLiteral("   "), Qt::EditRole));

    QSignalSpy search(&list, &ConversationList::searchChanged);
    QTest::keyClicks(list.searchField(), QStringLiteral("ring"));
    QVERIFY(search.wait(2000));
    QCOMPARE(search.count(), 1);  // debounced: one signal for four keys
    QCOMPARE(search.last()[0].toString(), QStringLiteral("ring"));

    SearchHit hit;
    hit.conversation = conversation(3, QStringLiteral("Ring buffers"));
    hit.snippet = QStringLiteral("…a ring buffer keeps…");
    list.model()->setSearchHits({hit});
    QCOMPARE(list.model()->rowCount(), 1);
    QVERIFY(list.model()->index(0).data(Qt::ToolTipRole).toString().contains(hit.snippet));
  }

  void statusBarShowsModelBackendContextAndSpeed() {
    StatusBarWidget status;
    QCOMPARE(status.modelText(), QStringLiteral("No model loaded"));
    status.setModel(QStringLiteral("Qwen3.6-35B-A3B Q4_K_M"));
    status.setBackend(QStringLiteral("CUDA · H100"));
    status.setContext(1234, 32768);
    status.setTokensPerSecond(87.25);
    QCOMPARE(status.modelText(), QStringLiteral("Qwen3.6-35B-A3B Q4_K_M"));
    QCOMPARE(status.backendText(), QStringLiteral("CUDA · H100"));
    QCOMPARE(status.contextText(), QStringLiteral("Context %1 / %2").arg(QLocale().toString(1234), QLocale().toString(32768)));
    QVERIFY(status.speedText().startsWith(QStringLiteral("87.")));
    // The busy bar while a model loads.
    QVERIFY(!status.isBusy());
    status.setBusy(true);
    QVERIFY(status.isBusy());
    status.setBusy(false);
    QVERIFY(!status.isBusy());
  }

  // A storage failure is shown between the chat and the input box, as plain text (a path is never
  // read as markup), without a dialog; × closes it, and the controller can clear it.
  void errorBannerShowsAndCloses() {
    MainWindow window;
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    ErrorBanner* banner = window.errorBanner();
    QVERIFY(!banner->isVisible());
    QCOMPARE(banner->message(), QString());
    const QString text = QStringLiteral("Could not send the message: the disk holding /tmp/<chats> is full.");
    window.showError(text);
    QVERIFY(banner->isVisible());
    QCOMPARE(banner->message(), text);
    QCOMPARE(banner->findChild<QLabel*>(QStringLiteral("errorBannerText"))->textFormat(), Qt::PlainText);
    QVERIFY(banner->geometry().bottom() <= window.inputBox()->geometry().top());
    QVERIFY(banner->geometry().top() >= window.chatView()->geometry().bottom());
    QVERIFY(QApplication::activeModalWidget() == nullptr);
    banner->findChild<QToolButton*>(QStringLiteral("errorBannerClose"))->click();
    QVERIFY(!banner->isVisible());
    QCOMPARE(banner->message(), QString());
    window.showError(text);
    window.clearError();
    QVERIFY(!banner->isVisible());
  }

  void statusBarProgressAndCancel() {
    StatusBarWidget status;
    QCOMPARE(status.progressPercent(), -1);
    status.setBusy(true);
    QVERIFY(status.isBusy());
    QCOMPARE(status.progressPercent(), -1);  // indeterminate until a fraction arrives
    auto* cancel = status.findChild<QToolButton*>(QStringLiteral("statusCancelLoad"));
    QVERIFY(cancel && !cancel->isHidden());
    QSignalSpy cancelled(&status, &StatusBarWidget::cancelRequested);
    cancel->click();
    QCOMPARE(cancelled.count(), 1);
    status.setProgress(1, 4);
    QCOMPARE(status.progressPercent(), 25);
    status.setProgress(4, 4);
    QCOMPARE(status.progressPercent(), 100);
    status.setBusy(false);
    QVERIFY(!status.isBusy());
    QVERIFY(cancel->isHidden());
    QCOMPARE(status.progressPercent(), -1);
    status.setProgress(0, 0);  // no total: nothing shown
    QVERIFY(!status.isBusy());
    status.setBusy(true);
    QCOMPARE(status.progressPercent(), -1);  // a new load starts indeterminate again
  }

  void chatSettingsPanelPresetsAndEdits() {
    ChatSettingsPanel panel;
    const SamplingValues thinking{1.0, 0.95, 20, 0.0, 1.5};
    const SamplingValues instruct{0.7, 0.8, 20, 0.0, 1.5};
    panel.setModelCardSampling(thinking, instruct);
    panel.setDefaultMaxTokens(2048);
    QSignalSpy edited(&panel, &ChatSettingsPanel::settingsEdited);
    panel.setSettings(ChatSettings{});  // showing is not editing
    QCOMPARE(edited.count(), 0);
    QCOMPARE(panel.temperatureBox()->value(), 1.0);
    QCOMPARE(panel.maxTokensBox()->value(), 2048);
    // Thinking off with the model card: the instruct values are shown.
    panel.thinkingBox()->setChecked(false);
    QCOMPARE(edited.count(), 1);
    QCOMPARE(panel.temperatureBox()->value(), 0.7);
    QVERIFY(!panel.settings().thinking);
    QVERIFY(panel.settings().usesModelCardSampling());
    // A preset fills the values.
    const int coding = panel.presetBox()->findData(QLatin1String(ChatSettings::kCoding));
    panel.presetBox()->setCurrentIndex(coding);
    emit panel.presetBox()->activated(coding);
    QCOMPARE(panel.settings().preset, QLatin1String(ChatSettings::kCoding));
    QCOMPARE(panel.temperatureBox()->value(), ChatSettings::presetValues(QStringLiteral("coding"))->temperature);
    // Editing a value makes it Custom, keeping the others.
    panel.topKBox()->setValue(7);
    QCOMPARE(panel.presetBox()->currentData().toString(), QLatin1String(ChatSettings::kCustom));
    QCOMPARE(panel.settings().sampling.topK, 7);
    QCOMPARE(panel.settings().sampling.temperature, ChatSettings::presetValues(QStringLiteral("coding"))->temperature);
    // The token limit is stored only when it differs from the default (or was set before).
    QVERIFY(!panel.settings().maxTokens);
    panel.maxTokensBox()->setValue(512);
    QCOMPARE(panel.settings().maxTokens.value_or(0), 512);
    panel.systemPromptEdit()->setPlainText(QStringLiteral("Be kind."));
    const ChatSettings last = qvariant_cast<ChatSettings>(edited.last().at(0));
    QCOMPARE(last.systemPrompt, QStringLiteral("Be kind."));
    QCOMPARE(last, panel.settings());
  }

  void shortcutsReachTheirTargets() {
    MainWindow window;
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    QCOMPARE(window.newChatAction()->shortcut(), QKeySequence(QStringLiteral("Ctrl+N")));
    QCOMPARE(window.searchAction()->shortcut(), QKeySequence(QStringLiteral("Ctrl+F")));
    QCOMPARE(window.focusInputAction()->shortcut(), QKeySequence(QStringLiteral("Ctrl+L")));
    QCOMPARE(window.copyCodeAction()->shortcut(), QKeySequence(QStringLiteral("Ctrl+Shift+C")));
    QCOMPARE(window.chatSettingsAction()->shortcut(), QKeySequence(QStringLiteral("Ctrl+Shift+S")));
    QVERIFY(window.chatSettingsDock()->isHidden());
    window.chatSettingsAction()->trigger();
    QVERIFY(window.chatSettingsDock()->isVisible());

    QSignalSpy newChat(&window, &MainWindow::newConversationRequested);
    window.newChatAction()->trigger();
    QCOMPARE(newChat.count(), 1);

    QVERIFY(!window.copyLastCodeBlock());  // nothing to copy yet
    MessageItem answer;
    answer.id = 9;
    answer.role = Role::Assistant;
    answer.content = QStringLiteral("```py\nfirst()\n```\ntext\n```js\nlast();\n```\n");
    window.messageModel()->appendMessage(answer);
    QApplication::clipboard()->clear();
    window.copyCodeAction()->trigger();
    QCOMPARE(QApplication::clipboard()->text(), QStringLiteral("last();"));

    window.activateWindow();
    window.searchAction()->trigger();
    QVERIFY(window.conversationList()->searchField()->hasFocus());
    window.focusInputAction()->trigger();
    QVERIFY(window.inputBox()->editor()->hasFocus());
  }

  // The window owns its Chat menu; controllers only connect to the actions.
  void chatMenuHoldsTheWindowsActions() {
    MainWindow window;
    QMenu* chat = nullptr;
    for (QMenu* menu : window.menuBar()->findChildren<QMenu*>())
      if (menu->actions().contains(window.newChatAction())) chat = menu;
    QVERIFY(chat);
    for (QAction* action : {window.thinkingAction(), window.undoDeleteAction(), window.exportMarkdownAction(),
                            window.exportJsonAction()})
      QVERIFY2(chat->actions().contains(action), qPrintable(action->objectName()));
    QCOMPARE(window.thinkingAction()->objectName(), QStringLiteral("thinkingAction"));
    QCOMPARE(window.undoDeleteAction()->objectName(), QStringLiteral("undoDeleteAction"));
    QVERIFY(window.thinkingAction()->isCheckable());
    QVERIFY(!window.undoDeleteAction()->isEnabled());
    QCOMPARE(window.exportMarkdownAction()->shortcut(), QKeySequence(QStringLiteral("Ctrl+E")));
    // Quit stays last, after a separator.
    QVERIFY(chat->actions().value(chat->actions().size() - 2)->isSeparator());

    // The views' requests come out of the window.
    QSignalSpy send(&window, &MainWindow::sendRequested);
    window.inputBox()->setText(QStringLiteral("hi"));
    QTest::keyClick(window.inputBox()->editor(), Qt::Key_Return);
    QCOMPARE(send.count(), 1);
    QSignalSpy regenerate(&window, &MainWindow::regenerateRequested);
    emit window.chatView()->regenerateRequested(4);
    QCOMPARE(regenerate.count(), 1);
  }

  // A narrow chat (the settings dock open in a small window): messages shrink with it and wrap,
  // nothing of a message (text, footer, Regenerate) is cut off on the right.
  void messagesReflowInANarrowChat() {
    MainWindow window;
    window.resize(900, 700);
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    window.chatSettingsAction()->trigger();
    MessageItem answer;
    answer.id = 1;
    answer.role = Role::Assistant;
    answer.content = QStringLiteral("A long answer that must wrap inside the chat column rather than run past "
                                    "its right edge, however narrow the column gets.");
    answer.footer = QStringLiteral("Qwen3.6-35B-A3B Q4_K_M · 412 tokens · 38.4 tok/s · first token 0.21 s · MTP 71%");
    window.messageModel()->setMessages({answer});
    for (int i = 0; i < 5; ++i) QApplication::processEvents();
    QWidget* viewport = window.chatView()->viewport();
    MessageWidget* message = window.chatView()->message(1);
    QVERIFY(message);
    QVERIFY2(window.chatView()->width() < 400, qPrintable(QString::number(window.chatView()->width())));
    for (QWidget* part : {static_cast<QWidget*>(message),
                          static_cast<QWidget*>(message->findChild<QLabel*>(QStringLiteral("messageFooter"))),
                          static_cast<QWidget*>(message->findChild<QToolButton*>(QStringLiteral("regenerateMessage"))),
                          message->segmentWidget(0)}) {
      const int right = part->mapTo(viewport, QPoint(part->width(), 0)).x();
      QVERIFY2(right <= viewport->width(),
               qPrintable(QStringLiteral("%1 ends at %2, the chat at %3")
                              .arg(part->objectName()).arg(right).arg(viewport->width())));
    }
  }

  void geometryIsRemembered() {
    {
      MainWindow window;
      window.resize(1013, 677);
      window.show();
      QVERIFY(QTest::qWaitForWindowExposed(&window));
      window.close();  // saves into QSettings
    }
    QSettings settings;
    QVERIFY(settings.contains(QStringLiteral("window/geometry")));
    MainWindow restored;
    restored.restoreWindowState(settings);
    QCOMPARE(restored.size(), QSize(1013, 677));
  }

 private:
  QTemporaryDir settingsDir_;
};

QTEST_MAIN(WindowTest)
#include "test_ui_window.moc"
