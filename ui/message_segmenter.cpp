#include "ui/message_segmenter.h"

#include <algorithm>
#include <optional>

namespace peregrine::ui {
namespace {

struct Fence {
  QChar character;
  qsizetype length = 0;
  QString language;
};

qsizetype leadingSpaces(QStringView line) {
  qsizetype i = 0;
  while (i < 3 && i < line.size() && line[i] == u' ') ++i;
  return i;
}

qsizetype runLength(QStringView line, qsizetype from, QChar c) {
  qsizetype n = 0;
  while (from + n < line.size() && line[from + n] == c) ++n;
  return n;
}

// A line (without its newline) that opens a fenced code block: up to three spaces, then three or
// more backticks or tildes, then an optional info string whose first word is the language.
// A line still being streamed counts as soon as the three fence characters are there; the info
// string may grow later, which only changes the open (last) segment.
std::optional<Fence> fenceOpener(QStringView line) {
  const qsizetype indent = leadingSpaces(line);
  if (indent >= line.size()) return std::nullopt;
  const QChar c = line[indent];
  if (c != u'`' && c != u'~') return std::nullopt;
  const qsizetype n = runLength(line, indent, c);
  if (n < 3) return std::nullopt;
  QStringView info = line.mid(indent + n).trimmed();
  qsizetype wordEnd = 0;
  while (wordEnd < info.size() && !info[wordEnd].isSpace() && info[wordEnd] != u'{') ++wordEnd;
  return Fence{c, n, info.left(wordEnd).toString()};
}

bool isFenceCloser(QStringView line, const Fence& fence) {
  const qsizetype indent = leadingSpaces(line);
  const qsizetype n = runLength(line, indent, fence.character);
  return n >= fence.length && line.mid(indent + n).trimmed().isEmpty();
}

// An open code block whose last, unfinished line could still become the closing fence: do not
// flash "``" at the end of the code while it streams.
QStringView withoutPartialCloser(QStringView code, const Fence& fence) {
  const qsizetype lineStart = code.lastIndexOf(u'\n') + 1;
  QStringView last = code.mid(lineStart);
  if (last.isEmpty()) return code;
  const qsizetype indent = leadingSpaces(last);
  const qsizetype n = runLength(last, indent, fence.character);
  if (indent + n == last.size() && n < fence.length + 1) return code.left(lineStart);
  return code;
}

// "- item", "* item", "+ item", "1. item", "2) item": a list continues across blank lines (a loose
// list), so a new block must not start there.
bool startsListItem(QStringView line) {
  if (line.isEmpty()) return false;
  qsizetype i = 0;
  if (line[0] == u'-' || line[0] == u'*' || line[0] == u'+') {
    i = 1;
  } else {
    while (i < line.size() && i < 9 && line[i].isDigit()) ++i;
    if (i == 0 || i >= line.size() || (line[i] != u'.' && line[i] != u')')) return false;
    ++i;
  }
  return i == line.size() || line[i].isSpace();
}

// Markdown is cut into blocks at a blank line followed by an unindented line that does not
// continue a list: each block renders on its own, so a long answer re-renders only its last block
// while streaming. Only whole lines decide (the decision must not change as text arrives).
bool startsIndependentBlock(QStringView line) {
  return !line.isEmpty() && !line[0].isSpace() && !startsListItem(line);
}

QStringView withoutFinalNewline(QStringView code) {
  return code.endsWith(u'\n') ? code.chopped(1) : code;
}

// Parses a fenced code block whose opening line starts at openerStart.
qsizetype parseCode(QStringView text, qsizetype openerStart, const Fence& fence,
                    QList<Segment>& out) {
  Segment s;
  s.kind = Segment::Kind::Code;
  s.language = fence.language;
  const qsizetype openerEnd = text.indexOf(u'\n', openerStart);
  if (openerEnd < 0) {  // the opening line is still arriving
    s.end = text.size();
    out.append(s);
    return s.end;
  }
  const qsizetype codeStart = openerEnd + 1;
  qsizetype lineStart = codeStart;
  qsizetype codeEnd = text.size();
  s.end = text.size();
  while (lineStart < text.size()) {
    const qsizetype newline = text.indexOf(u'\n', lineStart);
    const qsizetype lineEnd = newline < 0 ? text.size() : newline;
    if (isFenceCloser(text.mid(lineStart, lineEnd - lineStart), fence)) {
      s.closed = true;
      codeEnd = lineStart;
      s.end = newline < 0 ? text.size() : newline + 1;
      break;
    }
    lineStart = newline < 0 ? text.size() : newline + 1;
  }
  QStringView code = text.mid(codeStart, codeEnd - codeStart);
  if (!s.closed) code = withoutPartialCloser(code, fence);
  s.text = withoutFinalNewline(code).toString();
  out.append(s);
  return s.end;
}

}  // namespace

QList<Segment> segmentMessage(QStringView text) {
  QList<Segment> out;
  qsizetype pos = 0;
  // Every segment boundary is treated as the start of a line: the same state whether the parse
  // began at the start of the text or at the boundary (see MessageSegmenter).
  while (pos < text.size()) {
    enum class Next { None, Code, Markdown } next = Next::None;
    qsizetype nextAt = text.size();
    Fence fence;
    qsizetype lineStart = pos;
    bool previousLineBlank = false;
    bool sawText = false;
    while (lineStart < text.size()) {
      const qsizetype newline = text.indexOf(u'\n', lineStart);
      const qsizetype lineEnd = newline < 0 ? text.size() : newline;
      QStringView line = text.mid(lineStart, lineEnd - lineStart);
      if (previousLineBlank && sawText && newline >= 0 && startsIndependentBlock(line)) {
        next = Next::Markdown;
        nextAt = lineStart;
        break;
      }
      if (auto opener = fenceOpener(line)) {
        next = Next::Code;
        nextAt = lineStart;
        fence = *opener;
        break;
      }
      previousLineBlank = line.trimmed().isEmpty();
      sawText = sawText || !previousLineBlank;
      lineStart = newline < 0 ? text.size() : newline + 1;
    }
    QStringView markdown = text.mid(pos, nextAt - pos);
    if (!markdown.trimmed().isEmpty()) {
      Segment s;
      s.kind = Segment::Kind::Markdown;
      s.text = markdown.toString();
      s.closed = next != Next::None;
      s.end = nextAt;
      out.append(s);
    }
    switch (next) {
      case Next::None: pos = text.size(); break;
      case Next::Code: pos = parseCode(text, nextAt, fence, out); break;
      case Next::Markdown: pos = nextAt; break;
    }
  }
  return out;
}

int MessageSegmenter::append(QStringView chunk) {
  text_.append(chunk);
  const qsizetype base = committedEnd_;
  const QList<Segment> tail =
      segmentMessage(QStringView(text_).mid(base));

  const QList<Segment> before = segments_.mid(committedCount_);
  segments_.erase(segments_.begin() + committedCount_, segments_.end());
  for (qsizetype i = 0; i < tail.size(); ++i) {
    Segment s = tail[i];
    s.end += base;
    segments_.append(s);
    // Only the last segment can still grow; everything before it is final.
    if (i + 1 < tail.size()) {
      ++committedCount_;
      committedEnd_ = s.end;
    }
  }

  const int firstUncommitted = static_cast<int>(segments_.size() - tail.size());
  int firstChanged = firstUncommitted;
  while (firstChanged < segments_.size() && firstChanged - firstUncommitted < before.size() &&
         segments_[firstChanged] == before[firstChanged - firstUncommitted]) {
    ++firstChanged;
  }
  return firstChanged;
}

void MessageSegmenter::reset(QStringView text) {
  text_.clear();
  segments_.clear();
  committedCount_ = 0;
  committedEnd_ = 0;
  append(text);
}

}  // namespace peregrine::ui
