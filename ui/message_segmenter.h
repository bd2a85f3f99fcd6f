// Splits a message's text into the pieces the chat shows as separate widgets: the model's
// <think>…</think> section, Markdown text, and fenced code blocks.
//
// Streaming: tokens arrive a few characters at a time and may split a fence or a tag anywhere.
// MessageSegmenter re-parses only from the end of the last segment that can no longer change, so
// an append costs the length of the last segment, and the earlier segments (and their widgets)
// stay untouched. Every segment boundary restarts the parser in the same state, which is why the
// streamed result always equals segmentMessage() of the whole text.
#pragma once

#include <QList>
#include <QString>
#include <QStringView>

namespace peregrine::ui {

struct Segment {
  enum class Kind { Thinking, Markdown, Code };
  Kind kind = Kind::Markdown;
  QString text;       // thinking text, Markdown source, or the code without its fences
  QString language;   // Code: first word of the fence's info string ("cpp", "python"), may be empty
  bool closed = false;  // Thinking: </think> seen; Code: closing fence seen; Markdown: another segment follows
  qsizetype end = 0;  // offset just past this segment in the parsed text (where the next one starts)

  bool operator==(const Segment& other) const {
    return kind == other.kind && text == other.text && language == other.language &&
           closed == other.closed;
  }
  bool operator!=(const Segment& other) const { return !(*this == other); }
};

// The segments of a complete (or partial) text. Markdown that is only whitespace is dropped.
// startsInThinking: the text begins inside the thinking section (Qwen's chat template puts the
// opening <think> into the prompt, so the answer starts with the thoughts and a bare </think>).
QList<Segment> segmentMessage(QStringView text, bool startsInThinking = false);

class MessageSegmenter {
 public:
  // Adds streamed text. Returns the index of the first segment that changed (segments before it
  // are exactly as they were); equals segments().size() when nothing visible changed.
  int append(QStringView chunk);
  // Replaces everything (a message loaded from storage, or an edit).
  void reset(QStringView text = {}, bool startsInThinking = false);

  const QList<Segment>& segments() const { return segments_; }
  const QString& text() const { return text_; }

 private:
  QString text_;
  bool startsInThinking_ = false;
  QList<Segment> segments_;
  int committedCount_ = 0;      // segments_[0, committedCount_) can no longer change
  qsizetype committedEnd_ = 0;  // offset in text_ where the uncommitted part starts
};

}  // namespace peregrine::ui
