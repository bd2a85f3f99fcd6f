#include "ui/chat_view.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QScrollBar>
#include <QVBoxLayout>

#include "ui/code_block.h"
#include "ui/message_widget.h"

namespace peregrine::ui {

QString statisticsLine(const app::Message& message) {
  QStringList parts;
  if (!message.model.isEmpty()) parts << message.model;
  const app::MessageStats& s = message.stats;
  if (s.generatedTokens) parts << ChatView::tr("%n tokens", nullptr, static_cast<int>(*s.generatedTokens));
  if (s.tokensPerSecond) parts << ChatView::tr("%1 tok/s").arg(*s.tokensPerSecond, 0, 'f', 1);
  if (s.ttftMs) parts << ChatView::tr("first token %1 s").arg(*s.ttftMs / 1000.0, 0, 'f', 2);
  if (s.mtpAcceptance) parts << ChatView::tr("MTP %1%").arg(*s.mtpAcceptance * 100.0, 0, 'f', 0);
  if (message.state == app::MessageState::Interrupted) parts << ChatView::tr("interrupted");
  return parts.join(QStringLiteral(" · "));
}

MessageItem messageItemFrom(const app::Message& message, const app::Siblings& siblings) {
  MessageItem item;
  item.id = message.id;
  item.role = message.role;
  item.thinking = message.thinking;
  item.content = message.content;
  item.branchIndex = std::max(0, siblings.index);
  item.branchCount = std::max(1, static_cast<int>(siblings.ids.size()));
  if (message.role == app::Role::Assistant) item.footer = statisticsLine(message);
  item.streaming = message.state == app::MessageState::Streaming;
  return item;
}

ChatView::ChatView(QWidget* parent)
    : QScrollArea(parent), column_(new QWidget), columnLayout_(new QVBoxLayout), placeholder_(new QLabel) {
  setObjectName(QStringLiteral("chatView"));
  setWidgetResizable(true);
  setFrameShape(QFrame::NoFrame);
  setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);

  // Messages sit in a centred column of readable width, like a page.
  auto* page = new QWidget;
  page->setObjectName(QStringLiteral("chatPage"));
  auto* pageLayout = new QHBoxLayout(page);
  pageLayout->setContentsMargins(16, 16, 16, 16);
  pageLayout->addStretch(1);
  pageLayout->addWidget(column_, 100);
  pageLayout->addStretch(1);
  column_->setMaximumWidth(900);
  column_->setLayout(columnLayout_);
  columnLayout_->setContentsMargins(0, 0, 0, 0);
  columnLayout_->setSpacing(14);
  placeholder_->setObjectName(QStringLiteral("chatPlaceholder"));
  placeholder_->setWordWrap(true);
  placeholder_->setAlignment(Qt::AlignCenter);
  placeholder_->setTextFormat(Qt::RichText);
  placeholder_->setOpenExternalLinks(true);
  columnLayout_->addWidget(placeholder_);
  columnLayout_->addStretch(1);
  // Word-wrapped labels report a minimum height for a narrow width, far taller than they are at
  // the real width; QScrollArea takes the larger of that and heightForWidth(), leaving blank space
  // under the last message. An explicit minimum lets heightForWidth() alone decide.
  page->setMinimumHeight(1);
  setWidget(page);

  // Follow new text only while the user is at the bottom; scrolling up to read stops following.
  connect(verticalScrollBar(), &QScrollBar::valueChanged, this, [this](int value) {
    stickToBottom_ = value >= verticalScrollBar()->maximum() - 4;
  });
  connect(verticalScrollBar(), &QScrollBar::rangeChanged, this, [this](int, int max) {
    if (stickToBottom_) verticalScrollBar()->setValue(max);
  });
  updatePlaceholder();
}

void ChatView::setMessages(const QList<MessageItem>& items) {
  clear();
  for (const MessageItem& item : items) addMessage(item);
  stickToBottom_ = true;
  scrollToBottom();
}

MessageWidget* ChatView::addMessage(const MessageItem& item) {
  auto* widget = new MessageWidget(item.id, item.role, column_);
  widget->setThinkingAndContent(item.thinking, item.content);
  widget->setBranch(item.branchIndex, item.branchCount);
  widget->setFooter(item.footer);
  widget->setStreaming(item.streaming);
  widget->setRenderInterval(renderIntervalMs_);
  connect(widget, &MessageWidget::branchRequested, this, &ChatView::branchRequested);
  connect(widget, &MessageWidget::editRequested, this, &ChatView::editRequested);
  connect(widget, &MessageWidget::regenerateRequested, this, &ChatView::regenerateRequested);
  // Before the trailing stretch.
  columnLayout_->insertWidget(columnLayout_->count() - 1, widget);
  messages_.append(widget);
  updatePlaceholder();
  return widget;
}

void ChatView::clear() {
  for (MessageWidget* w : messages_) delete w;
  messages_.clear();
  updatePlaceholder();
}

void ChatView::appendToMessage(qint64 messageId, const QString& chunk) {
  if (MessageWidget* w = message(messageId)) w->appendText(chunk);
}

MessageWidget* ChatView::message(qint64 messageId) const {
  // The streamed message is nearly always the last one.
  for (qsizetype i = messages_.size() - 1; i >= 0; --i) {
    if (messages_[i]->messageId() == messageId) return messages_[i];
  }
  return nullptr;
}

MessageWidget* ChatView::lastMessage() const { return messages_.isEmpty() ? nullptr : messages_.last(); }

CodeBlock* ChatView::lastCodeBlock() const {
  for (qsizetype i = messages_.size() - 1; i >= 0; --i) {
    if (CodeBlock* block = messages_[i]->lastCodeBlock()) return block;
  }
  return nullptr;
}

void ChatView::setPlaceholderText(const QString& html) {
  placeholder_->setText(html);
  updatePlaceholder();
}

void ChatView::scrollToBottom() { verticalScrollBar()->setValue(verticalScrollBar()->maximum()); }

void ChatView::updatePlaceholder() {
  placeholder_->setVisible(messages_.isEmpty() && !placeholder_->text().isEmpty());
}

}  // namespace peregrine::ui
