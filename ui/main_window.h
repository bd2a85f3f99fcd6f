// The window: conversations on the left; the chat, the input box and the status line on the right.
// Keyboard: Ctrl+N new chat, Ctrl+F search, Ctrl+L input, Ctrl+Shift+C copy the last code block,
// Ctrl+Shift+S the per-chat settings panel (a dock on the right, hidden at first).
// Geometry, the splitter and the dock are kept in QSettings. The window only lays things out and forwards
// what the user asks for; the controller in app/ connects it to storage and the engine. The window
// owns its menus and their actions; controllers connect to the actions and never add menu entries.
//
// What the chat controller needs of the window is here as one surface: the user's requests as
// signals (forwarded from the input box, the conversation list and the chat view), the two list
// models the views observe, and a few setters for the input box and the status line.
#pragma once

#include <QMainWindow>

class QAction;
class QSettings;
class QDockWidget;
class QSplitter;

namespace peregrine::ui {

class ChatSettingsPanel;
class ChatView;
class ConversationList;
class ConversationListModel;
class ErrorBanner;
class InputBox;
class MessageListModel;
class StatusBarWidget;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit MainWindow(QWidget* parent = nullptr);

  ConversationList* conversationList() const { return conversations_; }
  ChatView* chatView() const { return chat_; }
  InputBox* inputBox() const { return input_; }
  StatusBarWidget* statusWidget() const { return status_; }
  ErrorBanner* errorBanner() const { return error_; }
  ChatSettingsPanel* chatSettingsPanel() const { return settingsPanel_; }
  QDockWidget* chatSettingsDock() const { return settingsDock_; }
  // The rows of the open chat (ChatView observes them) and of the sidebar.
  MessageListModel* messageModel() const;
  ConversationListModel* conversationModel() const;

  QAction* newChatAction() const { return newChat_; }
  // Chat → Thinking (checkable, per chat) and Chat → Undo delete chat (disabled until a delete).
  QAction* thinkingAction() const { return thinking_; }
  QAction* undoDeleteAction() const { return undoDelete_; }
  // Chat → Export chat as Markdown… (Ctrl+E) / as JSON….
  QAction* exportMarkdownAction() const { return exportMarkdown_; }
  QAction* exportJsonAction() const { return exportJson_; }
  QAction* searchAction() const { return search_; }
  QAction* focusInputAction() const { return focusInput_; }
  QAction* copyCodeAction() const { return copyCode_; }
  // Shows / hides the chat settings dock (checkable).
  QAction* chatSettingsAction() const;

  // The input box, the sidebar's selection and the status line, for the controller.
  void setInputText(const QString& text);
  void setGenerating(bool generating);
  void focusInput();
  // Highlights the conversation in the sidebar without emitting conversationSelected.
  void setCurrentConversation(qint64 conversationId);
  void setContextUsage(qint64 used, qint64 size);
  void setTokensPerSecond(double tokensPerSecond);
  // Shown in an empty chat (welcome, how to add a model).
  void setChatPlaceholder(const QString& html);
  void showStatusMessage(const QString& text, int timeoutMs);
  // A failure the user must know about (the disk is full, ...), above the input box until closed
  // or cleared; the window stays usable (no dialog).
  void showError(const QString& text);
  void clearError();

  // Window geometry, the splitter position and the docks, under "window/" in settings.
  void restoreWindowState(const QSettings& settings);
  void saveWindowState(QSettings& settings) const;

 public slots:
  // Ctrl+Shift+C. Returns whether there was a code block.
  bool copyLastCodeBlock();

 signals:
  void newConversationRequested();
  void closing();
  // Forwarded from the input box.
  void sendRequested(const QString& text);
  void stopRequested();
  // Forwarded from the conversation list.
  void conversationSelected(qint64 conversationId);
  void renameRequested(qint64 conversationId, const QString& title);
  void deleteRequested(qint64 conversationId);
  void searchChanged(const QString& query);
  // Forwarded from the chat view's messages.
  void branchRequested(qint64 messageId, int delta);
  void editRequested(qint64 messageId);
  void regenerateRequested(qint64 messageId);

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  QAction* addShortcut(const QString& text, const QKeySequence& keys);
  void buildChatMenu(QAction* toggleSettings);
  void forwardRequests();

  ConversationList* conversations_;
  ChatView* chat_;
  InputBox* input_;
  ErrorBanner* error_;
  StatusBarWidget* status_;
  QSplitter* splitter_;
  ChatSettingsPanel* settingsPanel_;
  QDockWidget* settingsDock_;
  QAction* newChat_;
  QAction* search_;
  QAction* focusInput_;
  QAction* copyCode_;
  QAction* thinking_;
  QAction* undoDelete_;
  QAction* exportMarkdown_;
  QAction* exportJson_;
};

}  // namespace peregrine::ui
