// Message widgets: streaming re-renders only the last segment, thinking (handed over apart from
// the answer) collapses when the answer starts, code blocks copy their code and are highlighted,
// branch navigation, the chat view following its message list model, and the time a 2,000-token
// answer takes to stream in.
#include <QApplication>
#include <QClipboard>
#include <QElapsedTimer>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPointer>
#include <QPushButton>
#include <QTextBlock>
#include <QTextLayout>
#include <QToolButton>
#include <QtTest>

#include "ui/chat_view.h"
#include "ui/message_list_model.h"
#include "ui/code_block.h"
#include "ui/message_widget.h"
#include "ui/thinking_block.h"
#include "ui_test_text.h"

using namespace peregrine::ui;
using peregrine::app::Role;

namespace {

// What a segment widget shows, to detect re-rendering.
QString widgetContent(QWidget* w) {
  if (auto* label = qobject_cast<QLabel*>(w)) return label->text();
  if (auto* code = qobject_cast<CodeBlock*>(w)) return code->code();
  return {};
}

bool hasHighlightFormats(CodeBlock* block) {
  auto* view = block->findChild<QPlainTextEdit*>();
  for (QTextBlock b = view->document()->begin(); b.isValid(); b = b.next()) {
    if (!b.layout()->formats().isEmpty()) return true;
  }
  return false;
}

}  // namespace

class MessageWidgetTest : public QObject {
  Q_OBJECT
 private slots:
  void streamingTouchesOnlyTheLastSegment() {
    MessageWidget message(1, Role::Assistant);
    message.resize(700, 400);
    message.show();
    const QString text = testing::sampleAnswer();
    QList<QWidget*> widgets;
    QStringList contents;
    int maxSegments = 0;
    for (qsizetype pos = 0; pos < text.size(); pos += 3) {
      message.appendAnswer(text.mid(pos, 3));
      QList<QWidget*> now;
      QStringList nowContents;
      for (int i = 0; i < message.segmentCount(); ++i) {
        now << message.segmentWidget(i);
        nowContents << widgetContent(message.segmentWidget(i));
      }
      // Every segment before the previous last one: same widget object, same content.
      for (int i = 0; i + 1 < widgets.size(); ++i) {
        QVERIFY2(now.value(i) == widgets[i], qPrintable(QStringLiteral("widget %1 replaced at %2").arg(i).arg(pos)));
        QVERIFY2(nowContents[i] == contents[i], qPrintable(QStringLiteral("widget %1 re-rendered at %2").arg(i).arg(pos)));
      }
      QVERIFY(now.size() >= widgets.size());
      widgets = now;
      contents = nowContents;
      maxSegments = std::max(maxSegments, message.segmentCount());
    }
    QCOMPARE(maxSegments, 7);
    // Streamed in pieces, the message ends up exactly as if set whole.
    MessageWidget whole(2, Role::Assistant);
    whole.setThinkingAndContent({}, text);
    QCOMPARE(whole.segmentCount(), message.segmentCount());
    for (int i = 0; i < whole.segmentCount(); ++i) {
      QCOMPARE(widgetContent(message.segmentWidget(i)), widgetContent(whole.segmentWidget(i)));
    }
  }

  void thinkingCollapsesWhenTheAnswerStarts() {
    MessageWidget message(1, Role::Assistant);
    message.setStreaming(true);
    QVERIFY(!message.thinkingBlock());
    message.appendThinking(QStringLiteral("Let me see"));
    ThinkingBlock* thinking = message.thinkingBlock();
    QVERIFY(thinking);
    QCOMPARE(message.segmentCount(), 0);  // the thinking is not one of the answer's segments
    QVERIFY(thinking->isExpanded());
    QVERIFY(!thinking->isFinished());
    // Tags in the thinking are text, not markup: the engine already split the think block.
    message.appendThinking(QStringLiteral(" what <think> fits."));
    QCOMPARE(thinking->text(), QStringLiteral("Let me see what <think> fits."));
    QVERIFY(!thinking->isFinished());
    message.appendAnswer(QStringLiteral("The answer"));
    QCOMPARE(message.segmentCount(), 1);
    QCOMPARE(message.thinkingBlock(), thinking);
    QVERIFY(thinking->isFinished());
    QVERIFY(!thinking->isExpanded());
    QCOMPARE(message.thinking(), QStringLiteral("Let me see what <think> fits."));
    QCOMPARE(message.content(), QStringLiteral("The answer"));
    // The user opens it again: more answer text does not fold it away a second time.
    thinking->setExpanded(true);
    message.appendAnswer(QStringLiteral(" continues."));
    QVERIFY(thinking->isExpanded());

    // An answer stopped while thinking: finished once it no longer streams.
    MessageWidget stopped(3, Role::Assistant);
    stopped.setStreaming(true);
    stopped.appendThinking(QStringLiteral("hmm"));
    QVERIFY(!stopped.thinkingBlock()->isFinished());
    stopped.setStreaming(false);
    QVERIFY(stopped.thinkingBlock()->isFinished());
    QVERIFY(stopped.thinkingBlock()->isExpanded());  // no answer to read: the thinking stays open

    // A stored message with its thinking apart: collapsed from the start, above the answer.
    MessageWidget stored(2, Role::Assistant);
    stored.setThinkingAndContent(QStringLiteral("thoughts"), QStringLiteral("Answer."));
    QVERIFY(stored.thinkingBlock());
    QVERIFY(!stored.thinkingBlock()->isExpanded());
    QVERIFY(stored.thinkingBlock()->isFinished());
    QCOMPARE(stored.thinkingBlock()->text(), QStringLiteral("thoughts"));
    QCOMPARE(stored.segmentCount(), 1);
    stored.resize(500, 300);
    stored.show();
    QVERIFY(stored.thinkingBlock()->y() < stored.segmentWidget(0)->y());  // above the answer
    // No thinking: no block.
    MessageWidget plain(4, Role::Assistant);
    plain.setThinkingAndContent({}, QStringLiteral("<think>is text here</think>"));
    QVERIFY(!plain.thinkingBlock());
    QCOMPARE(plain.segmentCount(), 1);
  }

  void copyPutsTheCodeOnTheClipboard() {
    MessageWidget message(1, Role::Assistant);
    message.setThinkingAndContent({}, QStringLiteral("Run this:\n\n```bash\necho \"hi\" | tr a-z A-Z\nls -l\n```\n\nDone."));
    CodeBlock* block = message.lastCodeBlock();
    QVERIFY(block);
    QApplication::clipboard()->clear();
    auto* copy = block->findChild<QPushButton*>(QStringLiteral("codeCopy"));
    QVERIFY(copy);
    QSignalSpy copied(block, &CodeBlock::copied);
    QTest::mouseClick(copy, Qt::LeftButton);
    QCOMPARE(copied.count(), 1);
    QCOMPARE(QApplication::clipboard()->text(), QStringLiteral("echo \"hi\" | tr a-z A-Z\nls -l"));
    QCOMPARE(copy->text(), QStringLiteral("Copied"));
  }

  void codeBlocksAreLabelledAndHighlighted() {
    MessageWidget message(1, Role::Assistant);
    message.setThinkingAndContent({}, testing::sampleAnswer() +
                    QStringLiteral("\n```\n#!/bin/sh\necho plain fence, shell by content\n```\n"
                                   "\n```text\njust words\n```\n\n```weirdlang\nx\n```\n"));
    QList<CodeBlock*> blocks;
    for (int i = 0; i < message.segmentCount(); ++i) {
      if (auto* b = qobject_cast<CodeBlock*>(message.segmentWidget(i))) blocks << b;
    }
    QCOMPARE(blocks.size(), 5);
    auto* label = blocks[0]->findChild<QLabel*>(QStringLiteral("codeLanguage"));
    QVERIFY(label);
#if PEREGRINE_HAVE_SYNTAX_HIGHLIGHTING
    QCOMPARE(blocks[0]->highlightingDefinition(), QStringLiteral("C++"));
    QCOMPARE(label->text(), QStringLiteral("C++"));
    QCOMPARE(blocks[1]->highlightingDefinition(), QStringLiteral("Python"));
    QVERIFY2(!blocks[2]->highlightingDefinition().isEmpty(), "shebang not detected");
    QVERIFY(hasHighlightFormats(blocks[0]));
    QVERIFY(hasHighlightFormats(blocks[1]));
    QCOMPARE(blocks[3]->highlightingDefinition(), QString());
#else
    QCOMPARE(label->text(), QStringLiteral("cpp"));
    QVERIFY(!hasHighlightFormats(blocks[0]));
#endif
    QCOMPARE(blocks[4]->languageLabel(), QStringLiteral("weirdlang"));
  }

  void branchNavigatorEmitsSignals() {
    MessageWidget message(42, Role::User);
    message.setThinkingAndContent({}, QStringLiteral("question"));
    auto* previous = message.findChild<QToolButton*>(QStringLiteral("previousBranch"));
    auto* next = message.findChild<QToolButton*>(QStringLiteral("nextBranch"));
    auto* position = message.findChild<QLabel*>(QStringLiteral("branchPosition"));
    QVERIFY(previous && next && position);
    message.show();
    message.setBranch(0, 1);
    QVERIFY(!previous->isVisible());
    message.setBranch(1, 3);
    QVERIFY(previous->isVisible());
    QCOMPARE(position->text(), QStringLiteral("2/3"));
    QSignalSpy spy(&message, &MessageWidget::branchRequested);
    QTest::mouseClick(previous, Qt::LeftButton);
    QTest::mouseClick(next, Qt::LeftButton);
    QCOMPARE(spy.count(), 2);
    QCOMPARE(spy[0][0].toLongLong(), 42);
    QCOMPARE(spy[0][1].toInt(), -1);
    QCOMPARE(spy[1][1].toInt(), 1);
    message.setBranch(2, 3);
    QVERIFY(!next->isEnabled());
    QSignalSpy edit(&message, &MessageWidget::editRequested);
    QTest::mouseClick(message.findChild<QToolButton*>(QStringLiteral("editMessage")), Qt::LeftButton);
    QCOMPARE(edit.count(), 1);
  }

  void chatViewShowsStoredMessages() {
    ChatView view;
    peregrine::app::Message answer;
    answer.id = 7;
    answer.role = Role::Assistant;
    answer.content = QStringLiteral("partial ans");
    answer.thinking = QStringLiteral("hm");
    answer.model = QStringLiteral("Qwen3.6-35B-A3B Q4_K_M");
    answer.state = peregrine::app::MessageState::Interrupted;
    answer.stats.emplace();
    answer.stats->generated_tokens = 12;
    answer.stats->decode_tok_s = 41.25;
    peregrine::app::Siblings siblings;
    siblings.ids = {5, 7};
    siblings.index = 1;
    const MessageItem item = messageItemFrom(answer, siblings);
    QCOMPARE(item.branchIndex, 1);
    QCOMPARE(item.branchCount, 2);
    QVERIFY2(item.footer.contains(QStringLiteral("41.2 tok/s")) || item.footer.contains(QStringLiteral("41.3 tok/s")),
             qPrintable(item.footer));
    QVERIFY(item.footer.contains(QStringLiteral("interrupted")));
    QVERIFY2(!item.footer.contains(QStringLiteral("MTP")), qPrintable(item.footer));  // not drafted
    answer.stats->mtp.active = true;
    answer.stats->mtp.acceptance_rate = 0.625;
    QVERIFY2(statisticsLine(answer).contains(QStringLiteral("MTP 62%")) ||
                 statisticsLine(answer).contains(QStringLiteral("MTP 63%")),
             qPrintable(statisticsLine(answer)));
    MessageItem question;
    question.id = 3;
    question.content = QStringLiteral("Q?");
    view.model()->setMessages({question, item});
    QCOMPARE(view.messages().size(), 2);
    QVERIFY(view.message(7)->thinkingBlock());
    QCOMPARE(view.message(7)->segmentCount(), 1);
    QSignalSpy branch(&view, &ChatView::branchRequested);
    emit view.message(7)->branchRequested(7, -1);
    QCOMPARE(branch.count(), 1);
    view.model()->appendAnswer(7, QStringLiteral("wer\n```cpp\nint x;\n```\n"));
    QVERIFY(view.lastCodeBlock());
    QCOMPARE(view.lastCodeBlock()->code(), QStringLiteral("int x;"));
    QCOMPARE(view.model()->at(1).content, QStringLiteral("partial answer\n```cpp\nint x;\n```\n"));
  }

  // The view follows its model: rows appended, updated and removed change only their own widgets.
  void chatViewFollowsItsModel() {
    ChatView view;
    MessageListModel* model = view.model();
    MessageItem question;
    question.id = 1;
    question.content = QStringLiteral("Q?");
    model->setMessages({question});
    QPointer<MessageWidget> first = view.message(1);
    QVERIFY(first);

    MessageItem answer;
    answer.id = 2;
    answer.role = Role::Assistant;
    answer.streaming = true;
    model->appendMessage(answer);
    QCOMPARE(view.messages().size(), 2);
    QCOMPARE(view.message(1), first.data());
    QPointer<MessageWidget> streaming = view.message(2);
    QVERIFY(streaming->isStreaming());
    model->appendThinking(2, QStringLiteral("pondering"));
    model->appendAnswer(2, QStringLiteral("Yes."));
    streaming->flushRendering();
    QCOMPARE(streaming->thinking(), QStringLiteral("pondering"));
    QCOMPARE(streaming->content(), QStringLiteral("Yes."));

    // Finished: footer and state change in place, the text is not set again.
    const int renders = streaming->renderCount();
    MessageItem done = model->at(1);
    done.streaming = false;
    done.footer = QStringLiteral("12 tokens");
    done.branchCount = 2;
    done.branchIndex = 1;
    model->updateMessage(done);
    QCOMPARE(view.message(2), streaming.data());
    QVERIFY(!streaming->isStreaming());
    QCOMPARE(streaming->findChild<QLabel*>(QStringLiteral("messageFooter"))->text(), QStringLiteral("12 tokens"));
    QCOMPARE(streaming->findChild<QLabel*>(QStringLiteral("branchPosition"))->text(), QStringLiteral("2/2"));
    QCOMPARE(streaming->renderCount(), renders);

    // Regenerate: the answer's row goes, the question's widget stays.
    model->truncate(1);
    QCOMPARE(view.messages().size(), 1);
    QVERIFY(!streaming);
    QCOMPARE(view.message(1), first.data());
    model->truncate(model->rowOf(99));  // not listed: nothing happens
    QCOMPARE(view.messages().size(), 1);
    model->clear();
    QVERIFY(view.messages().isEmpty());
    QVERIFY(!first);
  }

  // 2,000 tokens of a typical answer (prose, a list, a table, two code blocks) streamed into a
  // visible chat, letting the event loop lay out after every token as the app does.
  void longAnswerStreamsInBoundedTimePerToken() {
    // The first tokens are thinking (about 40 characters), the rest the answer.
    constexpr int kThinkingTokens = 10;
    QString answer = QStringLiteral("Planning the answer step by step. Done.\n");
    int paragraph = 0;
    while (answer.size() < 2000 * 4) {
      ++paragraph;
      answer += QStringLiteral("Paragraph %1 explains **why** the `ring buffer` keeps its indices modulo N, "
                               "so pushes and pops stay O(1) without moving elements.\n\n").arg(paragraph);
      if (paragraph % 8 == 3) answer += QStringLiteral("- first point\n- second point with `code`\n\n");
      if (paragraph % 8 == 5) answer += QStringLiteral("| a | b |\n|---|---|\n| 1 | 2 |\n\n");
      if (paragraph % 16 == 7) {
        answer += QStringLiteral("```cpp\n");
        for (int i = 0; i < 30; ++i) answer += QStringLiteral("  total += values[%1] * weight;  // step\n").arg(i);
        answer += QStringLiteral("```\n\n");
      }
    }
    // Tokens of about four characters, as a BPE tokenizer gives for English and code.
    QStringList tokens;
    for (qsizetype pos = 0; pos < answer.size(); pos += 4) tokens << answer.mid(pos, 4);
    tokens = tokens.mid(0, 2000);
    QCOMPARE(tokens.size(), 2000);

    struct Timing {
      double totalMs, meanMs, medianMs, p99Ms, worstMs;
      int renders;
    };
    // Streams the tokens into a fresh visible chat; returns the timing and leaves the chat in view.
    auto stream = [&tokens](ChatView& view, int renderIntervalMs) {
      int thinkingTokens = kThinkingTokens;
      view.setRenderInterval(renderIntervalMs);
      view.resize(900, 700);
      view.show();
      MessageItem question;
      question.id = 1;
      question.content = QStringLiteral("Explain ring buffers");
      view.model()->appendMessage(question);
      MessageItem item;
      item.id = 2;
      item.role = Role::Assistant;
      item.streaming = true;
      view.model()->appendMessage(item);
      QElapsedTimer total;
      total.start();
      QList<qint64> perToken;
      for (const QString& token : tokens) {
        QElapsedTimer one;
        one.start();
        if (thinkingTokens > 0) {
          view.model()->appendThinking(2, token);
          --thinkingTokens;
        } else {
          view.model()->appendAnswer(2, token);
        }
        QCoreApplication::processEvents();
        perToken << one.nsecsElapsed();
      }
      view.message(2)->flushRendering();
      Timing t{};
      t.totalMs = total.nsecsElapsed() / 1e6;
      std::sort(perToken.begin(), perToken.end());
      t.meanMs = t.totalMs / tokens.size();
      t.medianMs = perToken[perToken.size() / 2] / 1e6;
      t.p99Ms = perToken[perToken.size() * 99 / 100] / 1e6;
      t.worstMs = perToken.last() / 1e6;
      t.renders = view.message(2)->renderCount();
      return t;
    };
    auto report = [](const char* what, const Timing& t) {
      qInfo("2000 tokens, %s: %d renders; total %.1f ms; per token mean %.3f ms, median %.3f ms, "
            "p99 %.3f ms, worst %.3f ms",
            what, t.renders, t.totalMs, t.meanMs, t.medianMs, t.p99Ms, t.worstMs);
    };

    // Every token rendered: the worst case, a bound on the cost of one render.
    ChatView everyToken;
    const Timing slow = stream(everyToken, 0);
    report("rendering every token", slow);
    QCOMPARE(slow.renders, 2000);
    // As the app runs: renders coalesced to one per 16 ms frame.
    ChatView view;
    const Timing fast = stream(view, 16);
    report("coalesced to one render per 16 ms", fast);
    QCOMPARE(everyToken.message(2)->segmentCount(), view.message(2)->segmentCount());
    // Generous bounds (a loaded 2-core CI machine). At 60 tok/s the GUI thread has 16 ms per token.
    QVERIFY2(slow.meanMs < 15.0, "rendering every token: mean over 15 ms per token");
    QVERIFY2(fast.meanMs < 3.0, "coalesced: mean over 3 ms per token");
    QVERIFY2(fast.p99Ms < 40.0, "coalesced: p99 over 40 ms per token");
    QCOMPARE(view.message(2)->thinking() + view.message(2)->content(), tokens.join(QString()));
    QCOMPARE(view.message(2)->thinking(), tokens.mid(0, kThinkingTokens).join(QString()));
    // Coalesced rendering shows the same thing as rendering the whole text at once.
    MessageWidget whole(3, Role::Assistant);
    whole.setThinkingAndContent(view.message(2)->thinking(), view.message(2)->content());
    QCOMPARE(view.message(2)->segmentCount(), whole.segmentCount());
    QCOMPARE(widgetContent(view.message(2)->segmentWidget(whole.segmentCount() - 1)),
             widgetContent(whole.segmentWidget(whole.segmentCount() - 1)));
  }
};

QTEST_MAIN(MessageWidgetTest)
#include "test_ui_messages.moc"
