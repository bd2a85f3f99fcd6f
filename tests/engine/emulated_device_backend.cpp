// EmulatedDeviceBackend: tagged (non-dereferenceable) memory around the CPU backend's ops.
#include "emulated_device_backend.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "peregrine/error.h"
#include "peregrine/log.h"

namespace peregrine::test {
namespace {

constexpr uint64_t kAlignment = 256;  // what Backend::allocate promises

template <class T>
T* tag(T* real) {
  return reinterpret_cast<T*>(reinterpret_cast<uintptr_t>(real) + EmulatedDeviceBackend::kTag);
}

void* untag(const void* p) {
  return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) - EmulatedDeviceBackend::kTag);
}

void raise_peak(std::atomic<uint64_t>& peak, uint64_t value) {
  uint64_t seen = peak.load(std::memory_order_relaxed);
  while (value > seen && !peak.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

}  // namespace

EmulatedDeviceBackend::EmulatedDeviceBackend(std::optional<uint64_t> budget)
    : cpu_(make_cpu_backend(1, ActivationMode::Float)), budget_(budget) {}

EmulatedDeviceBackend::~EmulatedDeviceBackend() {
  // Weights stay until the backend goes (like a device backend); anything else still here leaked.
  for (const auto& [real, bytes] : blocks_) std::free(reinterpret_cast<void*>(real));
}

EmulatedDeviceBackend::Counters EmulatedDeviceBackend::counters() const {
  Counters c;
  c.uploads = uploads_.load();
  c.upload_bytes = upload_bytes_.load();
  c.downloads = downloads_.load();
  c.download_bytes = download_bytes_.load();
  c.copies = copies_.load();
  c.copy_bytes = copy_bytes_.load();
  c.fills = fills_.load();
  c.allocations = allocations_.load();
  c.weight_placements = weight_placements_.load();
  c.weight_bytes = weight_bytes_.load();
  c.ops = ops_.load();
  c.routing_readbacks = routing_readbacks_.load();
  c.candidate_bytes = candidate_bytes_.load();
  c.bytes_in_use = bytes_in_use_.load();
  c.peak_bytes = peak_bytes_.load();
  return c;
}

void EmulatedDeviceBackend::reset_counters() {
  for (auto* a : {&uploads_, &upload_bytes_, &downloads_, &download_bytes_, &copies_, &copy_bytes_, &fills_,
                  &allocations_, &weight_placements_, &weight_bytes_, &ops_, &routing_readbacks_, &candidate_bytes_})
    a->store(0);
}

// ---- argument checks ----

void* EmulatedDeviceBackend::checked_real(const void* p, std::string_view op, std::string_view arg,
                                          bool nullable) const {
  if (p == nullptr) {
    if (nullable) return nullptr;
    throw std::logic_error(fmt::format("emulated device: {}: argument '{}' is null, expected backend memory", op, arg));
  }
  if (!is_tagged(p))
    throw std::logic_error(fmt::format(
        "emulated device: {}: argument '{}' is host memory ({}), expected backend memory from allocate() / "
        "place_weights()",
        op, arg, p));
  const auto real = reinterpret_cast<uintptr_t>(untag(p));
  std::lock_guard lock(blocks_mutex_);
  auto it = blocks_.upper_bound(real);
  // The block starting at or before `real`; one past its end is allowed (an empty view at the end).
  if (it == blocks_.begin() || real > std::prev(it)->first + std::prev(it)->second)
    throw std::logic_error(fmt::format(
        "emulated device: {}: argument '{}' ({}) is tagged but inside no live block (released, or out of range)", op,
        arg, p));
  return reinterpret_cast<void*>(real);
}

template <class T>
T* EmulatedDeviceBackend::device(T* p, std::string_view op, std::string_view arg, bool nullable) const {
  return static_cast<T*>(checked_real(p, op, arg, nullable));
}

HeadView EmulatedDeviceBackend::device(const HeadView& h, std::string_view op, std::string_view arg) const {
  HeadView real = h;
  real.data = device(h.data, op, arg, h.n_tokens == 0);
  return real;
}

WeightView EmulatedDeviceBackend::device(const WeightView& w, std::string_view op, std::string_view arg) const {
  WeightView real = w;
  real.data = device(w.data, op, arg);
  return real;
}

void EmulatedDeviceBackend::host(const void* p, std::string_view op, std::string_view arg) const {
  if (is_tagged(p))
    throw std::logic_error(fmt::format(
        "emulated device: {}: argument '{}' ({}) is backend memory, expected host memory (a span or a host output)",
        op, arg, p));
}

// ---- memory ----

void* EmulatedDeviceBackend::new_block(uint64_t bytes, std::string_view what) {
  const uint64_t rounded = bytes == 0 ? kAlignment : (bytes + kAlignment - 1) / kAlignment * kAlignment;
  const uint64_t in_use = bytes_in_use_.load();
  if (budget_ && in_use + rounded > *budget_)
    throw Error(fmt::format("emulated device: out of memory allocating {} bytes for {} ({} of {} bytes in use)", bytes,
                            what, in_use, *budget_));
  void* real = std::aligned_alloc(kAlignment, rounded);
  if (!real) throw Error(fmt::format("emulated device: host allocation of {} bytes failed", rounded));
  std::memset(real, 0, rounded);
  {
    std::lock_guard lock(blocks_mutex_);
    blocks_.emplace(reinterpret_cast<uintptr_t>(real), rounded);
  }
  raise_peak(peak_bytes_, bytes_in_use_.fetch_add(rounded) + rounded);
  return real;
}

void* EmulatedDeviceBackend::allocate(uint64_t bytes) {
  allocations_.fetch_add(1);
  return tag(new_block(bytes, "allocate"));
}

void EmulatedDeviceBackend::release(void* p) noexcept {
  if (!p) return;
  // A host pointer here is a caller bug too, but release is noexcept: abort loudly.
  if (!is_tagged(p)) {
    log::get("test")->critical("emulated device: release of host pointer {}", p);
    std::abort();
  }
  const auto real = reinterpret_cast<uintptr_t>(untag(p));
  std::lock_guard lock(blocks_mutex_);
  auto it = blocks_.find(real);
  if (it == blocks_.end()) {
    log::get("test")->critical("emulated device: release of {}, which is no live block (double release?)", p);
    std::abort();
  }
  bytes_in_use_.fetch_sub(it->second);
  std::free(reinterpret_cast<void*>(real));
  blocks_.erase(it);
}

void EmulatedDeviceBackend::upload(void* dst, const void* host_src, uint64_t bytes) {
  host(host_src, "upload", "host_src");
  void* real = device(dst, "upload", "dst", bytes == 0);
  uploads_.fetch_add(1);
  upload_bytes_.fetch_add(bytes);
  if (bytes) std::memcpy(real, host_src, bytes);
}

void EmulatedDeviceBackend::download(void* host_dst, const void* src, uint64_t bytes) {
  host(host_dst, "download", "host_dst");
  const void* real = device(src, "download", "src", bytes == 0);
  downloads_.fetch_add(1);
  download_bytes_.fetch_add(bytes);
  if (bytes) std::memcpy(host_dst, real, bytes);
}

void EmulatedDeviceBackend::copy(void* dst, const void* src, uint64_t bytes) {
  void* real_dst = device(dst, "copy", "dst", bytes == 0);
  const void* real_src = device(src, "copy", "src", bytes == 0);
  copies_.fetch_add(1);
  copy_bytes_.fetch_add(bytes);
  if (bytes && real_dst != real_src) std::memmove(real_dst, real_src, bytes);
}

void EmulatedDeviceBackend::fill_zero(void* dst, uint64_t bytes) {
  void* real = device(dst, "fill_zero", "dst", bytes == 0);
  fills_.fetch_add(1);
  if (bytes) std::memset(real, 0, bytes);
}

const uint8_t* EmulatedDeviceBackend::place_weights(const uint8_t* host_data, uint64_t bytes, std::string_view name) {
  host(host_data, "place_weights", name);
  auto* real = static_cast<uint8_t*>(new_block(bytes, name));
  if (bytes) std::memcpy(real, host_data, bytes);
  weight_placements_.fetch_add(1);
  weight_bytes_.fetch_add(bytes);
  return tag(real);
}

std::optional<uint64_t> EmulatedDeviceBackend::free_memory() const {
  if (!budget_) return std::nullopt;
  const uint64_t in_use = bytes_in_use_.load();
  return in_use >= *budget_ ? 0 : *budget_ - in_use;
}

// ---- operations: check, untag, forward ----

void EmulatedDeviceBackend::matmul(const WeightView& w, const float* x, float* y, int64_t n_tokens) {
  count_op();
  cpu_->matmul(device(w, "matmul", "w"), device(x, "matmul", "x"), device(y, "matmul", "y"), n_tokens);
}

void EmulatedDeviceBackend::get_rows(const WeightView& table, std::span<const int32_t> tokens, float* out) {
  count_op();
  host(tokens.data(), "get_rows", "tokens");
  cpu_->get_rows(device(table, "get_rows", "table"), tokens, device(out, "get_rows", "out"));
}

void EmulatedDeviceBackend::rmsnorm(const float* x, const float* w, float* y, int64_t n_rows, int64_t n, float eps) {
  count_op();
  cpu_->rmsnorm(device(x, "rmsnorm", "x"), device(w, "rmsnorm", "w", true), device(y, "rmsnorm", "y"), n_rows, n,
                eps);
}

void EmulatedDeviceBackend::rmsnorm_heads(const HeadView& x, const float* w, float eps) {
  count_op();
  cpu_->rmsnorm_heads(device(x, "rmsnorm_heads", "x"), device(w, "rmsnorm_heads", "w"), eps);
}

void EmulatedDeviceBackend::l2norm_heads(const HeadView& x, float eps, float scale) {
  count_op();
  cpu_->l2norm_heads(device(x, "l2norm_heads", "x"), eps, scale);
}

void EmulatedDeviceBackend::rope(const HeadView& x, std::span<const int32_t> positions, const RopeParams& p) {
  count_op();
  host(positions.data(), "rope", "positions");
  cpu_->rope(device(x, "rope", "x"), positions, p);
}

void EmulatedDeviceBackend::copy_2d(const float* src, int64_t src_stride, float* dst, int64_t dst_stride,
                                    int64_t n_rows, int64_t n) {
  count_op();
  cpu_->copy_2d(device(src, "copy_2d", "src"), src_stride, device(dst, "copy_2d", "dst"), dst_stride, n_rows, n);
}

void EmulatedDeviceBackend::add(float* y, const float* x, int64_t n) {
  count_op();
  cpu_->add(device(y, "add", "y"), device(x, "add", "x"), n);
}

void EmulatedDeviceBackend::swiglu(const float* gate, const float* up, float* y, int64_t n) {
  count_op();
  cpu_->swiglu(device(gate, "swiglu", "gate"), device(up, "swiglu", "up"), device(y, "swiglu", "y"), n);
}

void EmulatedDeviceBackend::mul_sigmoid_heads(const HeadView& x, const HeadView& gate) {
  count_op();
  cpu_->mul_sigmoid_heads(device(x, "mul_sigmoid_heads", "x"), device(gate, "mul_sigmoid_heads", "gate"));
}

void EmulatedDeviceBackend::gated_rmsnorm_heads(const HeadView& x, const HeadView& z, const float* w, float eps) {
  count_op();
  cpu_->gated_rmsnorm_heads(device(x, "gated_rmsnorm_heads", "x"), device(z, "gated_rmsnorm_heads", "z"),
                            device(w, "gated_rmsnorm_heads", "w"), eps);
}

void EmulatedDeviceBackend::conv1d_silu(const float* x, int64_t x_stride, int64_t n_tokens, int64_t channels,
                                        const float* w, int64_t kernel, float* state, float* out) {
  count_op();
  cpu_->conv1d_silu(device(x, "conv1d_silu", "x"), x_stride, n_tokens, channels, device(w, "conv1d_silu", "w"),
                    kernel, device(state, "conv1d_silu", "state"), device(out, "conv1d_silu", "out"));
}

void EmulatedDeviceBackend::delta_gates(const float* a, int64_t a_stride, const float* b, int64_t b_stride,
                                        const float* dt_bias, const float* a_neg, int64_t n_tokens,
                                        int64_t n_v_heads, float* g, float* beta) {
  count_op();
  cpu_->delta_gates(device(a, "delta_gates", "a"), a_stride, device(b, "delta_gates", "b"), b_stride,
                    device(dt_bias, "delta_gates", "dt_bias"), device(a_neg, "delta_gates", "a_neg"), n_tokens,
                    n_v_heads, device(g, "delta_gates", "g"), device(beta, "delta_gates", "beta"));
}

void EmulatedDeviceBackend::delta_rule_recurrent(const DeltaNetDims& dims, const HeadView& q, const HeadView& k,
                                                 const HeadView& v, const float* g, const float* beta, float* state,
                                                 const HeadView& out) {
  count_op();
  constexpr std::string_view op = "delta_rule_recurrent";
  cpu_->delta_rule_recurrent(dims, device(q, op, "q"), device(k, op, "k"), device(v, op, "v"), device(g, op, "g"),
                             device(beta, op, "beta"), device(state, op, "state"), device(out, op, "out"));
}

void EmulatedDeviceBackend::delta_rule_chunked(const DeltaNetDims& dims, const HeadView& q, const HeadView& k,
                                               const HeadView& v, const float* g, const float* beta, float* state,
                                               const HeadView& out, int64_t chunk) {
  count_op();
  constexpr std::string_view op = "delta_rule_chunked";
  cpu_->delta_rule_chunked(dims, device(q, op, "q"), device(k, op, "k"), device(v, op, "v"), device(g, op, "g"),
                           device(beta, op, "beta"), device(state, op, "state"), device(out, op, "out"), chunk);
}

void EmulatedDeviceBackend::kv_store(TensorType type, const float* src, int64_t n_rows, int64_t n, uint8_t* dst) {
  count_op();
  cpu_->kv_store(type, device(src, "kv_store", "src"), n_rows, n, device(dst, "kv_store", "dst"));
}

void EmulatedDeviceBackend::attention(const HeadView& q, const KvView& kv, std::span<const int32_t> positions,
                                      float scale, float* out) {
  count_op();
  host(positions.data(), "attention", "positions");
  KvView real = kv;
  real.k = device(kv.k, "attention", "kv.k");
  real.v = device(kv.v, "attention", "kv.v");
  cpu_->attention(device(q, "attention", "q"), real, positions, scale, device(out, "attention", "out"));
}

void EmulatedDeviceBackend::moe_route(const float* logits, int64_t n_tokens, int64_t n_expert, int64_t k,
                                      int32_t* expert_ids, float* weights) {
  count_op();
  // The router's outputs are host memory by contract: the model groups tokens by expert on the host.
  host(expert_ids, "moe_route", "expert_ids");
  host(weights, "moe_route", "weights");
  routing_readbacks_.fetch_add(1);
  cpu_->moe_route(device(logits, "moe_route", "logits"), n_tokens, n_expert, k, expert_ids, weights);
}

void EmulatedDeviceBackend::gather_rows(const float* x, std::span<const int32_t> rows, int64_t n, float* out) {
  count_op();
  host(rows.data(), "gather_rows", "rows");
  cpu_->gather_rows(device(x, "gather_rows", "x"), rows, n, device(out, "gather_rows", "out"));
}

void EmulatedDeviceBackend::scatter_add_rows(const float* x, std::span<const int32_t> rows,
                                             std::span<const float> scale, int64_t n, float* y) {
  count_op();
  host(rows.data(), "scatter_add_rows", "rows");
  host(scale.data(), "scatter_add_rows", "scale");
  cpu_->scatter_add_rows(device(x, "scatter_add_rows", "x"), rows, scale, n, device(y, "scatter_add_rows", "y"));
}

void EmulatedDeviceBackend::scale_rows_sigmoid(float* x, const float* gate_logit, int64_t n_tokens, int64_t n) {
  count_op();
  cpu_->scale_rows_sigmoid(device(x, "scale_rows_sigmoid", "x"), device(gate_logit, "scale_rows_sigmoid", "gate_logit"),
                           n_tokens, n);
}

void EmulatedDeviceBackend::moe_route_device(const float* logits, int64_t n_tokens, int64_t n_expert, int64_t k,
                                             int32_t* expert_ids, float* weights) {
  count_op();
  cpu_->moe_route_device(device(logits, "moe_route_device", "logits"), n_tokens, n_expert, k,
                         device(expert_ids, "moe_route_device", "expert_ids"),
                         device(weights, "moe_route_device", "weights"));
}

void EmulatedDeviceBackend::matmul_experts(const ExpertsView& w, const int32_t* ids, int64_t n_tokens, int64_t k,
                                           const float* x, bool x_per_slot, float* y) {
  count_op();
  ExpertsView real = w;
  real.stacked = device(w.stacked, "matmul_experts", "w.stacked");
  cpu_->matmul_experts(real, device(ids, "matmul_experts", "ids"), n_tokens, k, device(x, "matmul_experts", "x"),
                       x_per_slot, device(y, "matmul_experts", "y"));
}

void EmulatedDeviceBackend::moe_combine(const float* expert_out, const int32_t* ids, const float* weights,
                                        int64_t n_tokens, int64_t k, int64_t n, float* out) {
  count_op();
  cpu_->moe_combine(device(expert_out, "moe_combine", "expert_out"), device(ids, "moe_combine", "ids"),
                    device(weights, "moe_combine", "weights"), n_tokens, k, n, device(out, "moe_combine", "out"));
}

void EmulatedDeviceBackend::penalize_logits(float* row, int64_t n, const LogitPenalties& penalties) {
  count_op();
  host(penalties.ids.data(), "penalize_logits", "penalties.ids");
  host(penalties.subtract.data(), "penalize_logits", "penalties.subtract");
  cpu_->penalize_logits(device(row, "penalize_logits", "row"), n, penalties);
}

void EmulatedDeviceBackend::top_k_rows(const float* x, int64_t n_rows, int64_t row_stride, int64_t n_valid,
                                       int64_t k, int32_t* ids, float* values) {
  count_op();
  host(ids, "top_k_rows", "ids");
  host(values, "top_k_rows", "values");
  candidate_bytes_.fetch_add(static_cast<uint64_t>(n_rows * k) * (sizeof(int32_t) + sizeof(float)));
  cpu_->top_k_rows(device(x, "top_k_rows", "x"), n_rows, row_stride, n_valid, k, ids, values);
}

}  // namespace peregrine::test
