// From a conversation's ChatSettings (app/core, no engine types) to what the engine is asked for:
// the sampling, the token limit and the MTP setting of a GenerationRequest, and the sampling
// JSON stored with the answer. The model card's profiles come from the engine
// (SamplingParams::thinking_general() / instruct()) so the numbers live in one place.
#pragma once

#include <QJsonObject>

#include "bridge/bridge_types.h"
#include "core/chat_settings.h"

namespace peregrine::app {

SamplingValues samplingValuesFrom(const peregrine::SamplingParams& params);
// The model card's recommended sampling for Thinking on / off.
SamplingValues modelCardSampling(bool thinking);

// Sets request.options.enable_thinking, sampling, maxTokens (defaultMaxTokens when the chat has
// no limit of its own) and mtp from settings. An unreadable MTP value means auto.
void applyChatSettings(const ChatSettings& settings, int defaultMaxTokens, GenerationRequest& request);

// What is stored as the answer's sampling_json: the values the request carried.
QJsonObject samplingJson(const GenerationRequest& request);

}  // namespace peregrine::app
