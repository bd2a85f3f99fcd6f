// GenerationStats — the numbers of one answer, one type from the engine to the screen and the
// database: the engine reports it while the answer runs (event::StepStats, stop_reason empty) and
// when it ends (event::Done, stop_reason set); the app shows it and stores it with the message as
// the JSON that generation_stats_to_json() writes.
//
// Adding a field: add it to the struct and to the field list in generation_stats.cpp (the one
// place that names every field); the JSON, and so storage and export, follow from there.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace peregrine {

enum class StopReason {
  EndOfGeneration,  // <|im_end|>, <|endoftext|> or the model's eos was sampled (not emitted)
  MaxTokens,
  StopString,       // a stop string completed (neither it nor anything after it is emitted)
  Cancelled,
  ContextFull,      // the sequence reached ModelOptions::context_length
};
// "eos", "max_tokens", "stop_string", "cancelled", "context_full".
std::string_view stop_reason_name(StopReason reason);
std::optional<StopReason> parse_stop_reason(std::string_view name);

// Speculative decoding of one request so far (all zero when it decoded plainly).
struct MtpStats {
  bool model_has_mtp = false;  // the model has an MTP (nextn) block
  bool active = false;         // this request drafted with it (not off, block present)
  int64_t steps = 0;           // verify steps (draft + one batched trunk pass each)
  int64_t drafted = 0;         // draft tokens proposed
  int64_t accepted = 0;        // draft tokens accepted
  std::vector<int64_t> drafted_at;   // per draft position (0-based), kMaxMtpDraftLength entries when active
  std::vector<int64_t> accepted_at;  // accepted at that position
  double mean_accepted = 0.0;        // accepted drafts per drafting step (the mean accepted length)
  double acceptance_rate = 0.0;      // accepted / drafted, 0..1
  double draft_ms = 0.0, verify_ms = 0.0, sample_ms = 0.0;  // MTP head / trunk verify / acceptance+sampling

  bool operator==(const MtpStats&) const = default;
};

struct GenerationStats {
  std::optional<StopReason> stop_reason;  // why the answer ended (event::Done only)
  int64_t prompt_tokens = 0;
  int64_t reused_prompt_tokens = 0;  // prompt ids not re-evaluated (reuse_prefix)
  int64_t generated_tokens = 0;      // sampled ids, an end-of-generation id included
  int64_t n_past = 0;                // positions in the sequence (prompt + answer so far)
  double ttft_ms = 0.0;              // request start to the first sampled id
  double prefill_ms = 0.0;           // evaluating the (new part of the) prompt
  double prefill_tok_s = 0.0;
  double decode_ms = 0.0;            // first sampled id to the latest
  double decode_tok_s = 0.0;         // (generated - 1) / decode time
  double last_step_ms = 0.0;         // the latest forward step plus sampling
  double elapsed_s = 0.0;            // since the request started
  MtpStats mtp;

  bool operator==(const GenerationStats&) const = default;
};

// A JSON object with every field (stop_reason by name, absent while running).
std::string generation_stats_to_json(const GenerationStats& stats);
// Reads what generation_stats_to_json wrote, also by older or newer versions: missing keys keep
// their defaults, unknown keys are ignored. Throws peregrine::Error when the text is not a JSON
// object or a known key has a value of the wrong type.
GenerationStats generation_stats_from_json(std::string_view json);

}  // namespace peregrine
