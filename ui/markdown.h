// Markdown → HTML for the chat, with GitHub's extensions (tables, strikethrough, autolinks, task
// lists) through cmark-gfm, shaped for Qt's rich-text subset (QLabel / QTextDocument).
#pragma once

#include <QColor>
#include <QString>

namespace peregrine::ui {

struct MarkdownStyle {
  QColor inlineCodeBackground;  // invalid: no background behind `inline code`
  QColor tableBorder;           // invalid: Qt's default grey
};

// Raw HTML inside the Markdown is not passed through (cmark-gfm's safe default): a model's answer
// must not be able to inject markup into the window.
QString markdownToHtml(const QString& markdown, const MarkdownStyle& style = {});

}  // namespace peregrine::ui
