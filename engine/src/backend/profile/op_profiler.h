// A Backend decorator that times every operation of the backend it wraps: the per-kernel time
// table of `peregrine-cli bench --op-profile` (docs/perf.md).
//
// ProfilingBackend owns the real backend and forwards every operation and memory call to it
// unchanged, so a model on it computes bit for bit what it computes on the inner backend. While
// profiling is enabled each call is timed and summed into a row keyed by the operation and a
// detail string (for a matrix product: the weight's role, type, shape and token count, e.g.
// "ffn_up q4_K 5120x17408 T=1"), together with the bytes the call must move where that is known
// (a matrix product: its weight bytes), so each row has an achieved GB/s.
//
// Timing: when the inner backend offers a timer on its own clock (Backend::make_op_timer, CUDA
// events), each call is bracketed by a timer pair that is read only at report(), so profiling
// does not serialise the stream; an operation's time then also includes any gap in which the
// device waited for the host to issue it. Otherwise each call is timed with the host clock
// between two inner.synchronize() calls: exact on the synchronous CPU backend, launch overhead
// included on a device.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "peregrine/backend.h"

namespace peregrine {

// One row of a profile: all calls of one operation with one detail key.
struct OpProfileRow {
  std::string op;        // the Backend method: "matmul", "attention", "upload", ...
  std::string detail;    // what distinguishes its calls: role, type, shape, token count
  int64_t calls = 0;
  double ms = 0;         // total over the calls
  double share = 0;      // fraction of OpProfile::total_ms
  uint64_t bytes = 0;    // bytes the calls must read and write, summed; 0 where not known
  double gbs() const { return bytes > 0 && ms > 0 ? static_cast<double>(bytes) / (ms * 1e6) : 0.0; }
};

struct OpProfile {
  bool device_timing = false;       // device timers (true) or the host clock around synchronize()
  double total_ms = 0;              // sum of the rows' times
  std::vector<OpProfileRow> rows;   // largest total time first
};

// A fixed-width text table of a profile (one line per row, a header and a total line), for a
// terminal; `max_rows` > 0 keeps only that many rows and sums the rest into one line.
std::string format_op_profile(const OpProfile& profile, size_t max_rows = 0);

class ProfilingBackend final : public Backend {
 public:
  explicit ProfilingBackend(std::unique_ptr<Backend> inner);
  ~ProfilingBackend() override;

  Backend& inner() { return *inner_; }
  // Off at construction: calls are forwarded untimed (and unrecorded) until enabled.
  void set_enabled(bool on) { enabled_ = on; }
  bool enabled() const { return enabled_; }
  bool device_timing() const { return device_timing_; }
  // Forgets everything recorded so far (waits for outstanding device timers first).
  void clear();
  // The rows recorded so far. Waits for the device where timers are outstanding.
  OpProfile report();

  std::string_view name() const override { return inner_->name(); }
  bool host_memory() const override { return inner_->host_memory(); }
  void* allocate(uint64_t bytes) override { return inner_->allocate(bytes); }
  void release(void* p) noexcept override { inner_->release(p); }
  void upload(void* dst, const void* host_src, uint64_t bytes) override;
  void download(void* host_dst, const void* src, uint64_t bytes) override;
  void copy(void* dst, const void* src, uint64_t bytes) override;
  void fill_zero(void* dst, uint64_t bytes) override;
  const uint8_t* place_weights(const uint8_t* host, uint64_t bytes, std::string_view name) override {
    return inner_->place_weights(host, bytes, name);
  }
  void synchronize() override { inner_->synchronize(); }
  std::optional<uint64_t> free_memory() const override { return inner_->free_memory(); }
  std::unique_ptr<OpTimer> make_op_timer() override { return inner_->make_op_timer(); }
  // Step capture (begin_step_capture ...) is deliberately not forwarded: timers and host-clock
  // synchronisation cannot live inside a CUDA graph, so a profiled model runs its steps uncaptured.

  void matmul(const WeightView& w, const float* x, float* y, int64_t n_tokens) override;
  void get_rows(const WeightView& table, std::span<const int32_t> tokens, float* out) override;
  void rmsnorm(const float* x, const float* w, float* y, int64_t n_rows, int64_t n, float eps) override;
  void rmsnorm_heads(const HeadView& x, const float* w, float eps) override;
  void l2norm_heads(const HeadView& x, float eps, float scale) override;
  void rope(const HeadView& x, std::span<const int32_t> positions, const RopeParams& p) override;
  void copy_2d(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t n_rows,
               int64_t n) override;
  void add(float* y, const float* x, int64_t n) override;
  void swiglu(const float* gate, const float* up, float* y, int64_t n) override;
  void mul_sigmoid_heads(const HeadView& x, const HeadView& gate) override;
  void gated_rmsnorm_heads(const HeadView& x, const HeadView& z, const float* w, float eps) override;
  void conv1d_silu(const float* x, int64_t x_stride, int64_t n_tokens, int64_t channels, const float* w,
                   int64_t kernel, float* state, float* out) override;
  void delta_gates(const float* a, int64_t a_stride, const float* b, int64_t b_stride, const float* dt_bias,
                   const float* a_neg, int64_t n_tokens, int64_t n_v_heads, float* g, float* beta) override;
  void delta_rule_recurrent(const DeltaNetDims& dims, const HeadView& q, const HeadView& k, const HeadView& v,
                            const float* g, const float* beta, float* state, const HeadView& out) override;
  void delta_rule_chunked(const DeltaNetDims& dims, const HeadView& q, const HeadView& k, const HeadView& v,
                          const float* g, const float* beta, float* state, const HeadView& out,
                          int64_t chunk) override;
  void kv_store(TensorType type, const float* src, int64_t n_rows, int64_t n, uint8_t* dst) override;
  using Backend::attention;
  void attention(const HeadView& q, const KvView& kv, std::span<const int32_t> positions, float scale,
                 float* out) override;
  void moe_route(const float* logits, int64_t n_tokens, int64_t n_expert, int64_t k, int32_t* expert_ids,
                 float* weights) override;
  void gather_rows(const float* x, std::span<const int32_t> rows, int64_t n, float* out) override;
  void scatter_add_rows(const float* x, std::span<const int32_t> rows, std::span<const float> scale, int64_t n,
                        float* y) override;
  void scale_rows_sigmoid(float* x, const float* gate_logit, int64_t n_tokens, int64_t n) override;
  void moe_route_device(const float* logits, int64_t n_tokens, int64_t n_expert, int64_t k, int32_t* expert_ids,
                        float* weights) override;
  void matmul_experts(const ExpertsView& w, const int32_t* ids, int64_t n_tokens, int64_t k, const float* x,
                      bool x_per_slot, float* y) override;
  void moe_combine(const float* expert_out, const int32_t* ids, const float* weights, int64_t n_tokens, int64_t k,
                   int64_t n, float* out) override;
  void penalize_logits(float* row, int64_t n, const LogitPenalties& penalties) override;
  void top_k_rows(const float* x, int64_t n_rows, int64_t row_stride, int64_t n_valid, int64_t k, int32_t* ids,
                  float* values) override;

 private:
  // Runs `call` on the inner backend; when enabled, times it into the row (op, detail()) and
  // adds `bytes`. `detail` is only evaluated when enabled, so a disabled profiler costs a branch.
  template <class Detail, class Call>
  void run(std::string_view op, Detail&& detail, uint64_t bytes, Call&& call);
  size_t row_index(std::string_view op, std::string detail);
  void record_host_timed(size_t row, uint64_t bytes, double ms);
  // Reads every outstanding device timer into its row.
  void resolve_timers();

  std::unique_ptr<Backend> inner_;
  bool enabled_ = false;
  bool device_timing_ = false;
  std::vector<OpProfileRow> rows_;
  std::unordered_map<std::string, size_t> row_of_key_;
  // Device timers: a pool reused between reports; pending_[i] is the row of timers_[i] for
  // i < pending_.size() (timers started and stopped but not read yet).
  std::vector<std::unique_ptr<OpTimer>> timers_;
  std::vector<size_t> pending_;
};

}  // namespace peregrine
