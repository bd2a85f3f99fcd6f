// A loaded Qwen 3.5 / 3.6 model (`qwen35` dense, `qwen35moe`) and the per-sequence state it
// evaluates tokens against.
//
// The weights stay in the GgufFile's mapping (quantized where the file is), so the GgufFile
// must outlive the Model. A Model is used from one thread at a time (the engine thread);
// its scratch buffers are allocated once at load, sized for `max_batch` tokens per step, so
// decoding does not allocate.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "peregrine/activation_mode.h"
#include "peregrine/backend.h"
#include "peregrine/error.h"
#include "peregrine/model_config.h"
#include "peregrine/tensor_type.h"

namespace peregrine {

class GgufFile;

// How the delta-net layers run a multi-token step. Auto: chunked form for more than one token,
// recurrent form for one token (decode). The other two force one form (tests compare them).
enum class DeltaRuleMode { Auto, Recurrent, Chunked };

// How MoE layers run their routed experts. Auto: steps of up to kMaxVerifyTokens tokens (decode,
// MTP verify, drafts; mtp_limits.h) keep the routing in backend memory (no host round trip per
// layer), longer steps group the tokens per expert on the host. Grouped: always the host-grouped
// path (tests compare them).
enum class MoeRoutingMode { Auto, Grouped };

struct ModelOptions {
  int64_t context_length = 4096;  // positions per sequence (KV cache rows); capped by nothing
  int64_t max_batch = 256;        // tokens per forward step; longer inputs are split into steps
  int n_threads = 1;              // CPU backend threads (matrix products split over rows)
  DeltaRuleMode delta_rule = DeltaRuleMode::Auto;
  int64_t delta_chunk = 64;       // chunk length of the chunked delta rule
  MoeRoutingMode moe_routing = MoeRoutingMode::Auto;
  // Encoding of the attention KV caches (trunk and MTP block): F32, F16 (half the memory, logits
  // within 2e-3 of F32 on the fixtures) or Q8_0 (about a quarter, within 3.2e-2; needs
  // head_dim % 32 == 0).
  // The delta-net conv and recurrent states are always F32. See docs/state.md.
  TensorType kv_type = TensorType::F32;
  // How the CPU backend multiplies quantized weights (activation_mode.h). Float (the default) is
  // the float32 reference the fixture tests compare against; Quantized8 rounds activations to
  // 8 bits like ggml-cpu and runs the AVX2 integer kernels (several times faster; what the CLI
  // uses unless --float-activations). See docs/perf.md.
  ActivationMode activations = ActivationMode::Float;
  // Where the forward pass runs (backend.h). Cpu by default; Auto picks CUDA when this build has
  // it and a device exists. With CUDA the weights are uploaded once at load, and the load refuses
  // (naming the numbers) a model + context that does not fit the device's free memory.
  BackendKind backend = BackendKind::Cpu;
  int cuda_device = 0;
};

// Bytes one Sequence holds for its state, allocated once at Model::new_sequence for the whole
// configured context (outputs of the last call not included: they grow with the batch).
struct SequenceMemory {
  uint64_t kv_bytes = 0;         // trunk full-attention layers, keys + values
  uint64_t conv_bytes = 0;       // delta-net conv states
  uint64_t recurrent_bytes = 0;  // delta-net recurrent states
  uint64_t mtp_kv_bytes = 0;     // the MTP block's own KV cache
  uint64_t total() const { return kv_bytes + conv_bytes + recurrent_bytes + mtp_kv_bytes; }
};

// Why Model::restore refused a snapshot (the message says what mismatched).
enum class SnapshotErrorCode {
  Truncated,      // the buffer is shorter than its header says (or than a header)
  NotASnapshot,   // bad magic
  Version,        // a format version this build does not read
  Corrupt,        // checksum mismatch, trailing bytes, or inconsistent section sizes
  OtherModel,     // taken with another model (fingerprint mismatch)
  KvType,         // taken with another KV cache type
  Context,        // its positions do not fit this sequence's context
};

// Which outputs of a sequence Model::top_logits reads: the trunk's (evaluate) or the MTP head's
// (evaluate_mtp).
enum class LogitRows { Trunk, Mtp };

// Which tokens of an evaluate / evaluate_mtp call get a logits row: the last one only (prefill,
// decoding, drafting) or every one (verifying drafts, scoring a text).
enum class LogitsFor { LastToken, EveryToken };

// Progress of Model::load while it moves the weights into backend memory: bytes placed so far
// and the bytes to place in all. Called with (0, total) before the first tensor, after every
// tensor, and with (total, total) at the end; a host backend (nothing to copy) gets only the two
// ends. Returning false cancels the load: Model::load then throws LoadCancelled.
using LoadProgressCallback = std::function<bool(uint64_t done_bytes, uint64_t total_bytes)>;

// Model::load stopped because its LoadProgressCallback returned false. Everything it had placed
// is freed again (the backend it made or was given is destroyed with it).
class LoadCancelled : public Error {
 public:
  using Error::Error;
};

class SnapshotError : public Error {
 public:
  SnapshotError(SnapshotErrorCode code, const std::string& message) : Error(message), code_(code) {}
  SnapshotErrorCode code() const { return code_; }

 private:
  SnapshotErrorCode code_;
};

// Everything one sequence carries between calls: the KV cache of every full-attention layer,
// each delta-net layer's conv state [kernel-1][channels] and recurrent state [Hv][d][d] (F32),
// the MTP block's own KV cache, and the outputs of the last evaluation. Allocated once.
class Sequence {
 public:
  ~Sequence();
  Sequence(Sequence&&) noexcept;
  Sequence& operator=(Sequence&&) noexcept;

  int64_t context_length() const;
  int64_t n_past() const;      // trunk positions evaluated so far
  int64_t mtp_n_past() const;  // MTP positions evaluated so far (its KV cache fill)
  void reset();                // back to an empty sequence (all states zero)
  TensorType kv_type() const;  // encoding of the KV caches (ModelOptions::kv_type)
  SequenceMemory memory() const;

  // Outputs of the last Model::evaluate: logits [rows][n_vocab] (rows = all tokens or the last
  // one) and the final hidden state after output_norm for every token [n_tokens][n_embd].
  // On a device backend the logits are downloaded by the first logits() / mtp_logits() call
  // after an evaluate (see Model::evaluate_lazy); the spans stay valid until the next call that
  // changes the sequence.
  std::span<const float> logits() const;
  std::span<const float> hidden() const;
  // Outputs of the last Model::evaluate_mtp: logits and the rows after shared_head_norm
  // (what a chained draft feeds back), [n_tokens][n_embd].
  std::span<const float> mtp_logits() const;
  std::span<const float> mtp_hidden() const;

  // Speculative decoding (docs/mtp.md): with a capacity of n > 0 tokens, every Model::evaluate of
  // at most n tokens (and at most max_batch) keeps each delta-net layer's conv and recurrent
  // state after every token of the call — running the delta rule in its recurrent form, token by
  // token, so the arithmetic is that of single-token decoding — and Model::rollback can then
  // return to any position of that call. Allocates n × (conv + recurrent state) once; 0 frees.
  void set_delta_checkpoints(int64_t max_tokens);
  int64_t delta_checkpoints() const;  // the capacity

  struct Impl;  // the state itself (model/qwen35_state.h)

 private:
  friend class Model;
  // The model's code and the tests reach the state through these (model/qwen35_state.h).
  friend Impl& sequence_state(Sequence& seq);
  friend const Impl& sequence_state(const Sequence& seq);
  explicit Sequence(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Model {
 public:
  // Binds every tensor of `file` (which must outlive the model) and checks names, shapes and
  // types against the configuration. Throws peregrine::Error naming the file and tensor.
  // `mtp_file` (which must outlive the model too): a separate MTP-only GGUF (`mtp-<name>.gguf`,
  // docs/mtp.md) whose NextN block becomes the MTP head of a trunk that has none; it is checked
  // against the trunk (architecture, dimensions, block tensors) and refused with an error naming
  // it. Ignored (with a log line) when the trunk has its own MTP block.
  // `backend`: run on this backend instead of the one options.backend names (tests run the
  // model on instrumented backends this way).
  // `progress`: told how far the weight placement is, and may cancel it (LoadProgressCallback).
  static std::unique_ptr<Model> load(const GgufFile& file, const ModelOptions& options = {},
                                     const GgufFile* mtp_file = nullptr, std::unique_ptr<Backend> backend = nullptr,
                                     const LoadProgressCallback& progress = {});
  ~Model();

  const ModelConfig& config() const;
  const ModelOptions& options() const;
  Backend& backend();

  Sequence new_sequence() const;

  // Runs the trunk over `tokens` at positions [start, start + n). `start` must equal
  // seq.n_past() (the delta-net state only moves forward). Returns the logits of every token
  // ([n][n_vocab]) or only of the last one ([1][n_vocab]), as `logits` says. The final hidden
  // rows of every token are in seq.hidden().
  std::span<const float> evaluate(Sequence& seq, std::span<const int32_t> tokens, int64_t start, LogitsFor logits);

  // evaluate without handing the logits to the host: on a device backend they stay in backend
  // memory, where top_logits reads candidates from them, and seq.logits() downloads them only
  // when asked (a host backend writes them to the host as evaluate does). Decoding uses this.
  void evaluate_lazy(Sequence& seq, std::span<const int32_t> tokens, int64_t start, LogitsFor logits);

  // Runs the MTP (NextN) head: row i takes tokens[i] and hidden_rows[i] (the trunk's hidden row
  // of the previous position, or the head's own mtp_hidden row when chaining drafts; zeros at
  // position 0) at position start + i. `start` may be at most seq.mtp_n_past() (rewriting the
  // head's KV cache from there). Returns logits like evaluate; seq.mtp_hidden() has the rows.
  // hidden_rows may be seq.mtp_hidden() itself (chaining a draft).
  std::span<const float> evaluate_mtp(Sequence& seq, std::span<const int32_t> tokens,
                                      std::span<const float> hidden_rows, int64_t start, LogitsFor logits);
  // evaluate_mtp with the logits left where they are (as evaluate_lazy).
  void evaluate_mtp_lazy(Sequence& seq, std::span<const int32_t> tokens, std::span<const float> hidden_rows,
                         int64_t start, LogitsFor logits);

  // Candidates for sampling without the whole rows: for each of the rows [first_row, first_row +
  // n_rows) of the last evaluate (LogitRows::Trunk) or evaluate_mtp (Mtp), with `penalties`
  // applied to a copy of the row first, select_top_k (logit_select.h) over ids < n_valid into
  // ids / values [n_rows][k], 1 <= k <= kMaxLogitCandidates. Runs on the backend where the rows
  // are (only the candidates come back), else on the host copy. Throws for rows that the last
  // call did not keep.
  void top_logits(Sequence& seq, LogitRows which, int64_t first_row, int64_t n_rows, int64_t k, int64_t n_valid,
                  const LogitPenalties& penalties, int32_t* ids, float* values);

  // Moves the sequence back to `n_past`, which must lie inside the last evaluate call made with
  // delta-net checkpoints (Sequence::set_delta_checkpoints): start < n_past <= seq.n_past().
  // The delta-net states become those after token n_past − 1 (copied from the checkpoints, no
  // forward pass), the KV caches are truncated (rows >= n_past are dropped), and logits() /
  // hidden() become the rows of token n_past − 1 (logits empty if the call did not keep all of
  // them). The MTP head's cache is not touched (evaluate_mtp may rewrite it from any position).
  // Throws peregrine::Error when the position is outside the checkpointed range.
  void rollback(Sequence& seq, int64_t n_past) const;

  // Sequence state as a value (docs/state.md). snapshot() serialises everything evaluate needs
  // to continue — positions, KV rows [0, n_past) of every attention layer, the MTP block's KV
  // rows [0, mtp_n_past), every delta-net conv and recurrent state, and the last token's logits
  // and hidden row — behind a versioned header (model fingerprint, positions, KV type, section
  // sizes, CRC32C). Its size grows with the position, not with the context length.
  // restore() loads such a buffer into `seq` (any sequence of this model with a context that
  // holds the positions); afterwards evaluate continues exactly as the snapshotted sequence
  // would have, bit for bit. It throws SnapshotError (saying what mismatched) for a buffer of
  // another model or KV type, a context too small, a truncated or corrupt buffer, or an unknown
  // version, and then leaves `seq` untouched. Neither call allocates beyond the output buffer and
  // the sequence's last-token output rows.
  std::vector<uint8_t> snapshot(const Sequence& seq) const;
  void snapshot(const Sequence& seq, std::vector<uint8_t>& out) const;  // reuses out's capacity
  void restore(Sequence& seq, std::span<const uint8_t> bytes) const;
  // Identifies the model for snapshots: a hash of the configuration and of the tensor table
  // (names, types, shapes, offsets, plus a few bytes sampled from each tensor's data).
  uint64_t fingerprint() const;

  struct Impl;

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace peregrine
