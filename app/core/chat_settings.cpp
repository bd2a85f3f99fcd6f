#include "core/chat_settings.h"

namespace peregrine::app {
namespace {

QLatin1String key(const char* name) { return QLatin1String(name); }

}  // namespace

QStringList ChatSettings::presetNames() {
  return {QLatin1String(kPrecise), QLatin1String(kCreative), QLatin1String(kCoding)};
}

std::optional<SamplingValues> ChatSettings::presetValues(const QString& name) {
  // Precise: little randomness for factual answers; a small presence penalty keeps a
  // low-temperature thinking block from looping.
  if (name == key(kPrecise)) return SamplingValues{0.3, 0.85, 20, 0.05, 0.5};
  // Creative: the model card's general thinking profile with a wider top-k.
  if (name == key(kCreative)) return SamplingValues{1.0, 0.95, 40, 0.0, 1.5};
  // Coding: the model card's coding profile (no presence penalty: code repeats identifiers).
  if (name == key(kCoding)) return SamplingValues{0.6, 0.95, 20, 0.0, 0.0};
  return std::nullopt;
}

void ChatSettings::applyPreset(const QString& name) {
  const std::optional<SamplingValues> values = presetValues(name);
  preset = values ? name : QString();
  sampling = values.value_or(SamplingValues{});
}

void ChatSettings::setCustomSampling(const SamplingValues& values) {
  preset = QLatin1String(kCustom);
  sampling = values;
}

ChatSettings ChatSettings::fromJson(const QJsonObject& json) {
  ChatSettings s;
  // "systemPrompt" is what the first app version's controller read; nothing wrote it from the UI,
  // but a hand-made or imported chat may carry it.
  s.systemPrompt = json.value(key(kSystemPrompt)).toString(json.value(QStringLiteral("systemPrompt")).toString());
  s.thinking = json.value(key(kThinking)).toBool(true);
  s.preset = json.value(key(kPreset)).toString();
  if (!s.preset.isEmpty()) {
    const SamplingValues fallback = presetValues(s.preset).value_or(SamplingValues{});
    s.sampling.temperature = json.value(key(kTemperature)).toDouble(fallback.temperature);
    s.sampling.topP = json.value(key(kTopP)).toDouble(fallback.topP);
    s.sampling.topK = json.value(key(kTopK)).toInt(fallback.topK);
    s.sampling.minP = json.value(key(kMinP)).toDouble(fallback.minP);
    s.sampling.presencePenalty = json.value(key(kPresencePenalty)).toDouble(fallback.presencePenalty);
  }
  if (json.value(key(kMaxTokens)).isDouble()) s.maxTokens = json.value(key(kMaxTokens)).toInt();
  s.mtp = json.value(key(kMtp)).toString(QStringLiteral("auto"));
  return s;
}

QJsonObject ChatSettings::toJson(const QJsonObject& base) const {
  QJsonObject json = base;
  json.remove(QStringLiteral("systemPrompt"));
  for (const char* name : {kSystemPrompt, kPreset, kTemperature, kTopP, kTopK, kMinP, kPresencePenalty, kMaxTokens})
    json.remove(key(name));
  if (!systemPrompt.isEmpty()) json.insert(key(kSystemPrompt), systemPrompt);
  json.insert(key(kThinking), thinking);
  if (!preset.isEmpty()) {
    json.insert(key(kPreset), preset);
    json.insert(key(kTemperature), sampling.temperature);
    json.insert(key(kTopP), sampling.topP);
    json.insert(key(kTopK), sampling.topK);
    json.insert(key(kMinP), sampling.minP);
    json.insert(key(kPresencePenalty), sampling.presencePenalty);
  }
  if (maxTokens) json.insert(key(kMaxTokens), *maxTokens);
  json.insert(key(kMtp), mtp);
  return json;
}

}  // namespace peregrine::app
