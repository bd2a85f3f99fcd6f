// Plain values the engine bridge hands to the GUI: the Qt-side copies of the engine's ModelInfo,
// StepStats and Done, and the request the GUI fills to start an answer. All of them travel
// through queued signals, so they are registered as Qt metatypes (registerBridgeMetaTypes()).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <QMetaType>
#include <QString>

#include "peregrine/chat_template.h"
#include "peregrine/engine.h"
#include "peregrine/sampler.h"

namespace peregrine::app {

// What the GUI shows about the loaded model (status bar, model menu).
struct ModelSummary {
  QString path;
  QString name;          // general.name, or the file name when the file has none
  QString architecture;  // "qwen35" / "qwen35moe"
  qint64 contextLength = 0;         // what this load allocated
  qint64 trainedContextLength = 0;  // from the file
  qint64 layers = 0;
  qint64 embeddingWidth = 0;
  int threads = 1;
  bool hasMtp = false;
  bool isMoe = false;
  quint64 fileBytes = 0;
  QString chatFormat;    // "qwen3.6", ...
  double loadSeconds = 0.0;
  peregrine::ChatFormat format = peregrine::kDefaultChatFormat;

  static ModelSummary fromEngine(const peregrine::ModelInfo& info);
};

// One answer to generate: the conversation so far (the engine renders it with the model's chat
// template and always adds the generation prompt) plus how to sample it.
struct GenerationRequest {
  std::vector<peregrine::ChatMessage> messages;
  peregrine::ChatOptions options;          // enable_thinking drives the template's think block
  peregrine::SamplingParams sampling;      // default greedy
  int maxTokens = 512;
  std::vector<std::string> stopStrings;
  // Default: the format detected from the model's tokenizer.chat_template.
  std::optional<peregrine::ChatFormat> format;
  bool ignoreEos = false;  // keep going past end-of-generation tokens (tests, benchmarks)
  // How often the engine reports GenerationProgress; 0 = after every step (the client still
  // emits at most one stats signal per batch of events it handles).
  std::chrono::milliseconds statsInterval{250};
  // MTP speculative decoding: auto (drafts when the model has an MTP block), off, or a fixed
  // draft length. Greedy output is the same whatever the setting.
  peregrine::MtpSetting mtp;
};

// Live numbers while an answer streams (at most every 250 ms).
struct GenerationProgress {
  qint64 generatedTokens = 0;
  qint64 contextUsed = 0;      // positions in the sequence (prompt + answer so far)
  double tokensPerSecond = 0;  // decode rate since the first token
  double lastStepMs = 0;
  double elapsedSeconds = 0;
  bool mtpActive = false;      // drafting with the MTP head
  double mtpAcceptance = 0;    // accepted / drafted so far, 0..1
};

// The closing numbers of one answer (the engine's event::Done).
struct GenerationStats {
  peregrine::StopReason reason = peregrine::StopReason::MaxTokens;
  qint64 promptTokens = 0;
  qint64 reusedPromptTokens = 0;
  qint64 generatedTokens = 0;
  double ttftMs = 0;
  double prefillMs = 0;
  double prefillTokensPerSecond = 0;
  double decodeMs = 0;
  double tokensPerSecond = 0;  // decode rate
  bool mtpActive = false;      // the answer was drafted with the MTP head
  qint64 mtpDrafted = 0;
  qint64 mtpAccepted = 0;
  double mtpAcceptance = 0;    // accepted / drafted, 0..1 (what the store keeps)
  double mtpMeanAccepted = 0;  // accepted drafts per verify step
};

// "eos", "max_tokens", "stop_string", "cancelled", "context_full" (peregrine::stop_reason_name).
QString finishReasonName(peregrine::StopReason reason);
GenerationStats statsFromEngine(const peregrine::event::Done& done);
GenerationProgress progressFromEngine(const peregrine::event::StepStats& stats);

// Idempotent; EngineClient's constructor calls it, so queued connections to its signals work.
void registerBridgeMetaTypes();

}  // namespace peregrine::app

Q_DECLARE_METATYPE(peregrine::app::ModelSummary)
Q_DECLARE_METATYPE(peregrine::app::GenerationProgress)
Q_DECLARE_METATYPE(peregrine::app::GenerationStats)
