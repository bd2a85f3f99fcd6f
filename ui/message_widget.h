// One message in the chat: a header (who, the ◀ 2/3 ▶ branch navigator, actions), the message's
// segments as widgets (ThinkingBlock, Markdown rendered to a label, CodeBlock), and a footer
// (statistics, "interrupted"). Streaming goes through appendText(): only the last segment's widget
// is re-rendered; the widgets of earlier segments are left alone (same objects, no re-layout).
#pragma once

#include <QElapsedTimer>
#include <QList>
#include <QPointer>
#include <QString>
#include <QWidget>

#include "core/storage_types.h"
#include "ui/message_segmenter.h"

class QLabel;
class QTimer;
class QToolButton;
class QVBoxLayout;

namespace peregrine::ui {

class CodeBlock;

class MessageWidget : public QWidget {
  Q_OBJECT
 public:
  MessageWidget(qint64 messageId, app::Role role, QWidget* parent = nullptr);

  qint64 messageId() const { return messageId_; }
  app::Role role() const { return role_; }

  // The whole text (a stored message, or an edit). startsInThinking: the text begins inside the
  // thinking section without an opening <think> (see segmentMessage).
  void setText(const QString& text, bool startsInThinking = false);
  // A stored message whose thinking is kept apart from its content.
  void setThinkingAndContent(const QString& thinking, const QString& content);
  // Streamed text; re-renders the last segment only (and adds new segments as they begin).
  // With a render interval, tokens arriving faster than that are rendered together (at most one
  // render per interval); the text itself is taken at once.
  void appendText(const QString& chunk);
  void setRenderInterval(int milliseconds) { renderIntervalMs_ = milliseconds; }
  // Renders text still waiting for the render interval.
  void flushRendering();
  int renderCount() const { return renderCount_; }
  const QString& text() const { return segmenter_.text(); }

  // Branch navigator: shown when count > 1; index is 0-based.
  void setBranch(int index, int count);
  void setAuthor(const QString& author);
  void setFooter(const QString& footer);
  void setStreaming(bool streaming);
  bool isStreaming() const { return streaming_; }

  // The segment widgets, in order (ThinkingBlock, QLabel for Markdown, CodeBlock).
  int segmentCount() const { return static_cast<int>(segmentWidgets_.size()); }
  QWidget* segmentWidget(int index) const { return segmentWidgets_.value(index); }
  const QList<Segment>& segments() const { return segmenter_.segments(); }
  CodeBlock* lastCodeBlock() const;

 signals:
  // delta -1: previous sibling (◀), +1: next (▶).
  void branchRequested(qint64 messageId, int delta);
  void editRequested(qint64 messageId);
  void regenerateRequested(qint64 messageId);

 protected:
  void changeEvent(QEvent* event) override;
  void paintEvent(QPaintEvent* event) override;

 private:
  void syncSegments(int firstChanged);
  QWidget* createSegmentWidget(const Segment& segment);
  void renderSegment(QWidget* widget, const Segment& segment);
  void rerenderMarkdown();

  qint64 messageId_;
  app::Role role_;
  bool streaming_ = false;
  MessageSegmenter segmenter_;
  QList<QWidget*> segmentWidgets_;
  QList<Segment::Kind> segmentKinds_;
  QVBoxLayout* body_;
  QLabel* author_;
  QWidget* branchBox_;
  QToolButton* previousBranch_;
  QLabel* branchPosition_;
  QToolButton* nextBranch_;
  QToolButton* action_;  // Edit (user) or Regenerate (assistant)
  QLabel* footer_;
  int renderIntervalMs_ = 0;
  int pendingFirstChanged_ = -1;  // lowest segment index changed since the last render, -1: none
  QElapsedTimer lastRender_;
  QTimer* renderTimer_;
  int renderCount_ = 0;
};

}  // namespace peregrine::ui
