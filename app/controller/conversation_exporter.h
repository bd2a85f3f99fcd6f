// ConversationExporter — Chat → Export chat as Markdown… / as JSON… (the window's actions): asks where to save (a save
// dialog, replaceable by the tests with setPathChooser) and writes the open conversation with
// the store's exporters (core/conversation_export.h). The file is written whole or not at all
// (QSaveFile); success is shown in the status line, a failure (with the path and the reason) in
// the window's error banner through a StorageGuard.
#pragma once

#include <functional>

#include <QObject>
#include <QString>

#include "controller/storage_guard.h"

namespace peregrine::ui {
class MainWindow;
}

namespace peregrine::app {

class ChatController;
class ConversationStore;

class ConversationExporter : public QObject {
  Q_OBJECT
 public:
  enum class Format { Markdown, Json };
  // (suggested path, file-type filter) -> the chosen path, or empty when the user cancelled.
  using PathChooser = std::function<QString(const QString& suggestedPath, const QString& filter)>;

  ConversationExporter(ui::MainWindow& window, const ChatController& chat, const ConversationStore& store,
                       QObject* parent = nullptr);

  void setPathChooser(PathChooser chooser) { chooser_ = std::move(chooser); }

  // Asks for a path and writes the open chat there. Returns whether a file was written.
  bool exportCurrent(Format format);
  // Writes conversation conversationId to path; false (and the reason in the error banner) on error.
  bool exportTo(qint64 conversationId, Format format, const QString& path);

 private:
  QString suggestedPath(qint64 conversationId, Format format) const;

  ui::MainWindow& window_;
  const ChatController& chat_;
  const ConversationStore& store_;
  StorageGuard storage_;
  PathChooser chooser_;
};

}  // namespace peregrine::app
