// The measurements of `peregrine-cli bench` (cli_bench.cpp parses options and prints): prefill,
// decode at a context depth, MTP speculative decoding, the cost of each verify width and the
// per-operation profile of one step. All times but the profile's are wall-clock around Model
// calls, which return host logits, so a GPU step is complete when the clock stops.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "backend/profile/op_profiler.h"
#include "peregrine/gguf.h"
#include "peregrine/model.h"
#include "peregrine/sampler.h"
#include "peregrine/speculative.h"

namespace peregrine::cli {

double median(std::vector<double> v);

// What every measurement shares: the model, one sequence it resets, greedy sampling, and the
// context the decode-side measurements start from (`context` tokens evaluated untimed first).
struct BenchSetup {
  Model& model;
  Sequence& seq;
  Sampler& argmax;
  std::span<const int32_t> context;  // depth tokens (may be empty)
  int32_t first_token = 0;           // the first decoded input
  int64_t repetitions = 1;
};

// Tokens per second of one prefill of `prompt` from an empty sequence, per repetition.
std::vector<double> measure_prefill(const BenchSetup& s, std::span<const int32_t> prompt);

// Tokens per second of n_gen greedy single-token steps after the context, per repetition.
std::vector<double> measure_decode(const BenchSetup& s, int64_t n_gen);

// What --mtp measured and the projection for an acceptance profile (docs/mtp.md "Draft length").
struct MtpBench {
  int draft_length = 0;
  std::vector<double> runs_tok_s;
  SpeculativeStats stats;  // of the last run
  double draft_ms = 0, verify_ms = 0, sample_ms = 0;  // per head step / per verify step / per step
  std::vector<double> acceptance;
  double expected_tokens = 0, step_ms = 0, projected_tok_s = 0, projected_speedup = 0;

  void project(double plain_step_ms);
};

// Greedy MTP decoding of n_gen tokens after the context, draft length mtp.draft_length; fills
// runs_tok_s, stats and the per-step times.
void measure_mtp(const BenchSetup& s, int64_t n_gen, MtpBench& mtp);

// The MTP verify pass at each width: a trunk evaluate of w positions (w = 1..max_width) with
// delta-net checkpoints on and all logits kept (w > 1), rolled back to one accepted token, as
// SpeculativeDecoder::step does after a full rejection; and one MTP draft pass (evaluate_mtp of
// one token), when the model has an MTP block.
struct VerifyWidths {
  int64_t passes_per_width = 0;
  std::vector<double> ms_per_pass;  // [w - 1]: median ms of a w-position pass
  std::optional<double> draft_ms_per_pass;
  double ratio_to_one(size_t w) const { return ms_per_pass[w - 1] / ms_per_pass[0]; }
};
VerifyWidths measure_verify_widths(const BenchSetup& s, int max_width, int64_t passes_per_width);

// Positions measure_verify_widths moves the sequence on (it must fit the context).
int64_t verify_widths_positions(int max_width, int64_t passes_per_width);

// --op-profile: the model loaded once more, on a ProfilingBackend around the backend `options`
// names, then one decode step after the context (and warm-up steps) profiled op by op, and with
// verify_width > 0 one verify pass of that many positions (checkpoints on, all logits, rollback
// to one accepted token, as measure_verify_widths times it).
struct OpProfileStep {
  int64_t positions = 0;  // tokens evaluated by the profiled call
  double wall_ms = 0;     // host clock around the profiled call, profiling overhead included
  OpProfile ops;
};
struct OpProfileRun {
  OpProfileStep decode;
  std::optional<OpProfileStep> verify;
};
OpProfileRun measure_op_profile(const GgufFile& file, const GgufFile* mtp_file, const ModelOptions& options,
                                std::span<const int32_t> context, int32_t first_token, int verify_width);

// Positions measure_op_profile moves a sequence on after the context.
int64_t op_profile_positions(int verify_width);

}  // namespace peregrine::cli
