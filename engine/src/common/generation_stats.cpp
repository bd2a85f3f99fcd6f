#include "peregrine/generation_stats.h"

#include <nlohmann/json.hpp>

#include "peregrine/error.h"

namespace peregrine {
namespace {

// Every field of MtpStats / GenerationStats with its JSON name: the one list that both directions
// of the conversion walk (a field missing here is neither stored nor exported).
template <class Mtp, class Visit>
void visit_mtp_fields(Mtp& m, Visit&& visit) {
  visit("model_has_mtp", m.model_has_mtp);
  visit("active", m.active);
  visit("steps", m.steps);
  visit("drafted", m.drafted);
  visit("accepted", m.accepted);
  visit("drafted_at", m.drafted_at);
  visit("accepted_at", m.accepted_at);
  visit("mean_accepted", m.mean_accepted);
  visit("acceptance_rate", m.acceptance_rate);
  visit("draft_ms", m.draft_ms);
  visit("verify_ms", m.verify_ms);
  visit("sample_ms", m.sample_ms);
}

template <class Stats, class Visit>
void visit_stats_fields(Stats& s, Visit&& visit) {
  visit("prompt_tokens", s.prompt_tokens);
  visit("reused_prompt_tokens", s.reused_prompt_tokens);
  visit("generated_tokens", s.generated_tokens);
  visit("n_past", s.n_past);
  visit("ttft_ms", s.ttft_ms);
  visit("prefill_ms", s.prefill_ms);
  visit("prefill_tok_s", s.prefill_tok_s);
  visit("decode_ms", s.decode_ms);
  visit("decode_tok_s", s.decode_tok_s);
  visit("last_step_ms", s.last_step_ms);
  visit("elapsed_s", s.elapsed_s);
}

constexpr const char* kStopReason = "stop_reason";
constexpr const char* kMtp = "mtp";

// Reads `key` of `object` into `field` when present; a value of another type names the key.
template <class T>
void read_field(const nlohmann::json& object, const char* key, T& field) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return;
  try {
    field = it->get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(std::string("generation statistics: \"") + key + "\" has a value of the wrong type: " + it->dump());
  }
}

}  // namespace

std::string_view stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::EndOfGeneration: return "eos";
    case StopReason::MaxTokens: return "max_tokens";
    case StopReason::StopString: return "stop_string";
    case StopReason::Cancelled: return "cancelled";
    case StopReason::ContextFull: return "context_full";
  }
  return "unknown";
}

std::optional<StopReason> parse_stop_reason(std::string_view name) {
  for (StopReason r : {StopReason::EndOfGeneration, StopReason::MaxTokens, StopReason::StopString,
                       StopReason::Cancelled, StopReason::ContextFull})
    if (stop_reason_name(r) == name) return r;
  return std::nullopt;
}

std::string generation_stats_to_json(const GenerationStats& stats) {
  nlohmann::json object = nlohmann::json::object();
  if (stats.stop_reason) object[kStopReason] = std::string(stop_reason_name(*stats.stop_reason));
  visit_stats_fields(stats, [&](const char* key, const auto& field) { object[key] = field; });
  nlohmann::json mtp = nlohmann::json::object();
  visit_mtp_fields(stats.mtp, [&](const char* key, const auto& field) { mtp[key] = field; });
  object[kMtp] = std::move(mtp);
  return object.dump();
}

GenerationStats generation_stats_from_json(std::string_view json) {
  const nlohmann::json object = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!object.is_object())
    throw Error("generation statistics: not a JSON object: " + std::string(json.substr(0, 80)));
  GenerationStats stats;
  std::string reason;
  read_field(object, kStopReason, reason);
  if (!reason.empty()) {
    stats.stop_reason = parse_stop_reason(reason);
    if (!stats.stop_reason) throw Error("generation statistics: unknown stop_reason \"" + reason + "\"");
  }
  visit_stats_fields(stats, [&](const char* key, auto& field) { read_field(object, key, field); });
  const auto mtp = object.find(kMtp);
  if (mtp != object.end() && !mtp->is_null()) {
    if (!mtp->is_object()) throw Error("generation statistics: \"mtp\" is not an object: " + mtp->dump());
    visit_mtp_fields(stats.mtp, [&](const char* key, auto& field) { read_field(*mtp, key, field); });
  }
  return stats;
}

}  // namespace peregrine
