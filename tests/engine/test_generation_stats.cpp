// GenerationStats as JSON: what the app stores with a message and exports.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "peregrine/error.h"
#include "peregrine/generation_stats.h"

namespace peregrine {
namespace {

// Every field set to a value of its own, so a field left out of the list fails the round trip.
GenerationStats every_field_set() {
  GenerationStats s;
  s.stop_reason = StopReason::StopString;
  s.prompt_tokens = 11;
  s.reused_prompt_tokens = 7;
  s.generated_tokens = 13;
  s.n_past = 24;
  s.ttft_ms = 1.5;
  s.prefill_ms = 2.5;
  s.prefill_tok_s = 3.5;
  s.decode_ms = 4.5;
  s.decode_tok_s = 5.5;
  s.last_step_ms = 6.5;
  s.elapsed_s = 7.5;
  s.mtp.model_has_mtp = true;
  s.mtp.active = true;
  s.mtp.steps = 5;
  s.mtp.drafted = 15;
  s.mtp.accepted = 9;
  s.mtp.drafted_at = {5, 5, 5, 0, 0, 0, 0, 0};
  s.mtp.accepted_at = {4, 3, 2, 0, 0, 0, 0, 0};
  s.mtp.mean_accepted = 1.8;
  s.mtp.acceptance_rate = 0.6;
  s.mtp.draft_ms = 8.5;
  s.mtp.verify_ms = 9.5;
  s.mtp.sample_ms = 10.5;
  return s;
}

TEST(GenerationStats, JsonRoundTripKeepsEveryField) {
  const GenerationStats s = every_field_set();
  EXPECT_EQ(generation_stats_from_json(generation_stats_to_json(s)), s);
  // And no field is written with its default: each one differs from a default-made struct.
  const nlohmann::json j = nlohmann::json::parse(generation_stats_to_json(s));
  const nlohmann::json defaults = nlohmann::json::parse(generation_stats_to_json(GenerationStats{}));
  for (const auto& [key, value] : j.items()) {
    if (key == "mtp") {
      for (const auto& [mkey, mvalue] : value.items()) EXPECT_NE(mvalue, defaults["mtp"][mkey]) << mkey;
    } else if (defaults.contains(key)) {
      EXPECT_NE(value, defaults[key]) << key;
    }
  }
  EXPECT_EQ(j["stop_reason"], "stop_string");
  EXPECT_FALSE(defaults.contains("stop_reason")) << "running: no reason yet";
}

TEST(GenerationStats, MissingKeysKeepDefaultsAndUnknownKeysAreIgnored) {
  const GenerationStats s = generation_stats_from_json(R"({"generated_tokens": 3, "future_field": [1, 2],
                                                          "mtp": {"acceptance_rate": 0.5}})");
  EXPECT_EQ(s.generated_tokens, 3);
  EXPECT_EQ(s.prompt_tokens, 0);
  EXPECT_EQ(s.stop_reason, std::nullopt);
  EXPECT_DOUBLE_EQ(s.mtp.acceptance_rate, 0.5);
  EXPECT_FALSE(s.mtp.active);
}

TEST(GenerationStats, MalformedJsonIsAnErrorNamingTheKey) {
  EXPECT_THROW(generation_stats_from_json("not json"), Error);
  EXPECT_THROW(generation_stats_from_json("[1, 2]"), Error);
  EXPECT_THROW(generation_stats_from_json(R"({"mtp": 3})"), Error);
  EXPECT_THROW(generation_stats_from_json(R"({"stop_reason": "bored"})"), Error);
  try {
    generation_stats_from_json(R"({"ttft_ms": "fast"})");
    FAIL() << "a string for a number must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ttft_ms"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace peregrine
