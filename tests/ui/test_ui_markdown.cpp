// Markdown → HTML and the message segmenter (whole text and streamed in every kind of chunk).
#include <QRandomGenerator>
#include <QtTest>

#include "ui/markdown.h"
#include "ui/message_segmenter.h"
#include "ui_test_text.h"

using peregrine::ui::markdownToHtml;
using peregrine::ui::MessageSegmenter;
using peregrine::ui::Segment;
using peregrine::ui::segmentMessage;
using Kind = peregrine::ui::Segment::Kind;

namespace {

// Streams text in the given chunk sizes (cycled) and checks, after every chunk, that the
// segments equal those of the whole prefix; returns the final segments.
QList<Segment> streamAndCheck(const QString& text, const QList<int>& sizes) {
  MessageSegmenter segmenter;
  qsizetype pos = 0;
  int k = 0;
  while (pos < text.size()) {
    const qsizetype n = std::min<qsizetype>(sizes[k++ % sizes.size()], text.size() - pos);
    const QList<Segment> before = segmenter.segments();
    const int firstChanged = segmenter.append(QStringView(text).mid(pos, n));
    pos += n;
    const QList<Segment> expected = segmentMessage(QStringView(text).left(pos));
    if (segmenter.segments() != expected) {
      qWarning() << "mismatch after" << pos << "chars:" << text.left(pos);
      return {};
    }
    // Everything before firstChanged is unchanged, and only the last old segment may change.
    for (int i = 0; i < firstChanged && i < before.size(); ++i) {
      if (before[i] != segmenter.segments()[i]) {
        qWarning() << "segment" << i << "changed below firstChanged" << firstChanged;
        return {};
      }
    }
    if (!before.isEmpty() && firstChanged < before.size() - 1) {
      qWarning() << "a segment before the last changed: firstChanged" << firstChanged << "of" << before.size();
      return {};
    }
  }
  return segmenter.segments();
}

}  // namespace

class MarkdownSegmenterTest : public QObject {
  Q_OBJECT
 private slots:
  void rendersTables() {
    const QString html = markdownToHtml(QStringLiteral("| a | b |\n|---|--:|\n| 1 | 2 |\n"));
    QVERIFY2(html.contains(QStringLiteral("<table border=\"1\"")), qPrintable(html));
    QVERIFY(html.contains(QStringLiteral("<th>a</th>")));
    QVERIFY(html.contains(QStringLiteral("<td align=\"right\">2</td>")));
  }

  void rendersListsAndTasks() {
    const QString html =
        markdownToHtml(QStringLiteral("- one\n- two\n\n1. first\n2. second\n\n- [x] done\n- [ ] todo\n"));
    QVERIFY2(html.contains(QStringLiteral("<ul>\n<li>one</li>")), qPrintable(html));
    QVERIFY(html.contains(QStringLiteral("<ol>\n<li>first</li>")));
    QVERIFY(html.contains(QStringLiteral("\u2611 done")));
    QVERIFY(html.contains(QStringLiteral("\u2610 todo")));
    QVERIFY(!html.contains(QStringLiteral("<input")));
  }

  void rendersLinksInlineCodeAndStrikethrough() {
    peregrine::ui::MarkdownStyle style;
    style.inlineCodeBackground = QColor(0x11, 0x22, 0x33);
    const QString html = markdownToHtml(
        QStringLiteral("Use `std::span` and see [docs](https://example.org) or www.qt.io, ~~not this~~."), style);
    QVERIFY2(html.contains(QStringLiteral("<a href=\"https://example.org\">docs</a>")), qPrintable(html));
    QVERIFY(html.contains(QStringLiteral("<a href=\"http://www.qt.io\">www.qt.io</a>")));
    QVERIFY(html.contains(QStringLiteral("<code style=\"background-color: #112233;\">&#8239;std::span&#8239;</code>")));
    QVERIFY(html.contains(QStringLiteral("<del>not this</del>")));
  }

  void dropsRawHtml() {
    const QString html = markdownToHtml(QStringLiteral("hi <script>alert(1)</script>\n\n<div>x</div>\n"));
    QVERIFY2(!html.contains(QStringLiteral("<script>")), qPrintable(html));
    QVERIFY(!html.contains(QStringLiteral("<div>")));
  }

  void segmentsAWholeAnswer() {
    const QList<Segment> s = segmentMessage(peregrine::ui::testing::sampleAnswer());
    QList<Kind> kinds;
    for (const Segment& segment : s) kinds << segment.kind;
    // Markdown is cut into blocks at blank lines that start a new paragraph, table or list.
    QCOMPARE(kinds, (QList<Kind>{Kind::Markdown, Kind::Code, Kind::Markdown, Kind::Markdown, Kind::Code,
                                 Kind::Markdown, Kind::Markdown}));
    QVERIFY(s[0].text.contains(QStringLiteral("`push`")));
    QVERIFY(s[0].closed);
    QCOMPARE(s[1].language, QStringLiteral("cpp"));
    QVERIFY(s[1].text.startsWith(QStringLiteral("#include <array>\n")));
    QVERIFY(s[1].text.endsWith(QStringLiteral("};")));  // no fence, no final newline
    QVERIFY(s[1].closed);
    QVERIFY(s[2].text.startsWith(QStringLiteral("\n| Operation |")));
    QCOMPARE(s[3].text, QStringLiteral("A quick check in Python:\n\n"));
    QCOMPARE(s[4].language, QStringLiteral("python"));
    QVERIFY(s[5].text.contains(QStringLiteral("- [ ] thread-safe")));
    QVERIFY(s[6].text.startsWith(QStringLiteral("See [std::array]")));
    QVERIFY(!s[6].closed);
  }

  void keepsListsTogether() {
    // A loose list (blank lines between items) and indented continuations stay one block; a
    // line still arriving never cuts.
    const QList<Segment> s = segmentMessage(QStringLiteral(
        "1. one\n\n2. two\n\n   more of two\n\n- a\n\n* b\n\nAfter the list.\n\nLast"));
    QCOMPARE(s.size(), 2);
    QVERIFY(s[0].text.endsWith(QStringLiteral("* b\n\n")));
    QCOMPARE(s[1].text, QStringLiteral("After the list.\n\nLast"));
  }

  void handlesFenceVariants() {
    // A longer fence may contain a shorter one; tildes; an info string with attributes; indentation.
    const QString text = QStringLiteral(
        "````markdown\n```cpp\nint x;\n```\n````\n  ~~~ rust {.numberLines}\nfn main() {}\n  ~~~\n```\nno language\n");
    const QList<Segment> s = segmentMessage(text);
    QCOMPARE(s.size(), 3);
    QCOMPARE(s[0].language, QStringLiteral("markdown"));
    QCOMPARE(s[0].text, QStringLiteral("```cpp\nint x;\n```"));
    QCOMPARE(s[1].language, QStringLiteral("rust"));
    QCOMPARE(s[1].text, QStringLiteral("fn main() {}"));
    QCOMPARE(s[2].language, QString());
    QVERIFY(!s[2].closed);
    QCOMPARE(s[2].text, QStringLiteral("no language"));
  }

  void thinkTagsAreText() {
    // The engine hands thinking over apart from the answer: tags in an answer are plain text.
    const QList<Segment> s = segmentMessage(QStringLiteral("Qwen wraps it in `<think>` tags.\n<think>real</think>ok"));
    QCOMPARE(s.size(), 1);
    QCOMPARE(s[0].kind, Kind::Markdown);
    QVERIFY(s[0].text.contains(QStringLiteral("<think>real</think>ok")));
  }

  void openSegmentsWhileStreaming() {
    // A partial closing fence is not shown as content.
    QList<Segment> s = segmentMessage(QStringLiteral("```py\nx = 1\n``"));
    QCOMPARE(s.size(), 1);
    QCOMPARE(s[0].text, QStringLiteral("x = 1"));
    s = segmentMessage(QStringLiteral("text\n```c"));
    QCOMPARE(s.size(), 2);
    QCOMPARE(s[1].kind, Kind::Code);
    QCOMPARE(s[1].language, QStringLiteral("c"));
  }

  void streamingEqualsWholeForEveryChunking() {
    const QString text = peregrine::ui::testing::sampleAnswer();
    const QList<Segment> whole = segmentMessage(text);
    // One character at a time: every split point inside "```" is visited.
    QCOMPARE(streamAndCheck(text, {1}), whole);
    QCOMPARE(streamAndCheck(text, {2, 3, 5, 7}), whole);
    QCOMPARE(streamAndCheck(text, {1000000}), whole);
    auto* random = QRandomGenerator::global();
    for (int round = 0; round < 50; ++round) {
      QList<int> sizes;
      for (int i = 0; i < 40; ++i) sizes << 1 + static_cast<int>(random->bounded(12));
      QCOMPARE(streamAndCheck(text, sizes), whole);
    }
  }

  void streamingEqualsWholeForEveryTwoWaySplit() {
    const QString text = QStringLiteral(
        "a\n\nb\n```\nc\n```\nd\n~~~~js\ne\n~~~~~\n   ```x y\nz\n   ```  \ntail");
    const QList<Segment> whole = segmentMessage(text);
    QCOMPARE(whole.size(), 7);
    for (int cut = 1; cut < text.size(); ++cut) {
      QCOMPARE(streamAndCheck(text, {cut, 1000}), whole);
    }
  }
};

QTEST_GUILESS_MAIN(MarkdownSegmenterTest)
#include "test_ui_markdown.moc"
