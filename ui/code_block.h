// One fenced code block in a message: a header with the language and a Copy button, and the code in
// a read-only monospace view, highlighted with KSyntaxHighlighting when the build has it (the theme
// follows the palette: light or dark). The view is as tall as the code; long lines scroll sideways.
#pragma once

#include <QColor>
#include <QString>
#include <QWidget>

class QLabel;
class QPlainTextEdit;
class QPushButton;

namespace peregrine::ui {

class CodeHighlighting;
class CodeView;

class CodeBlock : public QWidget {
  Q_OBJECT
 public:
  explicit CodeBlock(QWidget* parent = nullptr);
  ~CodeBlock() override;

  // While streaming, code that extends the previous code is appended (only new lines highlighted).
  void setCode(const QString& code, const QString& fenceLanguage);
  const QString& code() const { return code_; }
  // The language shown in the header: the highlighting definition's name, else the fence's word,
  // else "text".
  QString languageLabel() const;
  // Name of the highlighting definition in use; empty when plain (or highlighting compiled out).
  QString highlightingDefinition() const;

 public slots:
  // Puts the code (not the Markdown around it) on the clipboard.
  void copyToClipboard();

 signals:
  void copied();

 protected:
  void changeEvent(QEvent* event) override;
  void resizeEvent(QResizeEvent* event) override;
  void paintEvent(QPaintEvent* event) override;

 private:
  void updateHeight();
  void applyColors();
  void measureNewLines(bool reset);

  QString code_;
  QString fenceLanguage_;
  QLabel* language_;
  QPushButton* copy_;
  CodeView* view_;
  CodeHighlighting* highlighting_ = nullptr;
  QColor frameColor_;
  QColor headerColor_;
  int measuredBlocks_ = 0;
  int widestLine_ = 0;  // pixels, for deciding whether a sideways scroll bar needs room
};

}  // namespace peregrine::ui
