// Plain values the engine bridge hands to the GUI: the Qt-side copy of the engine's ModelInfo and
// the request the GUI fills to start an answer. An answer's statistics are the engine's own
// peregrine::GenerationStats, from the engine to the store without a copy in between. What travels
// through queued signals is registered as a Qt metatype (registerBridgeMetaTypes()).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <QMetaType>
#include <QString>

#include "peregrine/chat_template.h"
#include "peregrine/engine.h"
#include "peregrine/generation_stats.h"
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
  // How often the engine reports its running statistics; 0 = after every step (the client still
  // emits at most one progress signal per batch of events it handles).
  std::chrono::milliseconds statsInterval{250};
  // MTP speculative decoding: auto (drafts when the model has an MTP block), off, or a fixed
  // draft length. Greedy output is the same whatever the setting.
  peregrine::MtpSetting mtp;
};

// Idempotent; EngineClient's constructor calls it, so queued connections to its signals work.
void registerBridgeMetaTypes();

}  // namespace peregrine::app

Q_DECLARE_METATYPE(peregrine::app::ModelSummary)
Q_DECLARE_METATYPE(peregrine::GenerationStats)
