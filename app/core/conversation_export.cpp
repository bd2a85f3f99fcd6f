#include "core/conversation_export.h"

#include <QDateTime>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QStringList>

namespace peregrine::app {
namespace {

Conversation requireConversation(const ConversationStore& store, qint64 conversationId) {
  auto found = store.conversation(conversationId);
  if (!found)
    throw peregrine::Error(store.path().toStdString() + ": cannot export conversation " +
                           std::to_string(conversationId) + ": no such conversation");
  return *found;
}

QString isoTime(qint64 ms) {
  return QDateTime::fromMSecsSinceEpoch(ms).toUTC().toString(Qt::ISODateWithMs);
}

QString statsLine(const Message& m) {
  QStringList parts;
  if (!m.model.isEmpty()) parts << m.model;
  if (const std::optional<peregrine::GenerationStats>& s = m.stats) {
    parts << QStringLiteral("%1 prompt tokens").arg(s->prompt_tokens);
    parts << QStringLiteral("%1 tokens generated").arg(s->generated_tokens);
    if (s->decode_tok_s > 0) parts << QStringLiteral("%1 tok/s").arg(s->decode_tok_s, 0, 'f', 1);
    if (s->ttft_ms > 0) parts << QStringLiteral("first token after %1 ms").arg(s->ttft_ms, 0, 'f', 0);
    if (s->mtp.active)
      parts << QStringLiteral("MTP acceptance %1%").arg(s->mtp.acceptance_rate * 100.0, 0, 'f', 0);
  }
  return parts.join(QStringLiteral(" · "));
}

QString heading(Role role) {
  switch (role) {
    case Role::System: return QStringLiteral("System");
    case Role::User: return QStringLiteral("User");
    case Role::Assistant: return QStringLiteral("Assistant");
    case Role::Tool: return QStringLiteral("Tool");
  }
  return {};
}

// The engine's statistics object as stored (every field of GenerationStats), or null.
QJsonValue statsJson(const Message& m) {
  if (!m.stats) return QJsonValue(QJsonValue::Null);
  const std::string json = peregrine::generation_stats_to_json(*m.stats);
  return QJsonDocument::fromJson(QByteArray::fromStdString(json)).object();
}

QJsonObject messageJson(const Message& m) {
  return QJsonObject{
      {QStringLiteral("id"), static_cast<double>(m.id)},
      {QStringLiteral("parent_id"), m.parentId == kNoMessage ? QJsonValue(QJsonValue::Null)
                                                             : QJsonValue(static_cast<double>(m.parentId))},
      {QStringLiteral("role"), roleName(m.role)},
      {QStringLiteral("content"), m.content},
      {QStringLiteral("thinking"), m.thinking},
      {QStringLiteral("model"), m.model},
      {QStringLiteral("sampling"), m.sampling},
      {QStringLiteral("stats"), statsJson(m)},
      {QStringLiteral("state"), stateName(m.state)},
      {QStringLiteral("created"), isoTime(m.createdMs)},
  };
}

}  // namespace

QString exportMarkdown(const ConversationStore& store, qint64 conversationId) {
  const Conversation conversation = requireConversation(store, conversationId);
  QString out;
  out += QStringLiteral("# %1\n\n").arg(conversation.title.isEmpty() ? QStringLiteral("Conversation")
                                                                     : conversation.title);
  out += QStringLiteral("*Exported from Peregrine · started %1*\n")
             .arg(isoTime(conversation.createdMs));
  const QString systemPrompt =
      conversation.settings.value(QStringLiteral("system_prompt")).toString();
  if (!systemPrompt.isEmpty())
    out += QStringLiteral("\n## System prompt\n\n%1\n").arg(systemPrompt);
  for (const Message& m : store.pathTo(conversation.currentLeafId)) {
    out += QStringLiteral("\n## %1\n\n").arg(heading(m.role));
    if (!m.thinking.isEmpty())
      out += QStringLiteral("<details>\n<summary>Thinking</summary>\n\n%1\n\n</details>\n\n")
                 .arg(m.thinking.trimmed());
    out += m.content.trimmed() + QLatin1Char('\n');
    if (m.state == MessageState::Interrupted)
      out += QStringLiteral("\n*(answer interrupted)*\n");
    if (m.role == Role::Assistant) {
      const QString stats = statsLine(m);
      if (!stats.isEmpty()) out += QStringLiteral("\n<sub>%1</sub>\n").arg(stats);
    }
  }
  return out;
}

QByteArray exportJson(const ConversationStore& store, qint64 conversationId) {
  const Conversation conversation = requireConversation(store, conversationId);
  QJsonArray messages;
  for (const Message& m : store.messages(conversationId)) messages.append(messageJson(m));
  QJsonArray path;
  for (const Message& m : store.pathTo(conversation.currentLeafId))
    path.append(static_cast<double>(m.id));
  const QJsonObject root{
      {QStringLiteral("format"), QStringLiteral("peregrine.conversation")},
      {QStringLiteral("version"), kExportJsonVersion},
      {QStringLiteral("conversation"),
       QJsonObject{
           {QStringLiteral("id"), static_cast<double>(conversation.id)},
           {QStringLiteral("title"), conversation.title},
           {QStringLiteral("created"), isoTime(conversation.createdMs)},
           {QStringLiteral("updated"), isoTime(conversation.updatedMs)},
           {QStringLiteral("settings"), conversation.settings},
       }},
      {QStringLiteral("messages"), messages},
      {QStringLiteral("current_path"), path},
  };
  return QJsonDocument(root).toJson(QJsonDocument::Indented);
}

}  // namespace peregrine::app
