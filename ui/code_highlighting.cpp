#include "ui/code_highlighting.h"

#include <QHash>
#include <QMimeDatabase>
#include <QTextDocument>

#if PEREGRINE_HAVE_SYNTAX_HIGHLIGHTING
#include <KSyntaxHighlighting/Definition>
#include <KSyntaxHighlighting/Repository>
#include <KSyntaxHighlighting/SyntaxHighlighter>
#include <KSyntaxHighlighting/Theme>
#endif

namespace peregrine::ui {

#if PEREGRINE_HAVE_SYNTAX_HIGHLIGHTING
namespace ksh = KSyntaxHighlighting;

namespace {

// Loading the definitions takes tens of milliseconds: once per process, on first use.
ksh::Repository& repository() {
  static ksh::Repository repo;
  return repo;
}

// Fence words that are neither a definition's name nor a file extension it claims.
QString aliasFor(const QString& word) {
  static const QHash<QString, QString> aliases = {
      {QStringLiteral("c++"), QStringLiteral("C++")},
      {QStringLiteral("shell"), QStringLiteral("Bash")},
      {QStringLiteral("console"), QStringLiteral("Bash")},
      {QStringLiteral("sh"), QStringLiteral("Bash")},
      {QStringLiteral("zsh"), QStringLiteral("Zsh")},
      {QStringLiteral("python3"), QStringLiteral("Python")},
      {QStringLiteral("py"), QStringLiteral("Python")},
      {QStringLiteral("js"), QStringLiteral("JavaScript")},
      {QStringLiteral("ts"), QStringLiteral("TypeScript")},
      {QStringLiteral("rs"), QStringLiteral("Rust")},
      {QStringLiteral("golang"), QStringLiteral("Go")},
      {QStringLiteral("yml"), QStringLiteral("YAML")},
      {QStringLiteral("dockerfile"), QStringLiteral("Dockerfile")},
      {QStringLiteral("text"), QString()},
      {QStringLiteral("txt"), QString()},
      {QStringLiteral("plaintext"), QString()},
  };
  return aliases.value(word.toLower(), word);
}

// Definition names are matched without regard to case ("python", "Python", "PYTHON").
ksh::Definition definitionByName(const QString& name) {
  static const QHash<QString, ksh::Definition> byLowerName = [] {
    QHash<QString, ksh::Definition> map;
    for (const ksh::Definition& d : repository().definitions()) map.insert(d.name().toLower(), d);
    return map;
  }();
  return byLowerName.value(name.toLower());
}

ksh::Definition definitionFor(const QString& fenceLanguage, const QString& code) {
  auto& repo = repository();
  if (!fenceLanguage.isEmpty()) {
    const QString name = aliasFor(fenceLanguage);
    if (name.isEmpty()) return {};
    ksh::Definition d = definitionByName(name);
    if (d.isValid()) return d;
    d = repo.definitionForFileName(QStringLiteral("snippet.") + fenceLanguage.toLower());
    if (d.isValid()) return d;
    d = repo.definitionForFileName(fenceLanguage);  // "Makefile", "CMakeLists.txt"
    if (d.isValid()) return d;
  }
  // No usable language word: let the content speak (shebang lines, XML, JSON ...).
  const QMimeType mime = QMimeDatabase().mimeTypeForData(code.left(4096).toUtf8());
  if (mime.isValid() && mime.name() != QStringLiteral("text/plain") &&
      mime.name() != QStringLiteral("application/octet-stream")) {
    return repo.definitionForMimeType(mime.name());
  }
  return {};
}

}  // namespace

struct CodeHighlighting::Impl {
  explicit Impl(QTextDocument* document) : highlighter(document) {}
  ksh::SyntaxHighlighter highlighter;
};

CodeHighlighting::CodeHighlighting(QTextDocument* document) : impl_(new Impl(document)) {}
CodeHighlighting::~CodeHighlighting() { delete impl_; }
bool CodeHighlighting::available() { return true; }

QString CodeHighlighting::selectDefinition(const QString& fenceLanguage, const QString& code) {
  const ksh::Definition d = definitionFor(fenceLanguage, code);
  if (d.name() != impl_->highlighter.definition().name()) {
    impl_->highlighter.setDefinition(d);
  }
  definitionName_ = d.isValid() ? d.name() : QString();
  return definitionName_;
}

QColor CodeHighlighting::applyTheme(bool dark) {
  const ksh::Theme theme = repository().defaultTheme(dark ? ksh::Repository::DarkTheme
                                                          : ksh::Repository::LightTheme);
  if (theme.name() != impl_->highlighter.theme().name()) {
    impl_->highlighter.setTheme(theme);
    impl_->highlighter.rehighlight();
  }
  return QColor::fromRgba(theme.editorColor(ksh::Theme::BackgroundColor));
}

#else  // highlighting compiled out

struct CodeHighlighting::Impl {};
CodeHighlighting::CodeHighlighting(QTextDocument*) {}
CodeHighlighting::~CodeHighlighting() = default;
bool CodeHighlighting::available() { return false; }
QString CodeHighlighting::selectDefinition(const QString&, const QString&) { return {}; }
QColor CodeHighlighting::applyTheme(bool) { return {}; }

#endif

}  // namespace peregrine::ui
