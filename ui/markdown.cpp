#include "ui/markdown.h"

#include <cmark-gfm-core-extensions.h>
#include <cmark-gfm.h>

#include <memory>
#include <mutex>

namespace peregrine::ui {
namespace {

struct ParserDeleter {
  void operator()(cmark_parser* p) const { cmark_parser_free(p); }
};
struct NodeDeleter {
  void operator()(cmark_node* n) const { cmark_node_free(n); }
};

std::unique_ptr<cmark_parser, ParserDeleter> makeParser() {
  static std::once_flag registered;
  std::call_once(registered, [] { cmark_gfm_core_extensions_ensure_registered(); });
  std::unique_ptr<cmark_parser, ParserDeleter> parser(cmark_parser_new(CMARK_OPT_DEFAULT));
  for (const char* name : {"table", "strikethrough", "autolink", "tasklist"}) {
    if (cmark_syntax_extension* ext = cmark_find_syntax_extension(name)) {
      cmark_parser_attach_syntax_extension(parser.get(), ext);
    }
  }
  return parser;
}

// Qt's rich text ignores <input>, CSS borders on cells and most of what a browser would use; say
// the same things in the attributes and characters it understands.
void adaptForQt(QString& html, const MarkdownStyle& style) {
  html.replace(QStringLiteral("<input type=\"checkbox\" checked=\"\" disabled=\"\" /> "),
               QStringLiteral("\u2611 "));
  html.replace(QStringLiteral("<input type=\"checkbox\" disabled=\"\" /> "), QStringLiteral("\u2610 "));
  QString table = QStringLiteral("<table border=\"1\" cellspacing=\"0\" cellpadding=\"4\"");
  if (style.tableBorder.isValid()) {
    table += QStringLiteral(" style=\"border-collapse: collapse; border-color: %1;\"")
                 .arg(style.tableBorder.name());
  } else {
    table += QStringLiteral(" style=\"border-collapse: collapse;\"");
  }
  html.replace(QStringLiteral("<table"), table);
  if (style.inlineCodeBackground.isValid()) {
    // Only inline code: fenced blocks never reach this renderer (they are CodeBlock widgets), and
    // indented blocks come as <pre><code>, which Qt already sets apart.
    html.replace(QStringLiteral("<pre><code>"), QStringLiteral("<pre><tt>"));
    html.replace(QStringLiteral("</code></pre>"), QStringLiteral("</tt></pre>"));
    html.replace(QStringLiteral("<code>"),
                 QStringLiteral("<code style=\"background-color: %1;\">&#8239;")
                     .arg(style.inlineCodeBackground.name()));
    html.replace(QStringLiteral("</code>"), QStringLiteral("&#8239;</code>"));
  }
}

}  // namespace

QString markdownToHtml(const QString& markdown, const MarkdownStyle& style) {
  auto parser = makeParser();
  const QByteArray utf8 = markdown.toUtf8();
  cmark_parser_feed(parser.get(), utf8.constData(), static_cast<size_t>(utf8.size()));
  std::unique_ptr<cmark_node, NodeDeleter> document(cmark_parser_finish(parser.get()));
  char* rendered = cmark_render_html(document.get(), CMARK_OPT_DEFAULT,
                                     cmark_parser_get_syntax_extensions(parser.get()));
  QString html = QString::fromUtf8(rendered);
  cmark_get_default_mem_allocator()->free(rendered);
  adaptForQt(html, style);
  return html;
}

}  // namespace peregrine::ui
