#include "controller/chat_request.h"

#include <cmath>

#include <QString>

namespace peregrine::app {

namespace {

// 0.95f is 0.949999988 as a double: shown and stored as 0.95.
double tidy(float value) { return std::round(double(value) * 1e4) / 1e4; }

}  // namespace

SamplingValues samplingValuesFrom(const peregrine::SamplingParams& params) {
  return {tidy(params.temperature), tidy(params.top_p), params.top_k, tidy(params.min_p), tidy(params.presence_penalty)};
}

SamplingValues modelCardSampling(bool thinking) {
  // The model card's "Best Practices" profiles (sampler.h; docs/engine.md, "Sampler").
  return samplingValuesFrom(thinking ? peregrine::SamplingParams::thinking_general()
                                     : peregrine::SamplingParams::instruct());
}

void applyChatSettings(const ChatSettings& settings, int defaultMaxTokens, GenerationRequest& request) {
  request.options.enable_thinking = settings.thinking;
  const SamplingValues values = settings.usesModelCardSampling() ? modelCardSampling(settings.thinking)
                                                                 : settings.sampling;
  peregrine::SamplingParams& sampling = request.sampling;
  sampling = peregrine::SamplingParams{};
  sampling.temperature = static_cast<float>(values.temperature);
  sampling.top_p = static_cast<float>(values.topP);
  sampling.top_k = values.topK;
  sampling.min_p = static_cast<float>(values.minP);
  sampling.presence_penalty = static_cast<float>(values.presencePenalty);
  request.maxTokens = settings.maxTokens.value_or(defaultMaxTokens);
  request.mtp = peregrine::parse_mtp_setting(settings.mtp.toStdString()).value_or(peregrine::MtpSetting::automatic());
}

QJsonObject samplingJson(const GenerationRequest& request) {
  const peregrine::SamplingParams& s = request.sampling;
  const SamplingValues v = samplingValuesFrom(s);
  return {{QStringLiteral("temperature"), v.temperature},
          {QStringLiteral("top_p"), v.topP},
          {QStringLiteral("top_k"), v.topK},
          {QStringLiteral("min_p"), v.minP},
          {QStringLiteral("presence_penalty"), v.presencePenalty},
          {QStringLiteral("max_tokens"), request.maxTokens},
          {QStringLiteral("thinking"), request.options.enable_thinking},
          {QStringLiteral("mtp"), QString::fromStdString(peregrine::mtp_setting_name(request.mtp))}};
}

}  // namespace peregrine::app
