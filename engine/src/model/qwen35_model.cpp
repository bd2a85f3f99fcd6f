// peregrine::Model: loading, argument checks and splitting inputs into forward steps.
#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "model/memory_budget.h"
#include "model/mtp_file.h"
#include "model/qwen35_forward.h"
#include "model/qwen35_state.h"
#include "model/qwen35_weights.h"
#include "model/sequence_snapshot.h"
#include "peregrine/error.h"
#include "peregrine/gguf.h"
#include "peregrine/log.h"
#include "peregrine/model.h"
#include "peregrine/mtp_limits.h"
#include "peregrine/q8_0_block.h"

namespace peregrine {

namespace {

// The backend the caller gave, else the one the options name.
std::shared_ptr<Backend> given_or_chosen_backend(const ModelOptions& o, std::unique_ptr<Backend> given) {
  if (given) return std::shared_ptr<Backend>(std::move(given));
  return std::shared_ptr<Backend>(make_backend(
      {.kind = o.backend, .n_threads = o.n_threads, .activations = o.activations, .cuda_device = o.cuda_device}));
}

Qwen35Weights bind_and_place(const GgufFile& f, const ModelConfig& c, const ModelOptions& o, const GgufFile* mtp,
                             Backend& backend, const LoadProgressCallback& progress) {
  Qwen35Weights w = Qwen35Weights::bind(f, c, mtp);
  check_memory_budget(f, mtp, c, o, w, backend);
  w.place_on(backend, f, mtp, progress);
  return w;
}

}  // namespace

struct Model::Impl {
  Impl(const GgufFile& f, ModelConfig c, const ModelOptions& o, const GgufFile* mtp, std::unique_ptr<Backend> given,
       const LoadProgressCallback& progress)
      : file(f),
        config(std::move(c)),
        options(o),
        backend(given_or_chosen_backend(o, std::move(given))),
        weights(bind_and_place(f, config, options, mtp, *backend, progress)),
        forward(*backend, config, weights, options),
        fingerprint(combined_fingerprint(f, config, mtp)) {}

  // A separate MTP file's tensor table is part of the model too (snapshots of its KV cache).
  static uint64_t combined_fingerprint(const GgufFile& f, const ModelConfig& c, const GgufFile* mtp) {
    const uint64_t trunk = model_fingerprint(f, c);
    return mtp ? (trunk * 0x100000001b3ULL) ^ model_fingerprint(*mtp, c) : trunk;
  }

  const GgufFile& file;
  ModelConfig config;
  ModelOptions options;
  std::shared_ptr<Backend> backend;  // shared with the sequences, whose states live in its memory
  Qwen35Weights weights;
  Qwen35Forward forward;
  uint64_t fingerprint;

  // ---- logits in backend memory (device backends; backend_logits.h) ----
  // Where a call's `rows` logits rows go: true when they stay in backend memory; otherwise the
  // host vector receives them (a host backend writes there itself; a device backend downloads
  // a long all-logits call step by step rather than hold N · n_vocab floats).
  bool keeps_logits(int64_t rows) const { return !backend->host_memory() && rows <= options.max_batch; }
  void begin_logits(BackendLogits& out, std::vector<float>& host, int64_t rows);
  // A device backend's step writes its `rows` logits rows straight into `out` (row `out_row`
  // when kept, else row 0, then downloaded to host row `out_row` by finish_step).
  void aim_logits(StepOutputs& step, BackendLogits& out, int64_t rows, int64_t out_row, bool keep) const;
  void finish_step(const StepOutputs& step, int64_t T, BackendLogits& out, std::vector<float>& host, int64_t rows,
                   int64_t out_row, bool keep);
  void end_logits(BackendLogits& out, int64_t rows, bool keep);

  // ---- step graphs (Backend::begin_step_capture; docs/cuda.md, "Step graphs") ----
  // Whether a step of T tokens may be recorded as one backend graph: a short step (decode, MTP
  // verify, drafts) whose operations never hand values to the host. A sequence with a tensor
  // observer (it reads inside the step) and host-routed MoE steps run uncaptured.
  bool capturable(const Sequence::Impl& seq, int64_t T) const {
    if (backend->host_memory() || T > kMaxCapturedTokens || seq.observer) return false;
    return !config.is_moe() || (options.moe_routing == MoeRoutingMode::Auto && T <= Qwen35Forward::kBackendRoutedTokens);
  }
  // Steps with one key issue the same operations (only arguments such as positions differ).
  static uint64_t shape_key(bool mtp, int64_t T, const StepOutputs& out, bool checkpoints) {
    return (mtp ? 1u : 0u) | static_cast<uint64_t>(T) << 1 | uint64_t{out.all_logits} << 9 |
           uint64_t{out.backend_logits != nullptr} << 10 | uint64_t{checkpoints} << 11;
  }
  // Runs `step`, captured and submitted as one graph when the backend agrees; an exception inside
  // the step discards the capture (nothing of it ran) and propagates.
  template <class Step>
  void run_step(bool capture, uint64_t key, Step&& step) {
    if (!capture || !backend->begin_step_capture(key)) {
      step();
      return;
    }
    try {
      step();
    } catch (...) {
      backend->abort_step_capture();
      throw;
    }
    backend->end_step_capture();
  }
  static constexpr int64_t kMaxCapturedTokens = kMaxVerifyTokens;
  static_assert(kMaxCapturedTokens < (1 << 8), "shape_key keeps T in bits 1..8");

  BackendArray<float> penalized_row;  // top_logits: a copy of a row with the penalties applied
  std::vector<float> host_row;        // top_logits over a host copy
};

void Model::Impl::begin_logits(BackendLogits& out, std::vector<float>& host, int64_t rows) {
  const int64_t V = config.n_vocab;
  out.n_vocab = V;
  if (keeps_logits(rows)) {
    host.clear();  // filled by Sequence::logits() when asked for
  } else {
    host.resize(rows * V);
  }
  if (backend->host_memory()) return;
  const int64_t capacity = std::min(rows, options.max_batch) * V;  // a step's rows when not kept
  if (out.rows.size() < capacity) out.rows.reset(*backend, capacity);
}

void Model::Impl::aim_logits(StepOutputs& step, BackendLogits& out, int64_t rows, int64_t out_row, bool keep) const {
  if (backend->host_memory() || rows == 0) return;
  step.backend_logits = out.rows.data() + (keep ? out_row * config.n_vocab : 0);
}

void Model::Impl::finish_step(const StepOutputs& step, int64_t T, BackendLogits& out, std::vector<float>& host,
                              int64_t rows, int64_t out_row, bool keep) {
  forward.hand_over(step, T);
  if (keep || rows == 0 || backend->host_memory()) return;
  const int64_t V = config.n_vocab;
  backend->download(host.data() + out_row * V, out.rows.data(), rows * V * sizeof(float));
}

void Model::Impl::end_logits(BackendLogits& out, int64_t rows, bool keep) {
  if (!keep) {
    out.forget();
    return;
  }
  out.call_rows = out.count = rows;
  out.first = 0;
  out.host_stale = true;
}

namespace {

void check_options(const GgufFile& file, const ModelOptions& o) {
  if (o.context_length <= 0 || o.context_length > (int64_t{1} << 24))
    throw Error(fmt::format("{}: context length {} must be in [1, 2^24]", file.display_name(), o.context_length));
  if (o.max_batch <= 0) throw Error(fmt::format("{}: max_batch must be positive", file.display_name()));
  if (o.delta_chunk <= 0) throw Error(fmt::format("{}: delta_chunk must be positive", file.display_name()));
  if (o.kv_type != TensorType::F32 && o.kv_type != TensorType::F16 && o.kv_type != TensorType::Q8_0)
    throw Error(fmt::format("{}: KV cache type {} is not supported (f32, f16, q8_0)", file.display_name(),
                            tensor_type_info(o.kv_type).name));
}

// The forward pass relies on these; ModelConfig::from_gguf validates the metadata, this guards the
// arithmetic (head grouping, rope pairs) against a config built some other way.
void check_config(const GgufFile& file, const ModelConfig& c, const ModelOptions& options) {
  auto fail = [&](const std::string& what) {
    throw Error(fmt::format("{}: unsupported configuration: {}", file.display_name(), what));
  };
  if (c.n_layer <= 0 || c.n_embd <= 0 || c.n_vocab <= 0) fail("empty model");
  if (c.n_head <= 0 || c.n_head_kv <= 0 || c.n_head % c.n_head_kv != 0)
    fail(fmt::format("{} attention heads do not group over {} KV heads", c.n_head, c.n_head_kv));
  if (c.n_rot <= 0 || c.n_rot % 2 != 0 || c.n_rot > c.head_dim)
    fail(fmt::format("rope dimension {} for head dim {}", c.n_rot, c.head_dim));
  if (c.ssm_group_count <= 0 || c.ssm_time_step_rank % c.ssm_group_count != 0)
    fail(fmt::format("{} delta-net value heads over {} key heads", c.ssm_time_step_rank, c.ssm_group_count));
  if (c.ssm_inner_size != c.ssm_time_step_rank * c.ssm_state_size)
    fail(fmt::format("ssm.inner_size {} != value heads × state size", c.ssm_inner_size));
  if (c.ssm_conv_kernel < 1) fail("conv kernel < 1");
  if (c.n_full_attention_layers() > 0 || c.has_mtp()) {
    // A Q8_0 block must not straddle two heads: the attention reads one head's row at a time.
    if (options.kv_type == TensorType::Q8_0 && c.head_dim % kQ8_0BlockValues != 0)
      fail(fmt::format("q8_0 KV cache with head dim {} (not a multiple of {})", c.head_dim, kQ8_0BlockValues));
  }
  if (c.is_moe() && (c.n_expert <= 0 || c.n_expert_used <= 0 || c.n_expert_used > c.n_expert))
    fail(fmt::format("{} of {} experts per token", c.n_expert_used, c.n_expert));
}

void check_span(const Sequence::Impl& seq, std::string_view what, int64_t start, int64_t n) {
  if (n <= 0) throw Error(fmt::format("{}: no tokens to evaluate", what));
  if (start < 0 || start + n > seq.n_ctx)
    throw Error(fmt::format("{}: positions [{}, {}) do not fit the context of {}", what, start, start + n, seq.n_ctx));
}

}  // namespace

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

std::unique_ptr<Model> Model::load(const GgufFile& file, const ModelOptions& options, const GgufFile* mtp_file,
                                   std::unique_ptr<Backend> backend, const LoadProgressCallback& progress) {
  check_options(file, options);
  ModelConfig config = ModelConfig::from_gguf(file);
  if (mtp_file && config.has_mtp()) {
    log::get("model")->info("{}: has its own MTP block; {} is not used", file.display_name(),
                            mtp_file->display_name());
    mtp_file = nullptr;
  }
  if (mtp_file) config = attach_mtp_config(config, file, *mtp_file);
  check_config(file, config, options);
  auto model = std::unique_ptr<Model>(new Model(std::make_unique<Impl>(file, std::move(config), options, mtp_file, std::move(backend), progress)));
  const ModelConfig& c = model->config();
  const std::string mtp_note =
      !c.has_mtp() ? "" : mtp_file ? fmt::format(", MTP head from {}", mtp_file->display_name()) : ", MTP head";
  log::get("model")->info("{}: {} with {} layers, n_embd {}, vocab {}{}, context {}, KV cache {}, backend {}, "
                          "fingerprint {:016x}",
                          file.display_name(), c.arch_name, c.n_layer, c.n_embd, c.n_vocab,
                          mtp_note, options.context_length, tensor_type_info(options.kv_type).name,
                          model->backend().name(), model->fingerprint());
  return model;
}

const ModelConfig& Model::config() const { return impl_->config; }
const ModelOptions& Model::options() const { return impl_->options; }
Backend& Model::backend() { return *impl_->backend; }

Sequence Model::new_sequence() const {
  const ModelOptions& o = impl_->options;
  Sequence seq(std::make_unique<Sequence::Impl>(impl_->backend, impl_->config, o.context_length, o.kv_type));
  const SequenceMemory m = seq.memory();
  constexpr double kMiB = 1024.0 * 1024.0;
  log::get("model")->info("sequence: context {}, {:.2f} MiB = KV ({}) {:.2f} + conv {:.2f} + recurrent {:.2f} + MTP KV {:.2f}",
                          o.context_length, m.total() / kMiB, tensor_type_info(o.kv_type).name, m.kv_bytes / kMiB,
                          m.conv_bytes / kMiB, m.recurrent_bytes / kMiB, m.mtp_kv_bytes / kMiB);
  return seq;
}

uint64_t Model::fingerprint() const { return impl_->fingerprint; }

void Model::snapshot(const Sequence& seq, std::vector<uint8_t>& out) const {
  seq.logits();  // the snapshot holds the last logits row: on the host now, if still on the backend
  write_snapshot(sequence_state(seq), impl_->config, impl_->fingerprint, out);
}

std::vector<uint8_t> Model::snapshot(const Sequence& seq) const {
  std::vector<uint8_t> out;
  snapshot(seq, out);
  return out;
}

void Model::restore(Sequence& sequence, std::span<const uint8_t> bytes) const {
  Sequence::Impl& seq = sequence_state(sequence);
  read_snapshot(seq, impl_->config, impl_->fingerprint, bytes, impl_->file.display_name());
  seq.backend_logits.forget();  // the restored row is on the host only
  seq.backend_mtp_logits.forget();
  seq.checkpoint_count = 0;  // the delta-net checkpoints describe the old state
  log::get("model")->debug("restored a {}-byte snapshot: position {}, MTP position {}", bytes.size(), seq.n_past,
                           seq.mtp_n_past);
}

std::span<const float> Model::evaluate(Sequence& sequence, std::span<const int32_t> tokens, int64_t start,
                                       LogitsFor logits) {
  evaluate_lazy(sequence, tokens, start, logits);
  return sequence.logits();
}

void Model::evaluate_lazy(Sequence& sequence, std::span<const int32_t> tokens, int64_t start, LogitsFor logits) {
  Sequence::Impl& seq = sequence_state(sequence);
  const bool want_all_logits = logits == LogitsFor::EveryToken;
  const ModelConfig& c = impl_->config;
  const int64_t N = static_cast<int64_t>(tokens.size()), n = c.n_embd;
  check_span(seq, "evaluate", start, N);
  if (start != seq.n_past)
    throw Error(fmt::format("evaluate: start {} must equal the sequence's position {} (delta-net state only "
                            "moves forward)", start, seq.n_past));

  seq.hidden.resize(N * n);
  const int64_t rows = want_all_logits ? N : 1;
  const bool device = !impl_->backend->host_memory(), keep = impl_->keeps_logits(rows);
  impl_->begin_logits(seq.backend_logits, seq.logits, rows);
  const int64_t B = impl_->options.max_batch;
  // Checkpoints only for a call that fits one step and the slots; any other call invalidates them.
  seq.record_checkpoints = seq.checkpoint_capacity > 0 && N <= seq.checkpoint_capacity && N <= B;
  seq.checkpoint_start = start;
  seq.checkpoint_count = 0;
  seq.checkpoint_tokens = N;
  seq.checkpoint_outputs_saved = false;
  for (int64_t i = 0; i < N; i += B) {
    const int64_t T = std::min(B, N - i);
    const bool last = i + T == N;
    const int64_t step_rows = want_all_logits ? T : (last ? 1 : 0), out_row = want_all_logits ? i : 0;
    StepOutputs out;
    out.hidden = seq.hidden.data() + i * n;
    out.all_logits = want_all_logits;
    if (!device) out.logits = step_rows > 0 ? seq.logits.data() + out_row * c.n_vocab : nullptr;
    impl_->aim_logits(out, seq.backend_logits, step_rows, out_row, keep);
    const auto part = tokens.subspan(i, T);
    impl_->run_step(impl_->capturable(seq, T), Impl::shape_key(false, T, out, seq.record_checkpoints),
                    [&] { impl_->forward.trunk_step(seq, part, start + i, out); });
    impl_->finish_step(out, T, seq.backend_logits, seq.logits, step_rows, out_row, keep);
    seq.n_past = start + i + T;
  }
  impl_->end_logits(seq.backend_logits, rows, keep);
  if (seq.record_checkpoints) seq.checkpoint_count = N;
  seq.record_checkpoints = false;
}

void Model::rollback(Sequence& sequence, int64_t n_past) const {
  Sequence::Impl& seq = sequence_state(sequence);
  const int64_t first = seq.checkpoint_start + 1, last = seq.checkpoint_start + seq.checkpoint_count;
  if (seq.checkpoint_count == 0 || n_past < first || n_past > last || last != seq.n_past)
    throw Error(fmt::format("rollback: position {} is outside the checkpointed positions [{}, {}] of the last "
                            "evaluate (sequence at {}, checkpoint capacity {})",
                            n_past, first, last, seq.n_past, seq.checkpoint_capacity));
  const bool moves = n_past != seq.n_past;
  seq.rollback(n_past, impl_->config.n_vocab, impl_->config.n_embd);
  BackendLogits& kept = seq.backend_logits;
  if (!moves || kept.call_rows == 0) return;
  // The logits rows of the checkpointed call are still in backend memory: the current row becomes
  // that of token n_past − 1, or none when the call kept only its last row (as on the host).
  if (kept.call_rows == seq.checkpoint_tokens) {
    kept.first = n_past - seq.checkpoint_start - 1;
    kept.count = 1;
    kept.host_stale = true;
  } else {
    kept.first = kept.count = 0;
    kept.host_stale = false;
  }
}

std::span<const float> Model::evaluate_mtp(Sequence& sequence, std::span<const int32_t> tokens,
                                           std::span<const float> hidden_rows, int64_t start, LogitsFor logits) {
  evaluate_mtp_lazy(sequence, tokens, hidden_rows, start, logits);
  return sequence.mtp_logits();
}

void Model::evaluate_mtp_lazy(Sequence& sequence, std::span<const int32_t> tokens, std::span<const float> hidden_rows,
                              int64_t start, LogitsFor logits) {
  Sequence::Impl& seq = sequence_state(sequence);
  const bool want_all_logits = logits == LogitsFor::EveryToken;
  const ModelConfig& c = impl_->config;
  const int64_t N = static_cast<int64_t>(tokens.size()), n = c.n_embd;
  if (!c.has_mtp()) throw Error(fmt::format("{}: the model has no MTP (nextn) block", impl_->file.display_name()));
  check_span(seq, "evaluate_mtp", start, N);
  if (static_cast<int64_t>(hidden_rows.size()) != N * n)
    throw Error(fmt::format("evaluate_mtp: {} hidden values for {} tokens, expected {}", hidden_rows.size(), N, N * n));
  if (start > seq.mtp_n_past)
    throw Error(fmt::format("evaluate_mtp: start {} is past the head's cache fill {}", start, seq.mtp_n_past));

  seq.mtp_hidden.resize(N * n);
  const int64_t rows = want_all_logits ? N : 1;
  const bool device = !impl_->backend->host_memory(), keep = impl_->keeps_logits(rows);
  impl_->begin_logits(seq.backend_mtp_logits, seq.mtp_logits, rows);
  const int64_t B = impl_->options.max_batch;
  for (int64_t i = 0; i < N; i += B) {
    const int64_t T = std::min(B, N - i);
    const bool last = i + T == N;
    const int64_t step_rows = want_all_logits ? T : (last ? 1 : 0), out_row = want_all_logits ? i : 0;
    StepOutputs out;
    out.hidden = seq.mtp_hidden.data() + i * n;
    out.all_logits = want_all_logits;
    if (!device) out.logits = step_rows > 0 ? seq.mtp_logits.data() + out_row * c.n_vocab : nullptr;
    impl_->aim_logits(out, seq.backend_mtp_logits, step_rows, out_row, keep);
    const auto part = tokens.subspan(i, T);
    impl_->run_step(impl_->capturable(seq, T), Impl::shape_key(true, T, out, false), [&] {
      impl_->forward.mtp_step(seq, part, hidden_rows.data() + i * n, start + i, out);
    });
    impl_->finish_step(out, T, seq.backend_mtp_logits, seq.mtp_logits, step_rows, out_row, keep);
    seq.mtp_n_past = start + i + T;
  }
  impl_->end_logits(seq.backend_mtp_logits, rows, keep);
}

void Model::top_logits(Sequence& sequence, LogitRows which, int64_t first_row, int64_t n_rows, int64_t k,
                       int64_t n_valid, const LogitPenalties& penalties, int32_t* ids, float* values) {
  Sequence::Impl& seq = sequence_state(sequence);
  const int64_t V = impl_->config.n_vocab;
  if (k < 1 || k > kMaxLogitCandidates || n_valid < 1 || n_valid > V || n_rows < 1 || first_row < 0)
    throw Error(fmt::format("top_logits: {} candidates of rows [{}, +{}) over {} ids (supported: k in 1..{}, ids "
                            "in 1..{})", k, first_row, n_rows, n_valid, kMaxLogitCandidates, V));
  const bool mtp = which == LogitRows::Mtp;
  BackendLogits& kept = mtp ? seq.backend_mtp_logits : seq.backend_logits;
  const std::vector<float>& host = mtp ? seq.mtp_logits : seq.logits;
  const int64_t available = kept.count > 0 ? kept.count : static_cast<int64_t>(host.size()) / V;
  if (first_row + n_rows > available)
    throw Error(fmt::format("top_logits: rows [{}, {}) asked for, the last {} call kept {}", first_row,
                            first_row + n_rows, mtp ? "evaluate_mtp" : "evaluate", available));
  Backend& be = *impl_->backend;
  const float* rows = nullptr;
  if (kept.count > 0) rows = kept.rows.data() + (kept.first + first_row) * V;
  else if (be.host_memory()) rows = host.data() + first_row * V;  // a host backend's memory is the host's
  if (!rows) {
    // Only a host copy (a restored snapshot, a long all-logits call): the host reference.
    impl_->host_row.resize(V);
    for (int64_t r = 0; r < n_rows; ++r) {
      std::copy_n(host.data() + (first_row + r) * V, V, impl_->host_row.data());
      apply_logit_penalties(impl_->host_row.data(), penalties);
      select_top_k(impl_->host_row.data(), n_valid, k, ids + r * k, values + r * k);
    }
    return;
  }
  if (penalties.empty()) {
    be.top_k_rows(rows, n_rows, V, n_valid, k, ids, values);
    return;
  }
  // Penalties apply to a copy: the sequence's logits stay what evaluate produced.
  if (impl_->penalized_row.size() < V) impl_->penalized_row.reset(be, V);
  for (int64_t r = 0; r < n_rows; ++r) {
    be.copy(impl_->penalized_row.data(), rows + r * V, V * sizeof(float));
    be.penalize_logits(impl_->penalized_row.data(), V, penalties);
    be.top_k_rows(impl_->penalized_row.data(), 1, V, n_valid, k, ids + r * k, values + r * k);
  }
}

}  // namespace peregrine
