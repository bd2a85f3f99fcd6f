#include "ui/code_block.h"

#include <cmath>

#include <QApplication>
#include <QClipboard>
#include <QEvent>
#include <QFontDatabase>
#include <QHBoxLayout>
#include <QLabel>
#include <QPainter>
#include <QResizeEvent>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollBar>
#include <QTextBlock>
#include <QTextCursor>
#include <QTimer>
#include <QVBoxLayout>

#include "ui/code_highlighting.h"
#include "ui/theme.h"

namespace peregrine::ui {

// QPlainTextEdit lays lines out at the font's real (fractional) height; asking the first laid-out
// line is the only exact way to know how tall the whole code is.
class CodeView : public QPlainTextEdit {
 public:
  using QPlainTextEdit::QPlainTextEdit;
  qreal lineHeight() const {
    const QTextBlock first = document()->firstBlock();
    const qreal h = first.isValid() ? blockBoundingRect(first).height() : 0.0;
    return h > 0 ? h : QFontMetricsF(font()).lineSpacing();
  }
};

CodeBlock::CodeBlock(QWidget* parent)
    : QWidget(parent),
      language_(new QLabel(this)),
      copy_(new QPushButton(tr("Copy"), this)),
      view_(new CodeView(this)) {
  setObjectName(QStringLiteral("codeBlock"));
  language_->setObjectName(QStringLiteral("codeLanguage"));
  copy_->setObjectName(QStringLiteral("codeCopy"));
  copy_->setToolTip(tr("Copy the code"));
  copy_->setFlat(true);
  copy_->setCursor(Qt::PointingHandCursor);
  copy_->setFocusPolicy(Qt::NoFocus);

  view_->setReadOnly(true);
  view_->setTextInteractionFlags(Qt::TextSelectableByMouse | Qt::TextSelectableByKeyboard);
  view_->setLineWrapMode(QPlainTextEdit::NoWrap);
  view_->setVerticalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  view_->setHorizontalScrollBarPolicy(Qt::ScrollBarAsNeeded);
  view_->setFrameShape(QFrame::NoFrame);
  view_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  view_->setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);
  highlighting_ = new CodeHighlighting(view_->document());

  auto* header = new QHBoxLayout;
  header->setContentsMargins(10, 2, 4, 2);
  header->addWidget(language_);
  header->addStretch(1);
  header->addWidget(copy_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(1, 1, 1, 1);
  layout->setSpacing(0);
  layout->addLayout(header);
  layout->addWidget(view_);

  connect(copy_, &QPushButton::clicked, this, &CodeBlock::copyToClipboard);
  applyColors();
  updateHeight();
}

CodeBlock::~CodeBlock() { delete highlighting_; }

void CodeBlock::setCode(const QString& code, const QString& fenceLanguage) {
  const bool languageChanged = fenceLanguage != fenceLanguage_ || code_.isEmpty();
  if (code.startsWith(code_) && !code_.isEmpty()) {
    // Streaming: append only the new text so the highlighter re-runs on the last lines only.
    if (code.size() != code_.size()) {
      QTextCursor cursor(view_->document());
      cursor.movePosition(QTextCursor::End);
      cursor.insertText(code.mid(code_.size()));
    }
  } else {
    view_->setPlainText(code);
    measureNewLines(true);
  }
  measureNewLines(false);
  const bool detectFromContent =
      fenceLanguage.isEmpty() && highlighting_->definitionName().isEmpty() &&
      code.contains(u'\n') && !code_.contains(u'\n');
  code_ = code;
  fenceLanguage_ = fenceLanguage;
  if (languageChanged || detectFromContent) {
    highlighting_->selectDefinition(fenceLanguage_, code_);
  }
  language_->setText(languageLabel());
  updateHeight();
}

QString CodeBlock::languageLabel() const {
  if (!highlighting_->definitionName().isEmpty()) return highlighting_->definitionName();
  if (!fenceLanguage_.isEmpty()) return fenceLanguage_;
  return tr("text");
}

QString CodeBlock::highlightingDefinition() const { return highlighting_->definitionName(); }

void CodeBlock::copyToClipboard() {
  QApplication::clipboard()->setText(code_);
  copy_->setText(tr("Copied"));
  QTimer::singleShot(1500, copy_, [button = copy_] { button->setText(tr("Copy")); });
  emit copied();
}

void CodeBlock::changeEvent(QEvent* event) {
  if (event->type() == QEvent::PaletteChange || event->type() == QEvent::ApplicationPaletteChange) {
    applyColors();
  }
  if (event->type() == QEvent::FontChange) updateHeight();
  QWidget::changeEvent(event);
}

void CodeBlock::resizeEvent(QResizeEvent* event) {
  QWidget::resizeEvent(event);
  updateHeight();
}

void CodeBlock::paintEvent(QPaintEvent*) {
  QPainter painter(this);
  painter.fillRect(rect(), frameColor_);
  painter.fillRect(QRect(1, 1, width() - 2, view_->y() - 1), headerColor_);
}

void CodeBlock::applyColors() {
  const QPalette base = palette();
  QColor background = highlighting_->applyTheme(isDarkPalette(base));
  if (!background.isValid()) {
    background = mix(base.color(QPalette::Base), base.color(QPalette::Text), 0.04);
  }
  QPalette viewPalette = view_->palette();
  viewPalette.setColor(QPalette::Base, background);
  if (!CodeHighlighting::available()) viewPalette.setColor(QPalette::Text, base.color(QPalette::Text));
  view_->setPalette(viewPalette);

  frameColor_ = mix(background, base.color(QPalette::WindowText), 0.18);
  headerColor_ = mix(background, base.color(QPalette::WindowText), 0.07);
  QPalette labelPalette = language_->palette();
  labelPalette.setColor(QPalette::WindowText,
                        mix(base.color(QPalette::WindowText), headerColor_, 0.30));
  language_->setPalette(labelPalette);
  update();
}

void CodeBlock::measureNewLines(bool reset) {
  if (reset) {
    measuredBlocks_ = 0;
    widestLine_ = 0;
  }
  const QFontMetrics metrics(view_->font());
  // The last measured line may have grown since; measure again from it.
  QTextBlock block = view_->document()->findBlockByNumber(std::max(0, measuredBlocks_ - 1));
  for (; block.isValid(); block = block.next()) {
    widestLine_ = std::max(widestLine_, metrics.horizontalAdvance(block.text()));
  }
  measuredBlocks_ = view_->document()->blockCount();
}

void CodeBlock::updateHeight() {
  const int lines = std::max(1, view_->document()->blockCount());
  const int margin = static_cast<int>(view_->document()->documentMargin());
  int height = static_cast<int>(std::ceil(lines * view_->lineHeight())) + 2 * margin +
               2 * view_->frameWidth() + 2;
  // Room for the sideways scroll bar when a line is wider than the view.
  if (widestLine_ + 2 * margin + 4 > view_->width()) {
    height += view_->horizontalScrollBar()->sizeHint().height();
  }
  if (view_->height() != height) view_->setFixedHeight(height);
}

}  // namespace peregrine::ui
