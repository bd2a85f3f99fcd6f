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

QString finishReasonName(peregrine::StopReason reason) {
  const std::string_view name = peregrine::stop_reason_name(reason);
  return QString::fromUtf8(name.data(), int(name.size()));
}

GenerationStats statsFromEngine(const peregrine::event::Done& done) {
  GenerationStats s;
  s.reason = done.reason;
  s.promptTokens = done.prompt_tokens;
  s.reusedPromptTokens = done.reused_prompt_tokens;
  s.generatedTokens = done.generated_tokens;
  s.ttftMs = done.ttft_ms;
  s.prefillMs = done.prefill_ms;
  s.prefillTokensPerSecond = done.prefill_tok_s;
  s.decodeMs = done.decode_ms;
  s.tokensPerSecond = done.decode_tok_s;
  s.mtpActive = done.mtp.active;
  s.mtpDrafted = done.mtp.drafted;
  s.mtpAccepted = done.mtp.accepted;
  s.mtpAcceptance = done.mtp.acceptance_rate;
  s.mtpMeanAccepted = done.mtp.mean_accepted;
  return s;
}

GenerationProgress progressFromEngine(const peregrine::event::StepStats& stats) {
  GenerationProgress p;
  p.generatedTokens = stats.generated_tokens;
  p.contextUsed = stats.n_past;
  p.tokensPerSecond = stats.decode_tok_s;
  p.lastStepMs = stats.last_step_ms;
  p.elapsedSeconds = stats.elapsed_s;
  p.mtpActive = stats.mtp.active;
  p.mtpAcceptance = stats.mtp.acceptance_rate;
  return p;
}

void registerBridgeMetaTypes() {
  static const bool registered = [] {
    qRegisterMetaType<ModelSummary>("peregrine::app::ModelSummary");
    qRegisterMetaType<GenerationProgress>("peregrine::app::GenerationProgress");
    qRegisterMetaType<GenerationStats>("peregrine::app::GenerationStats");
    return true;
  }();
  (void)registered;
}

}  // namespace peregrine::app
