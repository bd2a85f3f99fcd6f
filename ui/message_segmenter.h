// Splits an answer's text into the pieces the chat shows as separate widgets: Markdown text and
// fenced code blocks. (The model's thinking never comes here: the engine hands it over apart
// from the answer, and MessageWidget shows it in its ThinkingBlock.)
//
// Streaming: tokens arrive a few characters at a time and may split a fence anywhere.
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
  enum class Kind { Markdown, Code };
  Kind kind = Kind::Markdown;
  QString text;       // Markdown source, or the code without its fences
  QString language;   // Code: first word of the fence's info string ("cpp", "python"), may be empty
  bool closed = false;  // Code: closing fence seen; Markdown: another segment follows
  qsizetype end = 0;  // offset just past this segment in the parsed text (where the next one starts)

  bool operator==(const Segment& other) const {
    return kind == other.kind && text == other.text && language == other.language &&
           closed == other.closed;
  }
  bool operator!=(const Segment& other) const { return !(*this == other); }
};

// The segments of a complete (or partial) text. Markdown that is only whitespace is dropped.
QList<Segment> segmentMessage(QStringView text);

class MessageSegmenter {
 public:
  // Adds streamed text. Returns the index of the first segment that changed (segments before it
  // are exactly as they were); equals segments().size() when nothing visible changed.
  int append(QStringView chunk);
  // Replaces everything (a message loaded from storage, or an edit).
  void reset(QStringView text = {});

  const QList<Segment>& segments() const { return segments_; }
  const QString& text() const { return text_; }

 private:
  QString text_;
  QList<Segment> segments_;
  int committedCount_ = 0;      // segments_[0, committedCount_) can no longer change
  qsizetype committedEnd_ = 0;  // offset in text_ where the uncommitted part starts
};

}  // namespace peregrine::ui
