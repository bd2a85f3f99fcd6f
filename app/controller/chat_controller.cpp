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
    : QObject(parent),
      window_(window),
      store_(store),
      engine_(engine),
      options_(options),
      storage_(store.path(), [this](const QString& message) {
        window_.showError(message);
        emit storageFailed(message);
      }) {
  qRegisterMetaType<MessageState>("peregrine::app::MessageState");
  flushTimer_.setInterval(options_.flushTimerMs);
  connect(&flushTimer_, &QTimer::timeout, this, [this] { storeStreamed([this] { store_.flushIfDue(); }); });
  connectWindow();
  connectEngine();
  refreshList();
}

ChatController::~ChatController() { shutdown(); }

void ChatController::connectWindow() {
  connect(&window_, &ui::MainWindow::conversationSelected, this, &ChatController::openConversation);
  connect(&window_, &ui::MainWindow::newConversationRequested, this, &ChatController::newConversation);
  connect(&window_, &ui::MainWindow::renameRequested, this, [this](qint64 id, const QString& title) {
    storeSafely(tr("rename the chat"), [&] { store_.renameConversation(id, title); });
    // The list shows the stored title, also when renaming failed.
    storeSafely(tr("show the chats"), [this] { refreshList(); });
  });
  connect(&window_, &ui::MainWindow::deleteRequested, this, &ChatController::deleteConversation);
  connect(&window_, &ui::MainWindow::searchChanged, this, [this](const QString& query) {
    query_ = query;
    storeSafely(tr("search the chats"), [this] { refreshList(); });
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
  storeSafely(tr("open the chat"), [&] {
    showPath();
    window_.setCurrentConversation(conversationId);
    const ChatSettings settings = chatSettings();
    emit thinkingEnabledChanged(settings.thinking);
    emit chatSettingsChanged(settings);
  });
}

void ChatController::newConversation() {
  if (isGenerating()) {
    showMessage(tr("Stop the answer (Esc) before starting a new chat"));
    return;
  }
  if (!storeSafely(tr("start a new chat"), [this] { conversation_ = store_.createConversation(); })) return;
  storeSafely(tr("show the chats"), [this] { refreshList(); });
  openConversation(conversation_);
  window_.focusInput();
}

void ChatController::showPath() {
  QList<ui::MessageItem> items;
  if (conversation_) {
    for (const Message& m : store_.currentPath(conversation_)) {
      // An answer whose end is not stored yet is shown as it ended (the store holds its last text).
      const bool unsaved = unfinished_ && unfinished_->shown && unfinished_->id == m.id;
      items << (unsaved ? *unfinished_->shown : ui::messageItemFrom(m, store_.siblings(m.id)));
    }
  }
  window_.messageModel()->setMessages(items);
}

bool ChatController::storeSafely(const QString& action, const std::function<void()>& body, bool quiet) {
  return storage_.run(action, body, quiet);
}

void ChatController::deleteConversation(qint64 conversationId) {
  if (isGenerating() && conversationId == conversation_) {
    showMessage(tr("Stop the answer (Esc) before deleting this chat"));
    return;
  }
  if (!storeSafely(tr("delete the chat"), [&] { store_.deleteConversation(conversationId); })) return;
  lastDeleted_ = conversationId;
  window_.undoDeleteAction()->setEnabled(true);
  if (conversationId == conversation_) {
    conversation_ = 0;
    window_.messageModel()->clear();
  }
  storeSafely(tr("show the chats"), [this] { refreshList(); });
  showMessage(tr("Chat deleted (Chat → Undo delete chat brings it back)"), 8000);
}

void ChatController::undoDelete() {
  if (!lastDeleted_) return;
  // Kept for another try when it fails (the file may become writable again).
  if (!storeSafely(tr("bring the chat back"), [this] { store_.restoreConversation(lastDeleted_); })) return;
  const qint64 restored = std::exchange(lastDeleted_, 0);
  window_.undoDeleteAction()->setEnabled(false);
  storeSafely(tr("show the chats"), [this] { refreshList(); });
  if (!isGenerating()) openConversation(restored);
}

bool ChatController::thinkingEnabled() const { return chatSettings().thinking; }

void ChatController::setThinkingEnabled(bool enabled) {
  ChatSettings settings;
  if (!storeSafely(tr("save the chat settings"), [&] { settings = chatSettings(); })) return;
  if (enabled == settings.thinking) return;
  settings.thinking = enabled;
  setChatSettings(settings);
}

ChatSettings ChatController::chatSettings() const {
  const std::optional<Conversation> c = conversation_ ? store_.conversation(conversation_) : std::nullopt;
  return c ? ChatSettings::fromJson(c->settings) : ChatSettings{};
}

void ChatController::setChatSettings(const ChatSettings& settings) {
  ChatSettings before;
  const bool stored = storeSafely(tr("save the chat settings"), [&] {
    before = chatSettings();
    if (!conversation_) conversation_ = store_.createConversation();
    const QJsonObject json = store_.conversation(conversation_)->settings;
    store_.setConversationSettings(conversation_, settings.toJson(json));
    refreshList();
  });
  if (!stored) {
    // The panel keeps the user's edit (the next edit stores them all); the list shows the chat
    // when one was made for the settings.
    storeSafely(tr("show the chats"), [this] { refreshList(); }, /*quiet=*/true);
    return;
  }
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
  if (storeSafely(tr("send the message"), [&] { storeAndAnswer(text); })) {
    window_.clearError();
    return;
  }
  // Not sent, or sent but its answer could not start (the question's row is then on screen): the
  // text stays in the box. Enter sends it again; a question stored without its answer is then
  // answered, not stored twice. The rows on screen changed only with what was stored.
  window_.setInputText(text);
  storeSafely(tr("show the chats"), [this] { refreshList(); }, /*quiet=*/true);
}

void ChatController::storeAndAnswer(const QString& text) {
  finishUnfinishedAnswer();
  if (!conversation_) conversation_ = store_.createConversation();
  ui::MessageListModel* model = window_.messageModel();
  const QList<Message> path = store_.currentPath(conversation_);
  qint64 parent = path.isEmpty() ? kNoMessage : path.last().id;
  int replacedRow = -1;
  if (editing_) {
    // An edit is a sibling of the edited message: same parent, the original stays as a branch
    // (off screen: the new version takes its place).
    const std::optional<Message> edited = store_.message(editing_);
    if (edited && edited->conversationId == conversation_) {
      parent = edited->parentId;
      replacedRow = model->rowOf(editing_);
    }
  } else if (!path.isEmpty() && path.last().role == Role::User && path.last().content == text) {
    // The same question again, stored last time but left without an answer (the answer's row could
    // not be stored): answer that one.
    editing_ = kNoMessage;
    startAnswer(path.last().id);
    return;
  }
  // Committed before the engine is asked: a crash during the answer never loses the question.
  const qint64 question = store_.appendUserMessage(conversation_, parent, text);
  editing_ = kNoMessage;
  model->truncate(replacedRow);
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

void ChatController::startAnswer(qint64 parentId, int replacedRow) {
  const GenerationRequest request = requestFor(parentId);
  const QJsonObject sampling = samplingJson(request);
  QString model = engine_.model() ? engine_.model()->name : QString();
  if (engine_.model() && DemoModel::isDemo(engine_.model()->path)) model = DemoModel::displayName();
  const qint64 answer = store_.beginAssistantMessage(conversation_, parentId, model, sampling);
  const ui::MessageItem row = storedItem(answer);
  // Stored: from here on nothing throws.
  answer_ = answer;
  stopRequested_ = false;
  streamWriteFailed_ = false;
  window_.messageModel()->truncate(replacedRow);
  window_.messageModel()->appendMessage(row);
  window_.setGenerating(true);
  flushTimer_.start();
  lastRequest_ = request;
  generation_ = engine_.generate(request);
}

void ChatController::onThinkingText(quint64 id, const QString& piece) {
  if (id != generation_ || !answer_) return;
  window_.messageModel()->appendThinking(answer_, piece);
  storeStreamed([&] { store_.appendStreamText(answer_, piece, StreamPart::Thinking); });
}

void ChatController::onAnswerText(quint64 id, const QString& piece) {
  if (id != generation_ || !answer_) return;
  window_.messageModel()->appendAnswer(answer_, piece);
  storeStreamed([&] { store_.appendStreamText(answer_, piece, StreamPart::Content); });
}

void ChatController::storeStreamed(const std::function<void()>& body) {
  // The store keeps text it could not write and tries again at its next flush; the screen goes on.
  if (!storeSafely(tr("save the answer"), body, /*quiet=*/streamWriteFailed_)) streamWriteFailed_ = true;
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
  window_.setGenerating(false);
  unfinished_ = UnfinishedAnswer{finished, stats, state, std::nullopt};
  if (!storeSafely(tr("save the answer"), [this] { finishUnfinishedAnswer(); })) showNotSaved(finished);
  storeSafely(tr("show the chats"), [this] { refreshList(); });
  emit answerFinished(finished, state);
}

void ChatController::finishUnfinishedAnswer() {
  if (!unfinished_) return;
  store_.finishAssistantMessage(unfinished_->id, unfinished_->stats, unfinished_->state);
  const qint64 finished = std::exchange(unfinished_, std::nullopt)->id;
  // The stored version: its statistics, state and branch arrows (the text is what streamed).
  window_.messageModel()->updateMessage(storedItem(finished));
}

void ChatController::showNotSaved(qint64 messageId) {
  ui::MessageListModel* model = window_.messageModel();
  const int row = model->rowOf(messageId);
  if (row < 0) return;
  ui::MessageItem item = model->at(row);  // the text as it streamed
  item.streaming = false;
  item.footer = tr("not saved yet");
  model->updateMessage(item);
  if (unfinished_ && unfinished_->id == messageId) unfinished_->shown = item;
}

void ChatController::beginEdit(qint64 userMessageId) {
  if (isGenerating()) return;
  std::optional<Message> message;
  if (!storeSafely(tr("edit the message"), [&] { message = store_.message(userMessageId); })) return;
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
  if (isGenerating()) {
    engine_.stop(generation_);
    // Not waiting for the engine's reply: the window is closing. Its late signals are ignored
    // (generation_ is reset) and ~EngineClient joins the engine thread.
    flushTimer_.stop();
    const qint64 partial = std::exchange(answer_, kNoMessage);
    generation_ = 0;
    unfinished_ = UnfinishedAnswer{partial, std::nullopt, MessageState::Interrupted, std::nullopt};
    storeSafely(tr("save the answer"), [this] { finishUnfinishedAnswer(); });
    emit answerFinished(partial, MessageState::Interrupted);
    return;
  }
  // An answer left unfinished by a full disk: a last try, quiet (its failure was reported when the
  // answer ended; the next start marks it interrupted).
  storeSafely(tr("save the answer"), [this] { finishUnfinishedAnswer(); }, /*quiet=*/true);
}

void ChatController::regenerate(qint64 answerId) {
  if (isGenerating()) return;
  if (!engine_.hasModel() && engine_.state() != EngineClient::State::Loading) {
    showMessage(tr("No model is loaded: choose one in the Model menu"), 8000);
    return;
  }
  storeSafely(tr("start a new answer"), [&] {
    finishUnfinishedAnswer();
    const std::optional<Message> old = store_.message(answerId);
    if (!old || old->role != Role::Assistant) return;
    // The new answer is a sibling of the old one (same parent, the question; storing it makes it
    // the current leaf); the old one stays in storage and leaves the screen.
    startAnswer(old->parentId, window_.messageModel()->rowOf(answerId));
  });
}

void ChatController::switchBranch(qint64 messageId, int delta) {
  if (isGenerating()) return;
  storeSafely(tr("switch the branch"), [&] {
    const Siblings siblings = store_.siblings(messageId);
    const int target = siblings.index + delta;
    if (target < 0 || target >= siblings.ids.size()) return;
    store_.setCurrentLeaf(conversation_, store_.newestLeafUnder(siblings.ids[target]));
    showPath();
  });
}

void ChatController::showMessage(const QString& text, int timeoutMs) {
  window_.showStatusMessage(text, timeoutMs);
}

}  // namespace peregrine::app
