#include "bridge/bridge_types.h"

#include <QFileInfo>

namespace peregrine::app {

ModelSummary ModelSummary::fromEngine(const peregrine::ModelInfo& info) {
  ModelSummary s;
  s.path = QString::fromStdString(info.path.string());
  s.name = QString::fromStdString(info.name);
  if (s.name.isEmpty()) s.name = QFileInfo(s.path).fileName();
  s.architecture = QString::fromStdString(info.architecture);
  s.contextLength = info.context_length;
  s.trainedContextLength = info.trained_context_length;
  s.layers = info.n_layer;
  s.embeddingWidth = info.n_embd;
  s.threads = info.n_threads;
  s.hasMtp = info.has_mtp;
  s.isMoe = info.is_moe;
  s.fileBytes = info.file_bytes;
  s.format = info.chat_format;
  s.chatFormat = QString::fromUtf8(peregrine::chat_format_name(info.chat_format).data(),
                                   int(peregrine::chat_format_name(info.chat_format).size()));
  s.loadSeconds = info.load_seconds;
  return s;
}

void registerBridgeMetaTypes() {
  static const bool registered = [] {
    qRegisterMetaType<ModelSummary>("peregrine::app::ModelSummary");
    qRegisterMetaType<peregrine::GenerationStats>("peregrine::GenerationStats");
    return true;
  }();
  (void)registered;
}

}  // namespace peregrine::app
