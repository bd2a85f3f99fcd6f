#include "controller/conversation_exporter.h"

#include <QAction>
#include <QDir>
#include <QFileDialog>
#include <QRegularExpression>
#include <QSaveFile>
#include <QStandardPaths>
#include <QStatusBar>

#include "controller/chat_controller.h"
#include "core/conversation_export.h"
#include "core/conversation_store.h"
#include "peregrine/error.h"
#include "ui/main_window.h"

namespace peregrine::app {

ConversationExporter::ConversationExporter(ui::MainWindow& window, const ChatController& chat,
                                           const ConversationStore& store, QObject* parent)
    : QObject(parent),
      window_(window),
      chat_(chat),
      store_(store),
      storage_(store.path(), [this](const QString& message) { window_.showError(message); }) {
  chooser_ = [this](const QString& suggested, const QString& filter) {
    return QFileDialog::getSaveFileName(&window_, tr("Export chat"), suggested, filter);
  };
  connect(window_.exportMarkdownAction(), &QAction::triggered, this, [this] { exportCurrent(Format::Markdown); });
  connect(window_.exportJsonAction(), &QAction::triggered, this, [this] { exportCurrent(Format::Json); });
}

bool ConversationExporter::exportCurrent(Format format) {
  const qint64 conversation = chat_.currentConversation();
  if (!conversation) {
    window_.statusBar()->showMessage(tr("Open a chat to export it"), 5000);
    return false;
  }
  const QString filter = format == Format::Markdown ? tr("Markdown (*.md)") : tr("JSON (*.json)");
  QString suggested;
  if (!storage_.run(tr("export the chat"), [&] { suggested = suggestedPath(conversation, format); })) return false;
  const QString path = chooser_(suggested, filter);
  if (path.isEmpty()) return false;
  return exportTo(conversation, format, path);
}

bool ConversationExporter::exportTo(qint64 conversationId, Format format, const QString& path) {
  const bool written = storage_.run(tr("export the chat"), [&] {
    const QByteArray bytes = format == Format::Markdown ? exportMarkdown(store_, conversationId).toUtf8()
                                                        : exportJson(store_, conversationId);
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly) || file.write(bytes) != bytes.size() || !file.commit())
      throw peregrine::Error(QDir::toNativeSeparators(path).toStdString() + ": " + file.errorString().toStdString());
  });
  if (written) window_.statusBar()->showMessage(tr("Exported to %1").arg(QDir::toNativeSeparators(path)), 8000);
  return written;
}

QString ConversationExporter::suggestedPath(qint64 conversationId, Format format) const {
  const std::optional<Conversation> conversation = store_.conversation(conversationId);
  QString name = conversation ? conversation->title : QString();
  // Characters that file systems or shells dislike become '-'.
  name.replace(QRegularExpression(QStringLiteral(R"([/\\:*?"<>|\x00-\x1f]+)")), QStringLiteral("-"));
  name = name.trimmed().left(80);
  if (name.isEmpty()) name = tr("chat");
  const QString folder = QStandardPaths::writableLocation(QStandardPaths::DocumentsLocation);
  return QDir(folder).filePath(name + (format == Format::Markdown ? QStringLiteral(".md") : QStringLiteral(".json")));
}

}  // namespace peregrine::app
