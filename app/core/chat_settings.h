// The settings of one conversation (stored as its settings_json): system prompt, Thinking,
// sampling, answer length and MTP. Plain values with no engine types, so the store, the settings
// panel (ui/) and the controller share one definition of the keys and defaults; the controller
// turns them into the engine's request (controller/chat_request.h).
//
// Sampling: with no preset chosen (preset empty) the answer uses the model card's profile for
// the Thinking mode (what the engine's SamplingParams::thinking_general() / instruct() give), so
// a new chat behaves as the model's authors recommend. A preset or any edited value stores all
// five sampling values. The presets (docs/app.md):
//   Precise   T 0.3, top-p 0.85, top-k 20, min-p 0.05, presence 0.5  facts, short exact answers
//   Creative  T 1.0, top-p 0.95, top-k 40, min-p 0,    presence 1.5  writing, brainstorming
//   Coding    T 0.6, top-p 0.95, top-k 20, min-p 0,    presence 0    the model card's coding profile
#pragma once

#include <optional>

#include <QJsonObject>
#include <QString>
#include <QStringList>

namespace peregrine::app {

struct SamplingValues {
  double temperature = 0.0;
  double topP = 1.0;
  int topK = 0;
  double minP = 0.0;
  double presencePenalty = 0.0;
  bool operator==(const SamplingValues&) const = default;
};

struct ChatSettings {
  // JSON keys of Conversation::settings.
  static constexpr const char* kSystemPrompt = "system_prompt";
  static constexpr const char* kThinking = "thinking";
  static constexpr const char* kPreset = "preset";
  static constexpr const char* kTemperature = "temperature";
  static constexpr const char* kTopP = "top_p";
  static constexpr const char* kTopK = "top_k";
  static constexpr const char* kMinP = "min_p";
  static constexpr const char* kPresencePenalty = "presence_penalty";
  static constexpr const char* kMaxTokens = "max_tokens";
  static constexpr const char* kMtp = "mtp";

  // Preset names (kPreset). Empty: the model card's profile for the Thinking mode.
  static constexpr const char* kPrecise = "precise";
  static constexpr const char* kCreative = "creative";
  static constexpr const char* kCoding = "coding";
  static constexpr const char* kCustom = "custom";  // values edited by hand

  QString systemPrompt;
  bool thinking = true;
  QString preset;                     // empty: model card; else a preset name or kCustom
  SamplingValues sampling;            // used when preset is not empty
  std::optional<int> maxTokens;       // absent: the app's default
  QString mtp = QStringLiteral("auto");  // "auto", "off", or a draft length "1".."8"

  bool usesModelCardSampling() const { return preset.isEmpty(); }
  // Chooses a preset: its values (an unknown name or empty: back to the model card).
  void applyPreset(const QString& name);
  // Sets the sampling by hand (preset becomes kCustom).
  void setCustomSampling(const SamplingValues& values);

  // Keys this struct does not know are kept by toJson(base) (later versions may add some).
  static ChatSettings fromJson(const QJsonObject& json);
  QJsonObject toJson(const QJsonObject& base = {}) const;

  static QStringList presetNames();  // precise, creative, coding
  static std::optional<SamplingValues> presetValues(const QString& name);
  bool operator==(const ChatSettings&) const = default;
};

}  // namespace peregrine::app
