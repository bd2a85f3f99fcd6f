// Turning one row of logits into the next token id.
//
// Pipeline, in this order (the Hugging Face / vLLM order, which the Qwen model card's
// recommended values are tuned for; llama.cpp applies the temperature last instead):
//   1. ids >= valid_vocab (padding rows of the LM head, e.g. >= 248077 on Qwen 3.6) are masked;
//   2. repetition penalty over every token seen (prompt and generated): a positive logit is
//      divided by the penalty, a negative one multiplied (HF / llama.cpp / vLLM);
//   3. presence penalty (a constant subtracted once per distinct generated token) and
//      frequency penalty (a constant times the token's count) over the generated tokens
//      (OpenAI / vLLM semantics: the prompt does not count);
//   4. temperature <= 0: greedy (argmax, ties to the lowest id); otherwise logits / T;
//   5. top-k: the k most likely (exactly k, ties to the lowest id); 0 = off;
//   6. top-p: the smallest most-likely-first prefix whose probability mass reaches top_p
//      (probabilities renormalised after top-k); 1 = off;
//   7. min-p: drop tokens with p < min_p · p_max; 0 = off;
//   8. draw from the renormalised distribution with the sampler's own std::mt19937_64, so a
//      given seed and history always give the same ids.
// Buffers are sized once for the vocabulary, so sampling does not allocate.
//
// When the final distribution depends only on the k best penalised logits — greedy (k = 1) or
// top_k in 1..kMaxLogitCandidates — the sampler asks a LogitsSource that can select candidates
// where the logits are (a backend) for those k instead of the whole row; the ids, probabilities
// and random draws are exactly those of the whole-row path.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string_view>
#include <vector>

#include "peregrine/logit_select.h"

namespace peregrine {

// One row of logits as the sampler reads it: the whole row in host memory, or, for a row that
// lives elsewhere (backend memory), its best candidates selected there.
class LogitsSource {
 public:
  virtual ~LogitsSource() = default;
  // The whole row in host memory.
  virtual std::span<const float> row() = 0;
  // Whether top_k() may be asked instead of row().
  virtual bool has_candidates() const { return false; }
  // select_top_k (logit_select.h) over the first n_valid values of the row with `penalties`
  // applied first, without changing what row() returns: k ids and values, best first.
  virtual void top_k(const LogitPenalties& penalties, int64_t n_valid, int64_t k, int32_t* ids, float* values);
};

// A row already in host memory.
class HostLogits final : public LogitsSource {
 public:
  explicit HostLogits(std::span<const float> row) : row_(row) {}
  std::span<const float> row() override { return row_; }

 private:
  std::span<const float> row_;
};

struct SamplingParams {
  float temperature = 0.0f;         // <= 0: greedy
  int32_t top_k = 0;                // 0: off
  float top_p = 1.0f;               // 1: off
  float min_p = 0.0f;               // 0: off
  float presence_penalty = 0.0f;    // 0: off
  float frequency_penalty = 0.0f;   // 0: off
  float repetition_penalty = 1.0f;  // 1: off
  uint64_t seed = 0;

  bool is_greedy() const { return temperature <= 0.0f; }

  static SamplingParams greedy() { return {}; }
  // The Qwen 3.6 model card's "Best Practices" values (docs/engine.md, "Sampler").
  static SamplingParams thinking_general();  // T 1.0, top_p 0.95, top_k 20, min_p 0, presence 1.5
  static SamplingParams thinking_coding();   // T 0.6, top_p 0.95, top_k 20, min_p 0, presence 0
  static SamplingParams instruct();          // T 0.7, top_p 0.8,  top_k 20, min_p 0, presence 1.5
  // "greedy", "thinking", "coding", "instruct" (seed 0); nullopt for any other name.
  static std::optional<SamplingParams> profile(std::string_view name);

  // Throws peregrine::Error for values outside their domain (top_p in (0, 1], min_p in [0, 1],
  // repetition_penalty > 0, top_k >= 0, finite numbers).
  void validate() const;
};

// One surviving candidate of the final distribution.
struct TokenProb {
  int32_t id;
  double p;
};

class Sampler {
 public:
  // n_logits: length of a logits row (the LM head's rows); valid_vocab: ids below it can be
  // produced (the tokenizer's vocabulary size), at most n_logits.
  Sampler(const SamplingParams& params, int32_t n_logits, int32_t valid_vocab);

  const SamplingParams& params() const { return params_; }
  int32_t n_logits() const { return n_logits_; }
  int32_t valid_vocab() const { return valid_vocab_; }

  // Forgets the history and re-seeds. `prompt` tokens count for the repetition penalty only.
  void reset(std::span<const int32_t> prompt = {});
  // Records a generated token (for the penalties). sample() does not call it: the caller
  // decides which ids become part of the sequence.
  void accept(int32_t id);

  // Picks the next id from one row of n_logits() logits.
  int32_t sample(std::span<const float> logits);
  int32_t sample(LogitsSource& logits);

  // The distribution sample() would draw from for these logits (steps 1–7), most likely
  // first (ties: lower id first), probabilities summing to 1. For greedy parameters it is the
  // single argmax with p = 1. The span stays valid until the next call.
  std::span<const TokenProb> distribution(std::span<const float> logits);
  std::span<const TokenProb> distribution(LogitsSource& logits);

  // How many candidates a LogitsSource must select for these parameters to decide the next
  // token (1 for greedy, top_k when it is at most kMaxLogitCandidates), or 0 when every logit
  // matters (top_k off or larger: the whole row is read).
  int64_t candidates_needed() const { return candidates_needed_; }
  // Steps 2–3 for the current history as a list of penalised ids (empty when no penalty is on).
  // Valid until the next reset() / accept().
  LogitPenalties penalties();

 private:
  // Fills candidates_ with the final distribution (steps 1–7; greedy: the argmax with p = 1).
  void choose(LogitsSource& logits);
  void apply_penalties(std::span<const float> logits);
  int32_t argmax() const;
  void build_distribution();
  // candidates_ from the first n of top_ids_ / top_values_ (best first), scaled by 1 / T.
  void take_top(int64_t n);
  // Steps 6–7 and the normalisation over candidates_ (sorted: already best first).
  void finish_distribution(bool sorted);

  SamplingParams params_;
  int32_t n_logits_;
  int32_t valid_vocab_;
  std::mt19937_64 rng_;

  std::vector<float> work_;            // penalised / scaled logits of the valid ids
  std::vector<uint8_t> in_prompt_;     // per id: seen in the prompt
  std::vector<int32_t> output_count_;  // per id: times generated
  std::vector<int32_t> seen_ids_;      // distinct ids with in_prompt_ or output_count_ set
  std::vector<TokenProb> candidates_;  // working set, then the final distribution
  size_t n_candidates_ = 0;
  int64_t candidates_needed_ = 0;
  std::vector<int32_t> top_ids_;       // top-k selections (either path)
  std::vector<float> top_values_;
  std::vector<int32_t> penalty_ids_;   // penalties(): the list handed out
  std::vector<float> penalty_subtract_;
};

}  // namespace peregrine
