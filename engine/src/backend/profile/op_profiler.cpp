#include "backend/profile/op_profiler.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "peregrine/quant.h"

namespace peregrine {
namespace {

// Outstanding device timers beyond which they are read before more are issued (bounds the pool
// when a long run is profiled; one decode step of a 27B model issues about a thousand).
constexpr size_t kMaxPendingTimers = 8192;

// "blk.12.ffn_up.weight" -> "ffn_up", "output.weight" -> "output": the role a weight plays,
// the same for every layer, so the rows of a profile group the layers together.
std::string_view weight_role(std::string_view name) {
  if (name.starts_with("blk.")) {
    const size_t dot = name.find('.', 4);
    if (dot != std::string_view::npos) name.remove_prefix(dot + 1);
  }
  if (name.ends_with(".weight")) name.remove_suffix(7);
  return name.empty() ? std::string_view("?") : name;
}

std::string_view type_name(TensorType t) { return tensor_type_info(t).name; }

std::string matrix_detail(const WeightView& w, int64_t n_tokens) {
  return fmt::format("{} {} {}x{} T={}", weight_role(w.name), type_name(w.type), w.n_in, w.n_out, n_tokens);
}

std::string heads_detail(const HeadView& x) {
  return fmt::format("H={} d={} T={}", x.n_heads, x.head_dim, x.n_tokens);
}

uint64_t floats(int64_t n) { return static_cast<uint64_t>(std::max<int64_t>(n, 0)) * sizeof(float); }

// Bytes at which transfers are grouped in the detail (powers of two), so a profile shows which
// sizes move without one row per distinct byte count.
std::string size_class(uint64_t bytes) {
  uint64_t c = 1;
  while (c < bytes) c <<= 1;
  if (c >= (uint64_t{1} << 20)) return fmt::format("<= {} MiB", c >> 20);
  if (c >= (uint64_t{1} << 10)) return fmt::format("<= {} KiB", c >> 10);
  return fmt::format("<= {} B", c);
}

}  // namespace

ProfilingBackend::ProfilingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {
  // One probe decides the method for the whole profile; the timer is kept for the pool.
  if (auto probe = inner_->make_op_timer()) {
    device_timing_ = true;
    timers_.push_back(std::move(probe));
  }
}

ProfilingBackend::~ProfilingBackend() = default;

size_t ProfilingBackend::row_index(std::string_view op, std::string detail) {
  std::string key = fmt::format("{}\x1f{}", op, detail);
  if (auto it = row_of_key_.find(key); it != row_of_key_.end()) return it->second;
  rows_.push_back(OpProfileRow{std::string(op), std::move(detail)});
  row_of_key_.emplace(std::move(key), rows_.size() - 1);
  return rows_.size() - 1;
}

template <class Detail, class Call>
void ProfilingBackend::run(std::string_view op, Detail&& detail, uint64_t bytes, Call&& call) {
  if (!enabled_) {
    call();
    return;
  }
  // The key is built before the clock starts: formatting is profiler cost, not the operation's.
  const size_t row = row_index(op, detail());
  if (device_timing_) {
    if (pending_.size() >= kMaxPendingTimers) resolve_timers();
    const size_t slot = pending_.size();
    if (slot == timers_.size()) timers_.push_back(inner_->make_op_timer());
    OpTimer& timer = *timers_[slot];
    timer.start();
    call();
    timer.stop();
    pending_.push_back(row);
    rows_[row].calls += 1;
    rows_[row].bytes += bytes;
    return;
  }
  inner_->synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  call();
  inner_->synchronize();
  record_host_timed(row, bytes, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
}

void ProfilingBackend::record_host_timed(size_t row, uint64_t bytes, double ms) {
  rows_[row].calls += 1;
  rows_[row].bytes += bytes;
  rows_[row].ms += ms;
}

void ProfilingBackend::resolve_timers() {
  for (size_t i = 0; i < pending_.size(); ++i) rows_[pending_[i]].ms += timers_[i]->elapsed_ms();
  pending_.clear();
}

void ProfilingBackend::clear() {
  pending_.clear();  // their events complete on their own; the timers are reused
  rows_.clear();
  row_of_key_.clear();
}

OpProfile ProfilingBackend::report() {
  resolve_timers();
  OpProfile p;
  p.device_timing = device_timing_;
  p.rows = rows_;
  for (const OpProfileRow& r : p.rows) p.total_ms += r.ms;
  for (OpProfileRow& r : p.rows) r.share = p.total_ms > 0 ? r.ms / p.total_ms : 0.0;
  std::stable_sort(p.rows.begin(), p.rows.end(), [](const OpProfileRow& a, const OpProfileRow& b) { return a.ms > b.ms; });
  return p;
}

std::string format_op_profile(const OpProfile& p, size_t max_rows) {
  std::string out = fmt::format("{:<20} {:<44} {:>6} {:>10} {:>7} {:>9}\n", "op", "detail", "calls", "ms", "share",
                                "GB/s");
  auto line = [&](std::string_view op, std::string_view detail, int64_t calls, double ms, double share, double gbs) {
    const std::string rate = gbs > 0 ? fmt::format("{:9.1f}", gbs) : fmt::format("{:>9}", "-");
    out += fmt::format("{:<20} {:<44} {:>6} {:10.4f} {:6.1f}% {}\n", op, detail, calls, ms, 100.0 * share, rate);
  };
  const size_t shown = max_rows > 0 ? std::min(max_rows, p.rows.size()) : p.rows.size();
  for (size_t i = 0; i < shown; ++i) {
    const OpProfileRow& r = p.rows[i];
    line(r.op, r.detail, r.calls, r.ms, r.share, r.gbs());
  }
  if (shown < p.rows.size()) {
    int64_t calls = 0;
    double ms = 0, share = 0;
    for (size_t i = shown; i < p.rows.size(); ++i) {
      calls += p.rows[i].calls;
      ms += p.rows[i].ms;
      share += p.rows[i].share;
    }
    line("(other)", fmt::format("{} more rows", p.rows.size() - shown), calls, ms, share, 0.0);
  }
  int64_t calls = 0;
  for (const OpProfileRow& r : p.rows) calls += r.calls;
  line("total", p.device_timing ? "device event time" : "host clock around synchronize()", calls, p.total_ms,
       p.total_ms > 0 ? 1.0 : 0.0, 0.0);
  return out;
}

// ---- memory --------------------------------------------------------------------------------

void ProfilingBackend::upload(void* dst, const void* host_src, uint64_t bytes) {
  run("upload", [&] { return size_class(bytes); }, bytes, [&] { inner_->upload(dst, host_src, bytes); });
}
void ProfilingBackend::download(void* host_dst, const void* src, uint64_t bytes) {
  run("download", [&] { return size_class(bytes); }, bytes, [&] { inner_->download(host_dst, src, bytes); });
}
void ProfilingBackend::copy(void* dst, const void* src, uint64_t bytes) {
  run("copy", [&] { return size_class(bytes); }, 2 * bytes, [&] { inner_->copy(dst, src, bytes); });
}
void ProfilingBackend::fill_zero(void* dst, uint64_t bytes) {
  run("fill_zero", [&] { return size_class(bytes); }, bytes, [&] { inner_->fill_zero(dst, bytes); });
}

// ---- operations ----------------------------------------------------------------------------
// Bytes: what the operation must read and write at least (weights, states, caches,
// activations), so GB/s compares with the device's bandwidth; operations whose traffic depends
// on data the profiler does not see (routing) leave it at 0.

void ProfilingBackend::matmul(const WeightView& w, const float* x, float* y, int64_t n_tokens) {
  const uint64_t bytes = static_cast<uint64_t>(w.n_out) * w.row_bytes + floats(n_tokens * (w.n_in + w.n_out));
  run("matmul", [&] { return matrix_detail(w, n_tokens); }, bytes, [&] { inner_->matmul(w, x, y, n_tokens); });
}

void ProfilingBackend::get_rows(const WeightView& table, std::span<const int32_t> tokens, float* out) {
  const int64_t T = static_cast<int64_t>(tokens.size());
  const uint64_t bytes = static_cast<uint64_t>(T) * table.row_bytes + floats(T * table.n_in);
  run("get_rows", [&] { return fmt::format("{} {} T={}", weight_role(table.name), type_name(table.type), T); }, bytes,
      [&] { inner_->get_rows(table, tokens, out); });
}

void ProfilingBackend::rmsnorm(const float* x, const float* w, float* y, int64_t n_rows, int64_t n, float eps) {
  run("rmsnorm", [&] { return fmt::format("n={} rows={}", n, n_rows); }, floats(2 * n_rows * n + (w ? n : 0)),
      [&] { inner_->rmsnorm(x, w, y, n_rows, n, eps); });
}

void ProfilingBackend::rmsnorm_heads(const HeadView& x, const float* w, float eps) {
  run("rmsnorm_heads", [&] { return heads_detail(x); }, floats(2 * x.n_tokens * x.n_heads * x.head_dim + x.head_dim),
      [&] { inner_->rmsnorm_heads(x, w, eps); });
}

void ProfilingBackend::l2norm_heads(const HeadView& x, float eps, float scale) {
  run("l2norm_heads", [&] { return heads_detail(x); }, floats(2 * x.n_tokens * x.n_heads * x.head_dim),
      [&] { inner_->l2norm_heads(x, eps, scale); });
}

void ProfilingBackend::rope(const HeadView& x, std::span<const int32_t> positions, const RopeParams& p) {
  run("rope", [&] { return fmt::format("{} n_rot={}", heads_detail(x), p.n_rot); },
      floats(2 * x.n_tokens * x.n_heads * p.n_rot), [&] { inner_->rope(x, positions, p); });
}

void ProfilingBackend::copy_2d(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t n_rows,
                               int64_t n) {
  run("copy_2d", [&] { return fmt::format("n={} rows={}", n, n_rows); }, floats(2 * n_rows * n),
      [&] { inner_->copy_2d(src, src_stride, dst, dst_stride, n_rows, n); });
}

void ProfilingBackend::add(float* y, const float* x, int64_t n) {
  run("add", [&] { return fmt::format("n={}", n); }, floats(3 * n), [&] { inner_->add(y, x, n); });
}

void ProfilingBackend::swiglu(const float* gate, const float* up, float* y, int64_t n) {
  run("swiglu", [&] { return fmt::format("n={}", n); }, floats(3 * n), [&] { inner_->swiglu(gate, up, y, n); });
}

void ProfilingBackend::mul_sigmoid_heads(const HeadView& x, const HeadView& gate) {
  run("mul_sigmoid_heads", [&] { return heads_detail(x); }, floats(3 * x.n_tokens * x.n_heads * x.head_dim),
      [&] { inner_->mul_sigmoid_heads(x, gate); });
}

void ProfilingBackend::gated_rmsnorm_heads(const HeadView& x, const HeadView& z, const float* w, float eps) {
  run("gated_rmsnorm_heads", [&] { return heads_detail(x); },
      floats(3 * x.n_tokens * x.n_heads * x.head_dim + x.head_dim), [&] { inner_->gated_rmsnorm_heads(x, z, w, eps); });
}

void ProfilingBackend::conv1d_silu(const float* x, int64_t x_stride, int64_t n_tokens, int64_t channels,
                                   const float* w, int64_t kernel, float* state, float* out) {
  // Inputs and outputs, the weights, and the rolling state read and written.
  const uint64_t bytes = floats(2 * n_tokens * channels + channels * kernel + 2 * (kernel - 1) * channels);
  run("conv1d_silu", [&] { return fmt::format("channels={} kernel={} T={}", channels, kernel, n_tokens); }, bytes,
      [&] { inner_->conv1d_silu(x, x_stride, n_tokens, channels, w, kernel, state, out); });
}

void ProfilingBackend::delta_gates(const float* a, int64_t a_stride, const float* b, int64_t b_stride,
                                   const float* dt_bias, const float* a_neg, int64_t n_tokens, int64_t n_v_heads,
                                   float* g, float* beta) {
  run("delta_gates", [&] { return fmt::format("Hv={} T={}", n_v_heads, n_tokens); },
      floats(4 * n_tokens * n_v_heads + 2 * n_v_heads),
      [&] { inner_->delta_gates(a, a_stride, b, b_stride, dt_bias, a_neg, n_tokens, n_v_heads, g, beta); });
}

namespace {

// The recurrent state read and written once per call, plus q, k, v, gates and the output.
uint64_t delta_rule_bytes(const DeltaNetDims& d, int64_t T) {
  const int64_t state = d.n_v_heads * d.head_dim * d.head_dim;
  const int64_t per_token = 2 * d.n_k_heads * d.head_dim + 2 * d.n_v_heads * d.head_dim + 2 * d.n_v_heads;
  return floats(2 * state + T * per_token);
}

std::string delta_rule_detail(const DeltaNetDims& d, int64_t T) {
  return fmt::format("Hk={} Hv={} d={} T={}", d.n_k_heads, d.n_v_heads, d.head_dim, T);
}

}  // namespace

void ProfilingBackend::delta_rule_recurrent(const DeltaNetDims& dims, const HeadView& q, const HeadView& k,
                                            const HeadView& v, const float* g, const float* beta, float* state,
                                            const HeadView& out) {
  run("delta_rule_recurrent", [&] { return delta_rule_detail(dims, q.n_tokens); }, delta_rule_bytes(dims, q.n_tokens),
      [&] { inner_->delta_rule_recurrent(dims, q, k, v, g, beta, state, out); });
}

void ProfilingBackend::delta_rule_chunked(const DeltaNetDims& dims, const HeadView& q, const HeadView& k,
                                          const HeadView& v, const float* g, const float* beta, float* state,
                                          const HeadView& out, int64_t chunk) {
  run("delta_rule_chunked", [&] { return fmt::format("{} chunk={}", delta_rule_detail(dims, q.n_tokens), chunk); },
      delta_rule_bytes(dims, q.n_tokens), [&] { inner_->delta_rule_chunked(dims, q, k, v, g, beta, state, out, chunk); });
}

void ProfilingBackend::kv_store(TensorType type, const float* src, int64_t n_rows, int64_t n, uint8_t* dst) {
  const uint64_t bytes = floats(n_rows * n) + static_cast<uint64_t>(n_rows) * quant::row_bytes(type, n);
  run("kv_store", [&] { return fmt::format("{} n={} rows={}", type_name(type), n, n_rows); }, bytes,
      [&] { inner_->kv_store(type, src, n_rows, n, dst); });
}

void ProfilingBackend::attention(const HeadView& q, const KvView& kv, std::span<const int32_t> positions, float scale,
                                 float* out) {
  // Every query reads K and V rows 0..its position; tokens of one call share the rows, so the
  // cache is read once up to the last position.
  int32_t last = 0;
  for (int32_t p : positions) last = std::max(last, p);
  const uint64_t bytes = 2 * (static_cast<uint64_t>(last) + 1) * kv.row_bytes +
                         floats(2 * q.n_tokens * q.n_heads * q.head_dim);
  run("attention",
      [&] { return fmt::format("{} H={} Hkv={} d={} T={}", type_name(kv.type), q.n_heads, kv.n_kv_heads, q.head_dim,
                               q.n_tokens); },
      bytes, [&] { inner_->attention(q, kv, positions, scale, out); });
}

void ProfilingBackend::moe_route(const float* logits, int64_t n_tokens, int64_t n_expert, int64_t k,
                                 int32_t* expert_ids, float* weights) {
  run("moe_route", [&] { return fmt::format("E={} k={} T={}", n_expert, k, n_tokens); }, floats(n_tokens * n_expert),
      [&] { inner_->moe_route(logits, n_tokens, n_expert, k, expert_ids, weights); });
}

void ProfilingBackend::gather_rows(const float* x, std::span<const int32_t> rows, int64_t n, float* out) {
  const int64_t m = static_cast<int64_t>(rows.size());
  run("gather_rows", [&] { return fmt::format("n={}", n); }, floats(2 * m * n),
      [&] { inner_->gather_rows(x, rows, n, out); });
}

void ProfilingBackend::scatter_add_rows(const float* x, std::span<const int32_t> rows, std::span<const float> scale,
                                        int64_t n, float* y) {
  const int64_t m = static_cast<int64_t>(rows.size());
  run("scatter_add_rows", [&] { return fmt::format("n={}", n); }, floats(3 * m * n),
      [&] { inner_->scatter_add_rows(x, rows, scale, n, y); });
}

void ProfilingBackend::scale_rows_sigmoid(float* x, const float* gate_logit, int64_t n_tokens, int64_t n) {
  run("scale_rows_sigmoid", [&] { return fmt::format("n={} T={}", n, n_tokens); }, floats(2 * n_tokens * n + n_tokens),
      [&] { inner_->scale_rows_sigmoid(x, gate_logit, n_tokens, n); });
}

void ProfilingBackend::moe_route_device(const float* logits, int64_t n_tokens, int64_t n_expert, int64_t k,
                                        int32_t* expert_ids, float* weights) {
  run("moe_route_device", [&] { return fmt::format("E={} k={} T={}", n_expert, k, n_tokens); },
      floats(n_tokens * n_expert), [&] { inner_->moe_route_device(logits, n_tokens, n_expert, k, expert_ids, weights); });
}

// Bytes: every slot's expert counted once (exact when no two tokens of the step share an expert,
// an upper bound otherwise: the ids are in backend memory, the profiler does not read them).
void ProfilingBackend::matmul_experts(const ExpertsView& w, const int32_t* ids, int64_t n_tokens, int64_t k,
                                      const float* x, bool x_per_slot, float* y) {
  const int64_t slots = n_tokens * k;
  const uint64_t bytes = static_cast<uint64_t>(slots * w.rows) * w.stacked.row_bytes +
                         floats((x_per_slot ? slots : n_tokens) * w.stacked.n_in + slots * w.rows);
  run("matmul_experts",
      [&] { return fmt::format("{} {} {}x{} T={} k={}", weight_role(w.stacked.name), type_name(w.stacked.type),
                               w.stacked.n_in, w.rows, n_tokens, k); },
      bytes, [&] { inner_->matmul_experts(w, ids, n_tokens, k, x, x_per_slot, y); });
}

void ProfilingBackend::moe_combine(const float* expert_out, const int32_t* ids, const float* weights, int64_t n_tokens,
                                   int64_t k, int64_t n, float* out) {
  run("moe_combine", [&] { return fmt::format("n={} k={} T={}", n, k, n_tokens); },
      floats(n_tokens * k * (n + 2) + 2 * n_tokens * n),
      [&] { inner_->moe_combine(expert_out, ids, weights, n_tokens, k, n, out); });
}

void ProfilingBackend::penalize_logits(float* row, int64_t n, const LogitPenalties& penalties) {
  const auto m = static_cast<int64_t>(penalties.ids.size());
  run("penalize_logits", [&] { return fmt::format("ids={}", m); }, floats(2 * m) + static_cast<uint64_t>(m) * 8,
      [&] { inner_->penalize_logits(row, n, penalties); });
}

void ProfilingBackend::top_k_rows(const float* x, int64_t n_rows, int64_t row_stride, int64_t n_valid, int64_t k,
                                  int32_t* ids, float* values) {
  run("top_k_rows", [&] { return fmt::format("n={} k={} rows={}", n_valid, k, n_rows); },
      floats(n_rows * n_valid) + static_cast<uint64_t>(n_rows * k) * 8,
      [&] { inner_->top_k_rows(x, n_rows, row_stride, n_valid, k, ids, values); });
}

}  // namespace peregrine
