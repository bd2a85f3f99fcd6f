#include "ui/message_widget.h"

#include <algorithm>
#include <utility>

#include <QEvent>
#include <QHBoxLayout>
#include <QLabel>
#include <QPainter>
#include <QPainterPath>
#include <QTimer>
#include <QToolButton>
#include <QVBoxLayout>

#include "ui/code_block.h"
#include "ui/markdown.h"
#include "ui/markdown_label.h"
#include "ui/theme.h"
#include "ui/thinking_block.h"

namespace peregrine::ui {
namespace {

MarkdownStyle markdownStyleFor(const QPalette& palette) {
  MarkdownStyle style;
  style.inlineCodeBackground = inlineCodeColor(palette);
  style.tableBorder = subtleBorderColor(palette);
  return style;
}

}  // namespace

MessageWidget::MessageWidget(qint64 messageId, app::Role role, QWidget* parent)
    : QWidget(parent),
      messageId_(messageId),
      role_(role),
      body_(new QVBoxLayout),
      author_(new QLabel(this)),
      branchBox_(new QWidget(this)),
      previousBranch_(new QToolButton(branchBox_)),
      branchPosition_(new QLabel(branchBox_)),
      nextBranch_(new QToolButton(branchBox_)),
      action_(new QToolButton(this)),
      footer_(new QLabel(this)),
      renderTimer_(new QTimer(this)) {
  renderTimer_->setSingleShot(true);
  connect(renderTimer_, &QTimer::timeout, this, &MessageWidget::flushRendering);
  setObjectName(role == app::Role::User ? QStringLiteral("userMessage")
                                        : QStringLiteral("assistantMessage"));
  QFont bold = author_->font();
  bold.setBold(true);
  author_->setFont(bold);
  author_->setText(role == app::Role::User ? tr("You") : tr("Assistant"));

  previousBranch_->setObjectName(QStringLiteral("previousBranch"));
  nextBranch_->setObjectName(QStringLiteral("nextBranch"));
  branchPosition_->setObjectName(QStringLiteral("branchPosition"));
  previousBranch_->setText(QStringLiteral("\u25C0"));
  nextBranch_->setText(QStringLiteral("\u25B6"));
  previousBranch_->setToolTip(tr("Previous version"));
  nextBranch_->setToolTip(tr("Next version"));
  for (QToolButton* b : {previousBranch_, nextBranch_}) b->setAutoRaise(true);
  auto* branchLayout = new QHBoxLayout(branchBox_);
  branchLayout->setContentsMargins(0, 0, 0, 0);
  branchLayout->setSpacing(2);
  branchLayout->addWidget(previousBranch_);
  branchLayout->addWidget(branchPosition_);
  branchLayout->addWidget(nextBranch_);
  branchBox_->hide();
  connect(previousBranch_, &QToolButton::clicked, this,
          [this] { emit branchRequested(messageId_, -1); });
  connect(nextBranch_, &QToolButton::clicked, this, [this] { emit branchRequested(messageId_, +1); });

  action_->setAutoRaise(true);
  if (role == app::Role::User) {
    action_->setObjectName(QStringLiteral("editMessage"));
    action_->setText(tr("Edit"));
    action_->setToolTip(tr("Edit this message and send it again (the old version is kept)"));
    connect(action_, &QToolButton::clicked, this, [this] { emit editRequested(messageId_); });
  } else {
    action_->setObjectName(QStringLiteral("regenerateMessage"));
    action_->setText(tr("Regenerate"));
    action_->setToolTip(tr("Answer again (the old answer is kept)"));
    connect(action_, &QToolButton::clicked, this,
            [this] { emit regenerateRequested(messageId_); });
  }

  footer_->setObjectName(QStringLiteral("messageFooter"));
  // Wraps: an unwrapped statistics line would set the minimum width of the whole chat column,
  // and a narrow chat (the settings dock open) would cut every message off on the right.
  footer_->setWordWrap(true);
  footer_->hide();

  auto* header = new QHBoxLayout;
  header->setSpacing(6);
  header->addWidget(author_);
  header->addWidget(branchBox_);
  header->addStretch(1);
  header->addWidget(action_);
  body_->setSpacing(8);
  body_->setContentsMargins(0, 0, 0, 0);

  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(14, 8, 14, 10);
  layout->setSpacing(4);
  layout->addLayout(header);
  layout->addLayout(body_);
  layout->addWidget(footer_);
  changeEvent(nullptr);
}

void MessageWidget::setThinkingAndContent(const QString& thinking, const QString& content) {
  thinkingText_ = thinking;
  thinkingChanged_ = true;
  segmenter_.reset(content);
  // Everything may have changed: rebuild from the first segment.
  pendingFirstChanged_ = -1;
  renderTimer_->stop();
  syncThinking();
  syncSegments(0);
}

void MessageWidget::appendThinking(const QString& piece) {
  if (piece.isEmpty()) return;
  thinkingText_ += piece;
  thinkingChanged_ = true;
  scheduleRendering();
}

void MessageWidget::appendAnswer(const QString& piece) {
  if (piece.isEmpty()) return;
  const int changed = segmenter_.append(piece);
  pendingFirstChanged_ = pendingFirstChanged_ < 0 ? changed : std::min(pendingFirstChanged_, changed);
  scheduleRendering();
}

void MessageWidget::scheduleRendering() {
  const qint64 sinceRender = lastRender_.isValid() ? lastRender_.elapsed() : renderIntervalMs_;
  if (sinceRender >= renderIntervalMs_) {
    flushRendering();
  } else if (!renderTimer_->isActive()) {
    renderTimer_->start(static_cast<int>(renderIntervalMs_ - sinceRender));
  }
}

void MessageWidget::flushRendering() {
  renderTimer_->stop();
  if (pendingFirstChanged_ < 0 && !thinkingChanged_) return;
  syncThinking();
  if (pendingFirstChanged_ >= 0) syncSegments(std::exchange(pendingFirstChanged_, -1));
  ++renderCount_;
  lastRender_.restart();
}

void MessageWidget::syncThinking() {
  thinkingChanged_ = false;
  if (!thinkingBlock_ && thinkingText_.isEmpty()) return;
  if (!thinkingBlock_) {
    thinkingBlock_ = new ThinkingBlock(this);
    body_->insertWidget(0, thinkingBlock_);
  }
  thinkingBlock_->setText(thinkingText_);
  thinkingBlock_->setVisible(!thinkingText_.isEmpty());  // a message set again without thinking
  // Thinking is over once the answer starts or the message is no longer streaming. It folds
  // away when there is an answer to read (once; the user may open it again): an answer that
  // ended inside its thinking keeps it open, else nothing of it would be visible.
  const bool answerStarted = !segmenter_.text().isEmpty();
  thinkingBlock_->setFinished(answerStarted || !streaming_);
  if (answerStarted && !thinkingBlock_->property("autoCollapsed").toBool()) {
    thinkingBlock_->setProperty("autoCollapsed", true);
    thinkingBlock_->setExpanded(false);
  }
}

void MessageWidget::syncSegments(int firstChanged) {
  const QList<Segment>& segments = segmenter_.segments();
  // Widgets past the end (rare: a segment turned out to be whitespace) go away.
  while (segmentWidgets_.size() > segments.size()) {
    delete segmentWidgets_.takeLast();
    segmentKinds_.removeLast();
  }
  for (int i = firstChanged; i < segments.size(); ++i) {
    const Segment& segment = segments[i];
    if (i < segmentWidgets_.size() && segmentKinds_[i] != segment.kind) {
      // "``" was text until the third backtick made it a code fence: a different kind of widget.
      QWidget* replacement = createSegmentWidget(segment);
      body_->replaceWidget(segmentWidgets_[i], replacement);
      delete segmentWidgets_[i];
      segmentWidgets_[i] = replacement;
      segmentKinds_[i] = segment.kind;
    } else if (i >= segmentWidgets_.size()) {
      QWidget* widget = createSegmentWidget(segment);
      body_->addWidget(widget);
      segmentWidgets_.append(widget);
      segmentKinds_.append(segment.kind);
    }
    renderSegment(segmentWidgets_[i], segment);
  }
  // The answer started: the thinking above it is finished.
  if (thinkingBlock_ && !segments.isEmpty()) syncThinking();
}

QWidget* MessageWidget::createSegmentWidget(const Segment& segment) {
  switch (segment.kind) {
    case Segment::Kind::Code: return new CodeBlock(this);
    case Segment::Kind::Markdown: break;
  }
  return new MarkdownLabel(this);
}

void MessageWidget::renderSegment(QWidget* widget, const Segment& segment) {
  switch (segment.kind) {
    case Segment::Kind::Code:
      static_cast<CodeBlock*>(widget)->setCode(segment.text, segment.language);
      break;
    case Segment::Kind::Markdown:
      static_cast<MarkdownLabel*>(widget)->setHtml(markdownToHtml(segment.text, markdownStyleFor(palette())));
      break;
  }
}

void MessageWidget::rerenderMarkdown() {
  const QList<Segment>& segments = segmenter_.segments();
  for (int i = 0; i < segmentWidgets_.size() && i < segments.size(); ++i) {
    if (segmentKinds_[i] == Segment::Kind::Markdown) renderSegment(segmentWidgets_[i], segments[i]);
  }
}

CodeBlock* MessageWidget::lastCodeBlock() const {
  for (qsizetype i = segmentWidgets_.size() - 1; i >= 0; --i) {
    if (segmentKinds_[i] == Segment::Kind::Code) return static_cast<CodeBlock*>(segmentWidgets_[i]);
  }
  return nullptr;
}

void MessageWidget::setBranch(int index, int count) {
  branchBox_->setVisible(count > 1);
  branchPosition_->setText(QStringLiteral("%1/%2").arg(index + 1).arg(count));
  previousBranch_->setEnabled(index > 0);
  nextBranch_->setEnabled(index + 1 < count);
}

void MessageWidget::setAuthor(const QString& author) { author_->setText(author); }

void MessageWidget::setFooter(const QString& footer) {
  footer_->setText(footer);
  footer_->setVisible(!footer.isEmpty());
}

void MessageWidget::setStreaming(bool streaming) {
  if (streaming == streaming_) return;
  streaming_ = streaming;
  action_->setEnabled(!streaming);
  if (thinkingBlock_) syncThinking();
}

void MessageWidget::changeEvent(QEvent* event) {
  const bool paletteChanged = !event || event->type() == QEvent::PaletteChange ||
                              event->type() == QEvent::ApplicationPaletteChange;
  if (paletteChanged) {
    const QPalette base = palette();
    QPalette dim = footer_->palette();
    dim.setColor(QPalette::WindowText,
                 mix(base.color(QPalette::WindowText), base.color(QPalette::Window), 0.4));
    footer_->setPalette(dim);
    branchPosition_->setPalette(dim);
    if (event) rerenderMarkdown();
  }
  if (event) QWidget::changeEvent(event);
}

void MessageWidget::paintEvent(QPaintEvent*) {
  if (role_ != app::Role::User) return;
  QPainter painter(this);
  painter.setRenderHint(QPainter::Antialiasing);
  QPainterPath bubble;
  bubble.addRoundedRect(QRectF(rect()).adjusted(0.5, 0.5, -0.5, -0.5), 10, 10);
  painter.fillPath(bubble, userBubbleColor(palette()));
}

}  // namespace peregrine::ui
