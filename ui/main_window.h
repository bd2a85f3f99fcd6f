// The window: conversations on the left; the chat, the input box and the status line on the right.
// Keyboard: Ctrl+N new chat, Ctrl+F search, Ctrl+L input, Ctrl+Shift+C copy the last code block,
// Ctrl+Shift+S the per-chat settings panel (a dock on the right, hidden at first).
// Geometry, the splitter and the dock are kept in QSettings. The window only lays things out and forwards
// what the user asks for; the controller in app/ connects it to storage and the engine.
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
class InputBox;
class StatusBarWidget;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit MainWindow(QWidget* parent = nullptr);

  ConversationList* conversationList() const { return conversations_; }
  ChatView* chatView() const { return chat_; }
  InputBox* inputBox() const { return input_; }
  StatusBarWidget* statusWidget() const { return status_; }
  ChatSettingsPanel* chatSettingsPanel() const { return settingsPanel_; }
  QDockWidget* chatSettingsDock() const { return settingsDock_; }
  QAction* newChatAction() const { return newChat_; }
  QAction* searchAction() const { return search_; }
  QAction* focusInputAction() const { return focusInput_; }
  QAction* copyCodeAction() const { return copyCode_; }
  // Shows / hides the chat settings dock (checkable).
  QAction* chatSettingsAction() const;

  // Window geometry, the splitter position and the docks, under "window/" in settings.
  void restoreWindowState(const QSettings& settings);
  void saveWindowState(QSettings& settings) const;

 public slots:
  // Ctrl+Shift+C. Returns whether there was a code block.
  bool copyLastCodeBlock();

 signals:
  void newConversationRequested();
  void closing();

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  QAction* addShortcut(const QString& text, const QKeySequence& keys);

  ConversationList* conversations_;
  ChatView* chat_;
  InputBox* input_;
  StatusBarWidget* status_;
  QSplitter* splitter_;
  ChatSettingsPanel* settingsPanel_;
  QDockWidget* settingsDock_;
  QAction* newChat_;
  QAction* search_;
  QAction* focusInput_;
  QAction* copyCode_;
};

}  // namespace peregrine::ui
