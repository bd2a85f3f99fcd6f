#include "demo_wiring.h"

#include <QElapsedTimer>
#include <QStatusBar>

#include "ui/chat_view.h"
#include "ui/conversation_list.h"
#include "ui/conversation_list_model.h"
#include "ui/input_box.h"
#include "ui/main_window.h"
#include "ui/message_widget.h"
#include "ui/status_bar_widget.h"
#include "ui_test_text.h"

namespace peregrine::ui::demo {
namespace {

QStringList chunks(const QString& text, int size) {
  QStringList out;
  for (qsizetype i = 0; i < text.size(); i += size) out << text.mid(i, size);
  return out;
}

}  // namespace

QString DemoWiring::cannedThinking() {
  return QStringLiteral("The user asked something; this demo has no model, so it answers with a sample.");
}

QString DemoWiring::cannedAnswer() {
  const QString sample = testing::sampleAnswer();
  return sample.mid(sample.indexOf(QStringLiteral("</think>")) + 8).trimmed();
}

DemoWiring::DemoWiring(MainWindow& window, app::ConversationStore& store, int tokenIntervalMs)
    : window_(window), store_(store) {
  tokenTimer_.setInterval(tokenIntervalMs);
  connect(&tokenTimer_, &QTimer::timeout, this, &DemoWiring::nextToken);
  flushTimer_.setInterval(100);
  connect(&flushTimer_, &QTimer::timeout, this, [this] { store_.flushIfDue(); });

  ConversationList* list = window_.conversationList();
  connect(list, &ConversationList::conversationSelected, this, &DemoWiring::openConversation);
  connect(&window_, &MainWindow::newConversationRequested, this, [this] {
    conversation_ = store_.createConversation();
    refreshList();
    openConversation(conversation_);
    window_.inputBox()->focusInput();
  });
  connect(list, &ConversationList::renameRequested, this, [this](qint64 id, const QString& title) {
    store_.renameConversation(id, title);
    refreshList();
  });
  connect(list, &ConversationList::deleteRequested, this, [this](qint64 id) {
    store_.deleteConversation(id);
    if (id == conversation_) {
      conversation_ = 0;
      window_.chatView()->clear();
    }
    refreshList();
    window_.statusBar()->showMessage(tr("Chat deleted"), 5000);
  });
  connect(list, &ConversationList::searchChanged, this, [this](const QString& query) {
    query_ = query;
    refreshList();
  });
  connect(window_.inputBox(), &InputBox::sendRequested, this, &DemoWiring::send);
  connect(window_.inputBox(), &InputBox::stopRequested, this, [this] {
    if (answer_) finishAnswer(app::MessageState::Interrupted);
  });
  connect(window_.chatView(), &ChatView::branchRequested, this, &DemoWiring::switchBranch);
  connect(window_.chatView(), &ChatView::regenerateRequested, this, &DemoWiring::regenerate);
  window_.chatView()->setPlaceholderText(
      tr("<h2>Peregrine demo</h2><p>No model here: every message gets a sample answer.</p>"));
  window_.statusWidget()->setModel(tr("Demo (canned answers)"));
  window_.statusWidget()->setBackend(tr("none"));
  refreshList();
}

void DemoWiring::refreshList() {
  ConversationListModel* model = window_.conversationList()->model();
  if (query_.isEmpty()) {
    model->setConversations(store_.listConversations());
  } else {
    model->setSearchHits(store_.search(query_));
  }
  window_.conversationList()->setCurrentConversation(conversation_);
}

void DemoWiring::openConversation(qint64 conversationId) {
  conversation_ = conversationId;
  QList<MessageItem> items;
  for (const app::Message& m : store_.currentPath(conversationId)) {
    items << messageItemFrom(m, store_.siblings(m.id));
  }
  window_.chatView()->setMessages(items);
  window_.conversationList()->setCurrentConversation(conversationId);
}

void DemoWiring::send(const QString& text) {
  if (answer_) return;
  if (!conversation_) conversation_ = store_.createConversation();
  const QList<app::Message> path = store_.currentPath(conversation_);
  const qint64 parent = path.isEmpty() ? app::kNoMessage : path.last().id;
  const qint64 question = store_.appendUserMessage(conversation_, parent, text);
  openConversation(conversation_);
  refreshList();
  startAnswer(question);
}

void DemoWiring::startAnswer(qint64 parentId) {
  answer_ = store_.beginAssistantMessage(conversation_, parentId, QStringLiteral("demo"));
  const QStringList thinking = chunks(QStringLiteral("<think>") + cannedThinking() + QStringLiteral("</think>\n\n"), 5);
  tokens_ = thinking + chunks(cannedAnswer(), 4);
  thinkingTokens_ = static_cast<int>(thinking.size());
  nextToken_ = 0;
  MessageItem item;
  item.id = answer_;
  item.role = app::Role::Assistant;
  item.streaming = true;
  window_.chatView()->addMessage(item);
  window_.inputBox()->setGenerating(true);
  tokenTimer_.start();
  flushTimer_.start();
}

void DemoWiring::nextToken() {
  if (nextToken_ >= tokens_.size()) {
    finishAnswer(app::MessageState::Complete);
    return;
  }
  const QString token = tokens_[nextToken_];
  // The view takes the raw stream (tags included); storage keeps thinking and content apart.
  window_.chatView()->appendToMessage(answer_, token);
  if (nextToken_ == 0) {
    store_.appendStreamText(answer_, cannedThinking(), app::StreamPart::Thinking);
  } else if (nextToken_ >= thinkingTokens_) {
    store_.appendStreamText(answer_, token, app::StreamPart::Content);
  }
  ++nextToken_;
}

void DemoWiring::finishAnswer(app::MessageState state) {
  tokenTimer_.stop();
  flushTimer_.stop();
  app::MessageStats stats;
  stats.generatedTokens = nextToken_;
  stats.tokensPerSecond = tokenTimer_.interval() > 0 ? 1000.0 / tokenTimer_.interval() : 0.0;
  const qint64 finished = answer_;
  store_.finishAssistantMessage(answer_, stats, state);
  answer_ = 0;
  window_.inputBox()->setGenerating(false);
  window_.statusWidget()->setTokensPerSecond(*stats.tokensPerSecond);
  openConversation(conversation_);  // the stored version, with its statistics
  refreshList();
  emit answerFinished(finished);
}

void DemoWiring::switchBranch(qint64 messageId, int delta) {
  if (answer_) return;
  const app::Siblings siblings = store_.siblings(messageId);
  const int target = siblings.index + delta;
  if (target < 0 || target >= siblings.ids.size()) return;
  store_.setCurrentLeaf(conversation_, store_.newestLeafUnder(siblings.ids[target]));
  openConversation(conversation_);
}

void DemoWiring::regenerate(qint64 messageId) {
  if (answer_) return;
  const std::optional<app::Message> old = store_.message(messageId);
  if (!old) return;
  // The new answer is a sibling of the old one: same parent (the question).
  store_.setCurrentLeaf(conversation_, old->parentId);
  openConversation(conversation_);
  startAnswer(old->parentId);
}

}  // namespace peregrine::ui::demo
