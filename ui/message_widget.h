// One message in the chat: a header (who, the ◀ 2/3 ▶ branch navigator, actions), the model's
// thinking in a ThinkingBlock (when it has any), the answer's segments as widgets (Markdown
// rendered to a label, CodeBlock), and a footer (statistics, "interrupted"). Thinking and answer
// arrive apart (the engine splits them, storage keeps them in two columns), so nothing here looks
// for <think> tags. Streaming goes through appendThinking() / appendAnswer(): only the thinking
// block or the answer's last segment is re-rendered; the widgets of earlier segments are left
// alone (same objects, no re-layout).
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
class ThinkingBlock;

class MessageWidget : public QWidget {
  Q_OBJECT
 public:
  MessageWidget(qint64 messageId, app::Role role, QWidget* parent = nullptr);

  qint64 messageId() const { return messageId_; }
  app::Role role() const { return role_; }

  // The whole message (a stored one): its thinking (may be empty) and its answer text.
  void setThinkingAndContent(const QString& thinking, const QString& content);
  // Streamed thinking; the ThinkingBlock appears with the first piece.
  void appendThinking(const QString& piece);
  // Streamed answer text; re-renders the last segment only (and adds new segments as they begin).
  // The first answer text folds the thinking away and marks it finished.
  // With a render interval, pieces arriving faster than that are rendered together (at most one
  // render per interval); the text itself is taken at once.
  void appendAnswer(const QString& piece);
  void setRenderInterval(int milliseconds) { renderIntervalMs_ = milliseconds; }
  // Renders text still waiting for the render interval.
  void flushRendering();
  int renderCount() const { return renderCount_; }
  const QString& content() const { return segmenter_.text(); }
  const QString& thinking() const { return thinkingText_; }
  // nullptr while the message has no thinking.
  ThinkingBlock* thinkingBlock() const { return thinkingBlock_; }

  // Branch navigator: shown when count > 1; index is 0-based.
  void setBranch(int index, int count);
  void setAuthor(const QString& author);
  void setFooter(const QString& footer);
  void setStreaming(bool streaming);
  bool isStreaming() const { return streaming_; }

  // The answer's segment widgets, in order (QLabel for Markdown, CodeBlock).
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
  void scheduleRendering();
  void syncThinking();
  void syncSegments(int firstChanged);
  QWidget* createSegmentWidget(const Segment& segment);
  void renderSegment(QWidget* widget, const Segment& segment);
  void rerenderMarkdown();

  qint64 messageId_;
  app::Role role_;
  bool streaming_ = false;
  QString thinkingText_;
  ThinkingBlock* thinkingBlock_ = nullptr;
  bool thinkingChanged_ = false;  // thinking text not yet rendered
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
