#include "ui/chat_view.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QScrollBar>
#include <QVBoxLayout>

#include "ui/code_block.h"
#include "ui/message_list_model.h"
#include "ui/message_widget.h"

namespace peregrine::ui {

ChatView::ChatView(QWidget* parent)
    : QScrollArea(parent),
      model_(new MessageListModel(this)),
      column_(new QWidget),
      columnLayout_(new QVBoxLayout),
      placeholder_(new QLabel) {
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
  connect(model_, &MessageListModel::modelReset, this, &ChatView::rebuild);
  connect(model_, &MessageListModel::rowsInserted, this,
          [this](const QModelIndex&, int first, int last) { insertRows(first, last); });
  connect(model_, &MessageListModel::rowsRemoved, this,
          [this](const QModelIndex&, int first, int last) { removeRows(first, last); });
  connect(model_, &MessageListModel::dataChanged, this,
          [this](const QModelIndex& from, const QModelIndex& to) { updateRows(from.row(), to.row()); });
  connect(model_, &MessageListModel::thinkingAppended, this,
          [this](int row, const QString& piece) { messages_[row]->appendThinking(piece); });
  connect(model_, &MessageListModel::answerAppended, this,
          [this](int row, const QString& piece) { messages_[row]->appendAnswer(piece); });

  connect(verticalScrollBar(), &QScrollBar::valueChanged, this, [this](int value) {
    stickToBottom_ = value >= verticalScrollBar()->maximum() - 4;
  });
  connect(verticalScrollBar(), &QScrollBar::rangeChanged, this, [this](int, int max) {
    if (stickToBottom_) verticalScrollBar()->setValue(max);
  });
  updatePlaceholder();
}

void ChatView::rebuild() {
  for (MessageWidget* w : messages_) delete w;
  messages_.clear();
  insertRows(0, model_->rowCount() - 1);
  stickToBottom_ = true;
  scrollToBottom();
}

void ChatView::insertRows(int first, int last) {
  for (int row = first; row <= last; ++row) {
    MessageWidget* widget = createWidget(model_->at(row));
    // The column holds the placeholder first and a trailing stretch last.
    columnLayout_->insertWidget(row + 1, widget);
    messages_.insert(row, widget);
  }
  updatePlaceholder();
}

void ChatView::removeRows(int first, int last) {
  for (int row = last; row >= first; --row) delete messages_.takeAt(row);
  updatePlaceholder();
}

void ChatView::updateRows(int first, int last) {
  for (int row = first; row <= last; ++row) {
    const MessageItem& item = model_->at(row);
    MessageWidget* widget = messages_[row];
    widget->setStreaming(item.streaming);
    // Text that streamed in is already there; only a different text is set again.
    if (widget->thinking() != item.thinking || widget->content() != item.content)
      widget->setThinkingAndContent(item.thinking, item.content);
    widget->setBranch(item.branchIndex, item.branchCount);
    widget->setFooter(item.footer);
  }
}

MessageWidget* ChatView::createWidget(const MessageItem& item) {
  auto* widget = new MessageWidget(item.id, item.role, column_);
  widget->setStreaming(item.streaming);
  widget->setThinkingAndContent(item.thinking, item.content);
  widget->setBranch(item.branchIndex, item.branchCount);
  widget->setFooter(item.footer);
  widget->setRenderInterval(renderIntervalMs_);
  connect(widget, &MessageWidget::branchRequested, this, &ChatView::branchRequested);
  connect(widget, &MessageWidget::editRequested, this, &ChatView::editRequested);
  connect(widget, &MessageWidget::regenerateRequested, this, &ChatView::regenerateRequested);
  return widget;
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
