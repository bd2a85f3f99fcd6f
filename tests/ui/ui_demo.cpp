// Tries the widgets with real storage and canned answers (no engine yet):
//   ui_demo [database.db] [--dark]
#include <QApplication>
#include <QDir>
#include <QSettings>
#include <QStandardPaths>

#include "demo_wiring.h"
#include "ui/main_window.h"
#include "ui/theme.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QCoreApplication::setOrganizationName(QStringLiteral("Peregrine"));
  QCoreApplication::setApplicationName(QStringLiteral("peregrine-ui-demo"));
  const QStringList args = app.arguments().mid(1);
  peregrine::ui::applyTheme(app, args.contains(QStringLiteral("--dark")));
  QString path;
  for (const QString& a : args) {
    if (!a.startsWith(QStringLiteral("--"))) path = a;
  }
  if (path.isEmpty()) {
    const QString dir = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
    QDir().mkpath(dir);
    path = dir + QStringLiteral("/demo.db");
  }
  peregrine::app::ConversationStore store(path);
  peregrine::ui::MainWindow window;
  window.restoreWindowState(QSettings());
  peregrine::ui::demo::DemoWiring wiring(window, store, 30);
  window.show();
  return app.exec();
}
