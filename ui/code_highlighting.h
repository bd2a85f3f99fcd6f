// KSyntaxHighlighting behind a small interface, so that builds without it (Qt 6 on Debian 12)
// compile the same widgets with plain code.
#pragma once

#include <QColor>
#include <QString>

class QTextDocument;

namespace peregrine::ui {

class CodeHighlighting {
 public:
  // Attaches to document (owned by the caller, which outlives this object).
  explicit CodeHighlighting(QTextDocument* document);
  ~CodeHighlighting();
  CodeHighlighting(const CodeHighlighting&) = delete;
  CodeHighlighting& operator=(const CodeHighlighting&) = delete;

  // Picks the definition from the fence's language ("cpp", "C++", "py", "sh" ...); without one,
  // from the content (MIME detection). Returns the definition's name, empty for plain text.
  QString selectDefinition(const QString& fenceLanguage, const QString& code);
  QString definitionName() const { return definitionName_; }
  // Light or dark default theme. Returns the theme's editor background (invalid when plain).
  QColor applyTheme(bool dark);
  static bool available();

 private:
  struct Impl;
  Impl* impl_ = nullptr;
  QString definitionName_;
};

}  // namespace peregrine::ui
