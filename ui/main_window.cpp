#include "ui/main_window.h"

#include <QAction>
#include <QCloseEvent>
#include <QDockWidget>
#include <QMenuBar>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QVBoxLayout>

#include "ui/chat_settings_panel.h"
#include "ui/chat_view.h"
#include "ui/code_block.h"
#include "ui/conversation_list.h"
#include "ui/error_banner.h"
#include "ui/input_box.h"
#include "ui/status_bar_widget.h"

namespace peregrine::ui {

MainWindow::MainWindow(QWidget* parent)
    : QMainWindow(parent),
      conversations_(new ConversationList),
      chat_(new ChatView),
      input_(new InputBox),
      error_(new ErrorBanner),
      status_(new StatusBarWidget),
      splitter_(new QSplitter(Qt::Horizontal)),
      settingsPanel_(new ChatSettingsPanel),
      settingsDock_(new QDockWidget(tr("Chat settings"), this)) {
  setObjectName(QStringLiteral("mainWindow"));
  setWindowTitle(QStringLiteral("Peregrine"));

  auto* chatPane = new QWidget;
  auto* chatLayout = new QVBoxLayout(chatPane);
  chatLayout->setContentsMargins(0, 0, 0, 0);
  chatLayout->setSpacing(0);
  chatLayout->addWidget(chat_, 1);
  chatLayout->addWidget(error_);
  chatLayout->addWidget(input_);

  splitter_->setObjectName(QStringLiteral("mainSplitter"));
  splitter_->addWidget(conversations_);
  splitter_->addWidget(chatPane);
  splitter_->setStretchFactor(0, 0);
  splitter_->setStretchFactor(1, 1);
  splitter_->setCollapsible(1, false);
  splitter_->setSizes({260, 900});
  setCentralWidget(splitter_);
  settingsDock_->setObjectName(QStringLiteral("chatSettingsDock"));
  settingsDock_->setWidget(settingsPanel_);
  settingsDock_->setAllowedAreas(Qt::LeftDockWidgetArea | Qt::RightDockWidgetArea);
  addDockWidget(Qt::RightDockWidgetArea, settingsDock_);
  settingsDock_->hide();
  QAction* toggleSettings = settingsDock_->toggleViewAction();
  toggleSettings->setObjectName(QStringLiteral("chatSettingsAction"));
  toggleSettings->setText(tr("Chat &settings"));
  toggleSettings->setShortcut(QKeySequence(QStringLiteral("Ctrl+Shift+S")));
  addAction(toggleSettings);
  statusBar()->addPermanentWidget(status_, 1);
  statusBar()->setSizeGripEnabled(false);

  buildChatMenu(toggleSettings);
  forwardRequests();
  resize(1200, 800);
}

void MainWindow::buildChatMenu(QAction* toggleSettings) {
  QMenu* chatMenu = menuBar()->addMenu(tr("&Chat"));
  newChat_ = addShortcut(tr("&New chat"), QKeySequence(QStringLiteral("Ctrl+N")));
  search_ = addShortcut(tr("&Search chats"), QKeySequence(QStringLiteral("Ctrl+F")));
  focusInput_ = addShortcut(tr("&Focus input"), QKeySequence(QStringLiteral("Ctrl+L")));
  copyCode_ = addShortcut(tr("&Copy last code block"), QKeySequence(QStringLiteral("Ctrl+Shift+C")));
  thinking_ = new QAction(tr("&Thinking"), this);
  thinking_->setObjectName(QStringLiteral("thinkingAction"));
  thinking_->setCheckable(true);
  thinking_->setChecked(true);  // a new chat thinks; the controller sets the open chat's value
  thinking_->setToolTip(tr("Let the model think before it answers (per chat)"));
  undoDelete_ = new QAction(tr("&Undo delete chat"), this);
  undoDelete_->setObjectName(QStringLiteral("undoDeleteAction"));
  undoDelete_->setEnabled(false);
  exportMarkdown_ = addShortcut(tr("Export chat as &Markdown…"), QKeySequence(QStringLiteral("Ctrl+E")));
  exportMarkdown_->setObjectName(QStringLiteral("exportMarkdownAction"));
  exportJson_ = new QAction(tr("Export chat as &JSON…"), this);
  exportJson_->setObjectName(QStringLiteral("exportJsonAction"));
  addAction(exportJson_);
  chatMenu->addActions({newChat_, search_, focusInput_, copyCode_, toggleSettings, thinking_, undoDelete_,
                        exportMarkdown_, exportJson_});
  chatMenu->addSeparator();
  QAction* quit = chatMenu->addAction(tr("&Quit"));
  quit->setShortcut(QKeySequence::Quit);
  connect(quit, &QAction::triggered, this, &QWidget::close);

  connect(newChat_, &QAction::triggered, this, &MainWindow::newConversationRequested);
  connect(search_, &QAction::triggered, conversations_, &ConversationList::focusSearch);
  connect(focusInput_, &QAction::triggered, input_, &InputBox::focusInput);
  connect(copyCode_, &QAction::triggered, this, &MainWindow::copyLastCodeBlock);
}

void MainWindow::forwardRequests() {
  connect(input_, &InputBox::sendRequested, this, &MainWindow::sendRequested);
  connect(input_, &InputBox::stopRequested, this, &MainWindow::stopRequested);
  connect(conversations_, &ConversationList::newConversationRequested, this,
          &MainWindow::newConversationRequested);
  connect(conversations_, &ConversationList::conversationSelected, this, &MainWindow::conversationSelected);
  connect(conversations_, &ConversationList::renameRequested, this, &MainWindow::renameRequested);
  connect(conversations_, &ConversationList::deleteRequested, this, &MainWindow::deleteRequested);
  connect(conversations_, &ConversationList::searchChanged, this, &MainWindow::searchChanged);
  connect(chat_, &ChatView::branchRequested, this, &MainWindow::branchRequested);
  connect(chat_, &ChatView::editRequested, this, &MainWindow::editRequested);
  connect(chat_, &ChatView::regenerateRequested, this, &MainWindow::regenerateRequested);
}

MessageListModel* MainWindow::messageModel() const { return chat_->model(); }

ConversationListModel* MainWindow::conversationModel() const { return conversations_->model(); }

void MainWindow::setInputText(const QString& text) { input_->setText(text); }

void MainWindow::setGenerating(bool generating) { input_->setGenerating(generating); }

void MainWindow::focusInput() { input_->focusInput(); }

void MainWindow::setCurrentConversation(qint64 conversationId) {
  conversations_->setCurrentConversation(conversationId);
}

void MainWindow::setContextUsage(qint64 used, qint64 size) { status_->setContext(used, size); }

void MainWindow::setTokensPerSecond(double tokensPerSecond) { status_->setTokensPerSecond(tokensPerSecond); }

void MainWindow::setChatPlaceholder(const QString& html) { chat_->setPlaceholderText(html); }

void MainWindow::showStatusMessage(const QString& text, int timeoutMs) {
  statusBar()->showMessage(text, timeoutMs);
}

void MainWindow::showError(const QString& text) { error_->showMessage(text); }

void MainWindow::clearError() { error_->dismiss(); }

QAction* MainWindow::addShortcut(const QString& text, const QKeySequence& keys) {
  auto* action = new QAction(text, this);
  action->setShortcut(keys);
  action->setShortcutContext(Qt::WindowShortcut);
  addAction(action);
  return action;
}

QAction* MainWindow::chatSettingsAction() const { return settingsDock_->toggleViewAction(); }

bool MainWindow::copyLastCodeBlock() {
  CodeBlock* block = chat_->lastCodeBlock();
  if (!block) {
    statusBar()->showMessage(tr("No code block to copy"), 3000);
    return false;
  }
  block->copyToClipboard();
  statusBar()->showMessage(tr("Copied the last code block (%1)").arg(block->languageLabel()), 3000);
  return true;
}

void MainWindow::restoreWindowState(const QSettings& settings) {
  const QByteArray geometry = settings.value(QStringLiteral("window/geometry")).toByteArray();
  if (!geometry.isEmpty()) restoreGeometry(geometry);
  const QByteArray split = settings.value(QStringLiteral("window/splitter")).toByteArray();
  if (!split.isEmpty()) splitter_->restoreState(split);
  const QByteArray docks = settings.value(QStringLiteral("window/state")).toByteArray();
  if (!docks.isEmpty()) restoreState(docks);
}

void MainWindow::saveWindowState(QSettings& settings) const {
  settings.setValue(QStringLiteral("window/geometry"), saveGeometry());
  settings.setValue(QStringLiteral("window/splitter"), splitter_->saveState());
  settings.setValue(QStringLiteral("window/state"), saveState());
}

void MainWindow::closeEvent(QCloseEvent* event) {
  QSettings settings;
  saveWindowState(settings);
  emit closing();
  QMainWindow::closeEvent(event);
}

}  // namespace peregrine::ui
