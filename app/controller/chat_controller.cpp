#include "controller/chat_controller.h"

#include <utility>

#include <QAction>
#include <QJsonObject>

#include "bridge/demo_model.h"
#include "bridge/engine_client.h"
#include "controller/chat_request.h"
#include "core/conversation_store.h"
#include "ui/conversation_list_model.h"
#include "ui/main_window.h"
#include "ui/message_list_model.h"

namespace peregrine::app {
namespace {

std::string utf8(const QString& text) { return text.toStdString(); }

}  // namespace

ChatController::ChatController(ui::MainWindow& window, ConversationStore& store, EngineClient& engine,
                               QObject* parent)
    : ChatController(window, store, engine, Options{}, parent) {}

ChatController::ChatController(ui::MainWindow& window, ConversationStore& store, EngineClient& engine,
                               Options options, QObject* parent)
    : QObject(parent), window_(window), store_(store), engine_(engine), options_(options) {
  qRegisterMetaType<MessageState>("peregrine::app::MessageState");
  flushTimer_.setInterval(options_.flushTimerMs);
  connect(&flushTimer_, &QTimer::timeout, this, [this] { store_.flushIfDue(); });
  connectWindow();
  connectEngine();
  refreshList();
}

ChatController::~ChatController() { shutdown(); }

void ChatController::connectWindow() {
  connect(&window_, &ui::MainWindow::conversationSelected, this, &ChatController::openConversation);
  connect(&window_, &ui::MainWindow::newConversationRequested, this, &ChatController::newConversation);
  connect(&window_, &ui::MainWindow::renameRequested, this, [this](qint64 id, const QString& title) {
    store_.renameConversation(id, title);
    refreshList();
  });
  connect(&window_, &ui::MainWindow::deleteRequested, this, &ChatController::deleteConversation);
  connect(&window_, &ui::MainWindow::searchChanged, this, [this](const QString& query) {
    query_ = query;
    refreshList();
  });
  connect(&window_, &ui::MainWindow::sendRequested, this, &ChatController::send);
  connect(&window_, &ui::MainWindow::stopRequested, this, &ChatController::stop);
  connect(&window_, &ui::MainWindow::branchRequested, this, &ChatController::switchBranch);
  connect(&window_, &ui::MainWindow::regenerateRequested, this, &ChatController::regenerate);
  connect(&window_, &ui::MainWindow::editRequested, this, &ChatController::beginEdit);
  connect(&window_, &ui::MainWindow::closing, this, &ChatController::shutdown);

  QAction* thinking = window_.thinkingAction();
  thinking->setChecked(thinkingEnabled());
  connect(thinking, &QAction::toggled, this, &ChatController::setThinkingEnabled);
  connect(this, &ChatController::thinkingEnabledChanged, thinking, &QAction::setChecked);
  connect(window_.undoDeleteAction(), &QAction::triggered, this, &ChatController::undoDelete);
}

void ChatController::connectEngine() {
  connect(&engine_, &EngineClient::thinkingText, this, &ChatController::onThinkingText);
  connect(&engine_, &EngineClient::answerText, this, &ChatController::onAnswerText);
  connect(&engine_, &EngineClient::progress, this, &ChatController::onProgress);
  connect(&engine_, &EngineClient::finished, this, &ChatController::onFinished);
  connect(&engine_, &EngineClient::error, this, &ChatController::onError);
}

void ChatController::refreshList() {
  ui::ConversationListModel* model = window_.conversationModel();
  if (query_.isEmpty()) {
    model->setConversations(store_.listConversations());
  } else {
    model->setSearchHits(store_.search(query_));
  }
  window_.setCurrentConversation(conversation_);
}

ui::MessageItem ChatController::storedItem(qint64 messageId) const {
  const std::optional<Message> message = store_.message(messageId);
  return message ? ui::messageItemFrom(*message, store_.siblings(messageId)) : ui::MessageItem{};
}

void ChatController::openConversation(qint64 conversationId) {
  if (isGenerating() && conversationId != conversation_) {
    showMessage(tr("Stop the answer (Esc) before switching chats"));
    window_.setCurrentConversation(conversation_);
    return;
  }
  if (conversationId != conversation_) editing_ = kNoMessage;
  conversation_ = conversationId;
  showPath();
  window_.setCurrentConversation(conversationId);
  const ChatSettings settings = chatSettings();
  emit thinkingEnabledChanged(settings.thinking);
  emit chatSettingsChanged(settings);
}

void ChatController::newConversation() {
  if (isGenerating()) {
    showMessage(tr("Stop the answer (Esc) before starting a new chat"));
    return;
  }
  conversation_ = store_.createConversation();
  refreshList();
  openConversation(conversation_);
  window_.focusInput();
}

void ChatController::showPath() {
  QList<ui::MessageItem> items;
  if (conversation_) {
    for (const Message& m : store_.currentPath(conversation_)) items << ui::messageItemFrom(m, store_.siblings(m.id));
  }
  window_.messageModel()->setMessages(items);
}

void ChatController::deleteConversation(qint64 conversationId) {
  if (isGenerating() && conversationId == conversation_) {
    showMessage(tr("Stop the answer (Esc) before deleting this chat"));
    return;
  }
  store_.deleteConversation(conversationId);
  lastDeleted_ = conversationId;
  window_.undoDeleteAction()->setEnabled(true);
  if (conversationId == conversation_) {
    conversation_ = 0;
    window_.messageModel()->clear();
  }
  refreshList();
  showMessage(tr("Chat deleted (Chat → Undo delete chat brings it back)"), 8000);
}

void ChatController::undoDelete() {
  if (!lastDeleted_) return;
  store_.restoreConversation(lastDeleted_);
  const qint64 restored = std::exchange(lastDeleted_, 0);
  window_.undoDeleteAction()->setEnabled(false);
  refreshList();
  if (!isGenerating()) openConversation(restored);
}

bool ChatController::thinkingEnabled() const { return chatSettings().thinking; }

void ChatController::setThinkingEnabled(bool enabled) {
  if (enabled == thinkingEnabled()) return;
  ChatSettings settings = chatSettings();
  settings.thinking = enabled;
  setChatSettings(settings);
}

ChatSettings ChatController::chatSettings() const {
  const std::optional<Conversation> c = conversation_ ? store_.conversation(conversation_) : std::nullopt;
  return c ? ChatSettings::fromJson(c->settings) : ChatSettings{};
}

void ChatController::setChatSettings(const ChatSettings& settings) {
  const ChatSettings before = chatSettings();
  if (!conversation_) conversation_ = store_.createConversation();
  const QJsonObject stored = store_.conversation(conversation_)->settings;
  store_.setConversationSettings(conversation_, settings.toJson(stored));
  refreshList();
  if (before.thinking != settings.thinking) emit thinkingEnabledChanged(settings.thinking);
  emit chatSettingsChanged(settings);
}

void ChatController::setWelcomeText(const QString& html) {
  welcome_ = html;
  window_.setChatPlaceholder(html);
}

void ChatController::send(const QString& text) {
  if (isGenerating() || text.trimmed().isEmpty()) return;
  if (!engine_.hasModel() && engine_.state() != EngineClient::State::Loading) {
    window_.setInputText(text);  // keep what was typed
    showMessage(tr("No model is loaded: choose one in the Model menu"), 8000);
    emit generationFailed(tr("No model is loaded"));
    return;
  }
  if (!conversation_) conversation_ = store_.createConversation();
  ui::MessageListModel* model = window_.messageModel();
  const QList<Message> path = store_.currentPath(conversation_);
  qint64 parent = path.isEmpty() ? kNoMessage : path.last().id;
  if (editing_) {
    // An edit is a sibling of the edited message: same parent, the original stays as a branch
    // (off screen: the new version takes its place).
    const qint64 editedId = std::exchange(editing_, kNoMessage);
    const std::optional<Message> edited = store_.message(editedId);
    if (edited && edited->conversationId == conversation_) {
      parent = edited->parentId;
      model->truncate(model->rowOf(editedId));
    }
  }
  // Committed before the engine is asked: a crash during the answer never loses the question.
  const qint64 question = store_.appendUserMessage(conversation_, parent, text);
  model->appendMessage(storedItem(question));
  refreshList();
  startAnswer(question);
}

GenerationRequest ChatController::requestFor(qint64 parentId) const {
  GenerationRequest request;
  const ChatSettings settings = chatSettings();
  if (!settings.systemPrompt.isEmpty())
    request.messages.push_back({"system", utf8(settings.systemPrompt), std::nullopt, {}, {}, {}});
  for (const Message& m : store_.pathTo(parentId)) {
    if (m.role == Role::User) {
      request.messages.push_back({"user", utf8(m.content), std::nullopt, {}, {}, {}});
    } else if (m.role == Role::Assistant) {
      request.messages.push_back({"assistant", utf8(m.content), utf8(m.thinking), {}, {}, {}});
    } else if (m.role == Role::System) {
      request.messages.push_back({"system", utf8(m.content), std::nullopt, {}, {}, {}});
    }
  }
  applyChatSettings(settings, options_.maxTokens, request);
  request.ignoreEos = options_.ignoreEos;
  return request;
}

void ChatController::startAnswer(qint64 parentId) {
  const GenerationRequest request = requestFor(parentId);
  const QJsonObject sampling = samplingJson(request);
  QString model = engine_.model() ? engine_.model()->name : QString();
  if (engine_.model() && DemoModel::isDemo(engine_.model()->path)) model = DemoModel::displayName();
  answer_ = store_.beginAssistantMessage(conversation_, parentId, model, sampling);
  stopRequested_ = false;
  window_.messageModel()->appendMessage(storedItem(answer_));
  window_.setGenerating(true);
  flushTimer_.start();
  lastRequest_ = request;
  generation_ = engine_.generate(request);
}

void ChatController::onThinkingText(quint64 id, const QString& piece) {
  if (id != generation_ || !answer_) return;
  window_.messageModel()->appendThinking(answer_, piece);
  store_.appendStreamText(answer_, piece, StreamPart::Thinking);
}

void ChatController::onAnswerText(quint64 id, const QString& piece) {
  if (id != generation_ || !answer_) return;
  window_.messageModel()->appendAnswer(answer_, piece);
  store_.appendStreamText(answer_, piece, StreamPart::Content);
}

void ChatController::onProgress(quint64 id, const peregrine::GenerationStats& stats) {
  if (id != generation_) return;
  const qint64 size = engine_.model() ? engine_.model()->contextLength : 0;
  window_.setContextUsage(stats.n_past, size);
  window_.setTokensPerSecond(stats.decode_tok_s);
}

void ChatController::onFinished(quint64 id, const peregrine::GenerationStats& stats) {
  if (id != generation_ || !answer_) return;
  const qint64 size = engine_.model() ? engine_.model()->contextLength : 0;
  window_.setContextUsage(stats.prompt_tokens + stats.generated_tokens, size);
  window_.setTokensPerSecond(stats.decode_tok_s);
  const bool cancelled = stats.stop_reason == peregrine::StopReason::Cancelled;
  if (stats.stop_reason == peregrine::StopReason::ContextFull) {
    showMessage(tr("The answer stopped: the context is full"), 8000);
  } else if (stats.stop_reason == peregrine::StopReason::MaxTokens) {
    showMessage(tr("The answer stopped at the token limit (%1)").arg(stats.generated_tokens), 8000);
  } else if (cancelled) {
    showMessage(tr("Stopped"), 3000);
  }
  endAnswer(stats, cancelled ? MessageState::Interrupted : MessageState::Complete);
}

void ChatController::onError(quint64 id, const QString& message) {
  if (id != generation_ || !answer_) return;
  endAnswer(std::nullopt, MessageState::Interrupted);
  showMessage(tr("The answer failed: %1").arg(message), 15000);
  emit generationFailed(message);
}

void ChatController::endAnswer(const std::optional<peregrine::GenerationStats>& stats, MessageState state) {
  flushTimer_.stop();
  const qint64 finished = std::exchange(answer_, kNoMessage);
  generation_ = 0;
  store_.finishAssistantMessage(finished, stats, state);
  window_.setGenerating(false);
  // The stored version: its statistics, state and branch arrows (the text is what streamed).
  window_.messageModel()->updateMessage(storedItem(finished));
  refreshList();
  emit answerFinished(finished, state);
}

void ChatController::beginEdit(qint64 userMessageId) {
  if (isGenerating()) return;
  const std::optional<Message> message = store_.message(userMessageId);
  if (!message || message->role != Role::User || message->conversationId != conversation_) return;
  editing_ = userMessageId;
  window_.setInputText(message->content);
  window_.focusInput();
  showMessage(tr("Editing: Enter sends the new version as a branch, Esc cancels"), 0);
}

void ChatController::stop() {
  if (!isGenerating() && editing_) {
    editing_ = kNoMessage;
    window_.setInputText(QString());
    showMessage(tr("Edit cancelled"), 3000);
    return;
  }
  if (!isGenerating() || stopRequested_) return;
  stopRequested_ = true;
  // The engine stops within one decode step and answers with finished("cancelled"); the text
  // streamed so far stays and the message is stored as interrupted then.
  engine_.stop(generation_);
}

void ChatController::shutdown() {
  if (!isGenerating()) return;
  engine_.stop(generation_);
  // Not waiting for the engine's reply: the window is closing. Its late signals are ignored
  // (generation_ is reset) and ~EngineClient joins the engine thread.
  flushTimer_.stop();
  const qint64 partial = std::exchange(answer_, kNoMessage);
  generation_ = 0;
  store_.finishAssistantMessage(partial, std::nullopt, MessageState::Interrupted);
  emit answerFinished(partial, MessageState::Interrupted);
}

void ChatController::regenerate(qint64 answerId) {
  if (isGenerating()) return;
  const std::optional<Message> old = store_.message(answerId);
  if (!old || old->role != Role::Assistant) return;
  if (!engine_.hasModel() && engine_.state() != EngineClient::State::Loading) {
    showMessage(tr("No model is loaded: choose one in the Model menu"), 8000);
    return;
  }
  // The new answer is a sibling of the old one (same parent, the question); the old one stays
  // in storage and leaves the screen.
  store_.setCurrentLeaf(conversation_, old->parentId);
  ui::MessageListModel* model = window_.messageModel();
  model->truncate(model->rowOf(answerId));
  startAnswer(old->parentId);
}

void ChatController::switchBranch(qint64 messageId, int delta) {
  if (isGenerating()) return;
  const Siblings siblings = store_.siblings(messageId);
  const int target = siblings.index + delta;
  if (target < 0 || target >= siblings.ids.size()) return;
  store_.setCurrentLeaf(conversation_, store_.newestLeafUnder(siblings.ids[target]));
  showPath();
}

void ChatController::showMessage(const QString& text, int timeoutMs) {
  window_.showStatusMessage(text, timeoutMs);
}

}  // namespace peregrine::app
