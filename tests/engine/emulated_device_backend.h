// A Backend whose memory the host cannot dereference: the CPU-side proof that the model code
// touches backend memory only through upload / download / copy, as backend.h requires of it.
//
// Every op forwards to a real CPU backend (float32 reference, one thread), so results are
// bit-identical to a model running on the CPU backend. Its memory is ordinary host memory, but
// the pointers it hands out carry a tag (bit 62) that makes them non-canonical x86-64 addresses:
// any host load or store through one faults at once (SIGSEGV), where a real device pointer would
// silently read garbage or crash much later. Ops strip the tag before forwarding.
//
// Each op also checks its arguments: a pointer that must be backend memory but is untagged (a
// host buffer where device memory is required), or a span / host output that is tagged, is a bug
// in the caller and throws std::logic_error naming the op and the argument.
//
// Transfers, allocations and weight placement are counted (thread-safe), so tests can bound the
// host <-> device traffic of a decode step. An optional budget emulates a device's free memory:
// free_memory() reports what is left of it, and allocate() beyond it throws peregrine::Error.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>

#include "peregrine/backend.h"

namespace peregrine::test {

class EmulatedDeviceBackend final : public Backend {
 public:
  // Counts since construction or the last reset_counters() (bytes_in_use / peak: since construction).
  struct Counters {
    uint64_t uploads = 0, upload_bytes = 0;
    uint64_t downloads = 0, download_bytes = 0;
    uint64_t copies = 0, copy_bytes = 0;
    uint64_t fills = 0;
    uint64_t allocations = 0;
    uint64_t weight_placements = 0, weight_bytes = 0;
    uint64_t ops = 0;          // compute operations forwarded to the CPU backend
    // moe_route calls: each hands its routing to host memory, which on a real device is a
    // synchronous device -> host copy like a download (counted here, not in downloads).
    uint64_t routing_readbacks = 0;
    // top_k_rows hands its candidates (ids and values) to host memory, a device -> host copy on
    // a real device too: the bytes are counted here (not in download_bytes).
    uint64_t candidate_bytes = 0;
    uint64_t bytes_in_use = 0; // allocations and placed weights not yet released
    uint64_t peak_bytes = 0;
  };

  // `budget`: bytes of emulated device memory (nullopt: unbounded, free_memory() unknown).
  explicit EmulatedDeviceBackend(std::optional<uint64_t> budget = std::nullopt);
  ~EmulatedDeviceBackend() override;

  // The tag that makes a pointer non-canonical. Exposed for tests of the backend itself.
  static constexpr uintptr_t kTag = uintptr_t{1} << 62;
  static bool is_tagged(const void* p) { return (reinterpret_cast<uintptr_t>(p) & kTag) != 0; }

  Counters counters() const;
  void reset_counters();  // transfer / op counts back to zero; bytes_in_use and peak stay

  std::string_view name() const override { return "emulated-device"; }
  bool host_memory() const override { return false; }
  void* allocate(uint64_t bytes) override;
  void release(void* p) noexcept override;
  void upload(void* dst, const void* host_src, uint64_t bytes) override;
  void download(void* host_dst, const void* src, uint64_t bytes) override;
  void copy(void* dst, const void* src, uint64_t bytes) override;
  void fill_zero(void* dst, uint64_t bytes) override;
  const uint8_t* place_weights(const uint8_t* host, uint64_t bytes, std::string_view name) override;
  std::optional<uint64_t> free_memory() const override;

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
  void penalize_logits(float* row, int64_t n, const LogitPenalties& penalties) override;
  void top_k_rows(const float* x, int64_t n_rows, int64_t row_stride, int64_t n_valid, int64_t k, int32_t* ids,
                  float* values) override;
  void moe_route_device(const float* logits, int64_t n_tokens, int64_t n_expert, int64_t k, int32_t* expert_ids,
                        float* weights) override;
  void matmul_experts(const ExpertsView& w, const int32_t* ids, int64_t n_tokens, int64_t k, const float* x,
                      bool x_per_slot, float* y) override;
  void moe_combine(const float* expert_out, const int32_t* ids, const float* weights, int64_t n_tokens, int64_t k,
                   int64_t n, float* out) override;

 private:
  // The real address behind a tagged pointer that must be backend memory inside one of this
  // backend's blocks; throws std::logic_error naming `op` and `arg` otherwise. `nullable`: null
  // passes through (an optional argument left out).
  template <class T>
  T* device(T* p, std::string_view op, std::string_view arg, bool nullable = false) const;
  HeadView device(const HeadView& h, std::string_view op, std::string_view arg) const;
  WeightView device(const WeightView& w, std::string_view op, std::string_view arg) const;
  // Host memory expected (spans, moe_route's outputs): throws when the pointer is tagged.
  void host(const void* p, std::string_view op, std::string_view arg) const;
  void* checked_real(const void* p, std::string_view op, std::string_view arg, bool nullable) const;
  void* new_block(uint64_t bytes, std::string_view what);
  void count_op() { ops_.fetch_add(1, std::memory_order_relaxed); }

  std::unique_ptr<Backend> cpu_;
  std::optional<uint64_t> budget_;

  mutable std::mutex blocks_mutex_;
  std::map<uintptr_t, uint64_t> blocks_;  // real start address -> size in bytes (allocations and weights)

  std::atomic<uint64_t> uploads_{0}, upload_bytes_{0}, downloads_{0}, download_bytes_{0};
  std::atomic<uint64_t> copies_{0}, copy_bytes_{0}, fills_{0}, allocations_{0};
  std::atomic<uint64_t> candidate_bytes_{0};
  std::atomic<uint64_t> weight_placements_{0}, weight_bytes_{0}, ops_{0};
  std::atomic<uint64_t> routing_readbacks_{0};
  std::atomic<uint64_t> bytes_in_use_{0}, peak_bytes_{0};
};

}  // namespace peregrine::test
