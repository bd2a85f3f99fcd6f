// The CPU implementation of the Backend operations.
//
// Matrix products have two modes (activation_mode.h). Float, the float32 reference: weights are
// dequantized one row at a time into per-thread scratch and multiplied with float dot products
// (no activation rounding). Quantized8, like ggml-cpu: each activation row is rounded once per
// product to the weight type's 8-bit block format, and the AVX2 integer kernels
// (kernels/vec_dot.h) run over each thread's range of output rows. Scratch buffers only grow, so
// after the first call of a given size nothing is allocated.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "backend/cpu/thread_pool.h"
#include "peregrine/backend.h"

namespace peregrine::cpu {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int n_threads, ActivationMode activations = ActivationMode::Float);

  std::string_view name() const override { return "cpu"; }

  // Host memory: operations read and write it directly; weights stay in the file mapping.
  void* allocate(uint64_t bytes) override;
  void release(void* p) noexcept override;
  void upload(void* dst, const void* host_src, uint64_t bytes) override;
  void download(void* host_dst, const void* src, uint64_t bytes) override;
  void copy(void* dst, const void* src, uint64_t bytes) override;
  void fill_zero(void* dst, uint64_t bytes) override;
  const uint8_t* place_weights(const uint8_t* host, uint64_t bytes, std::string_view name) override;
  std::optional<uint64_t> free_memory() const override;  // the host's MemAvailable

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

  void conv1d_silu(const float* x, int64_t x_stride, int64_t n_tokens, int64_t channels,
                   const float* w, int64_t kernel, float* state, float* out) override;
  void delta_gates(const float* a, int64_t a_stride, const float* b, int64_t b_stride,
                   const float* dt_bias, const float* a_neg, int64_t n_tokens, int64_t n_v_heads,
                   float* g, float* beta) override;
  void delta_rule_recurrent(const DeltaNetDims& dims, const HeadView& q, const HeadView& k,
                            const HeadView& v, const float* g, const float* beta, float* state,
                            const HeadView& out) override;
  void delta_rule_chunked(const DeltaNetDims& dims, const HeadView& q, const HeadView& k,
                          const HeadView& v, const float* g, const float* beta, float* state,
                          const HeadView& out, int64_t chunk) override;

  void kv_store(TensorType type, const float* src, int64_t n_rows, int64_t n, uint8_t* dst) override;
  using Backend::attention;  // the dense-float32 convenience overload
  void attention(const HeadView& q, const KvView& kv, std::span<const int32_t> positions, float scale,
                 float* out) override;

  void moe_route(const float* logits, int64_t n_tokens, int64_t n_expert, int64_t k,
                 int32_t* expert_ids, float* weights) override;
  void gather_rows(const float* x, std::span<const int32_t> rows, int64_t n, float* out) override;
  void scatter_add_rows(const float* x, std::span<const int32_t> rows, std::span<const float> scale, int64_t n,
                        float* y) override;
  void scale_rows_sigmoid(float* x, const float* gate_logit, int64_t n_tokens, int64_t n) override;
  // cpu_moe.cpp: backend memory is host memory, so the routing is read where it was written.
  void moe_route_device(const float* logits, int64_t n_tokens, int64_t n_expert, int64_t k, int32_t* expert_ids,
                        float* weights) override;
  void matmul_experts(const ExpertsView& w, const int32_t* ids, int64_t n_tokens, int64_t k, const float* x,
                      bool x_per_slot, float* y) override;
  void moe_combine(const float* expert_out, const int32_t* ids, const float* weights, int64_t n_tokens, int64_t k,
                   int64_t n, float* out) override;
  // cpu_sampling.cpp: the host reference itself (logit_select.h), rows split over the threads.
  void penalize_logits(float* row, int64_t n, const LogitPenalties& penalties) override;
  void top_k_rows(const float* x, int64_t n_rows, int64_t row_stride, int64_t n_valid, int64_t k, int32_t* ids,
                  float* values) override;

 private:
  // Scratch of one worker thread. Grown on the calling thread before a parallel section, in
  // doubling steps, so steady-state decoding does not allocate.
  struct WorkerScratch {
    std::vector<float> row;     // a dequantized weight row
    std::vector<float> scores;  // attention scores over the cache
    std::vector<float> delta;   // chunked delta-rule workspace
  };
  enum class Buf { Row, Scores, Delta };
  // The chunked delta rule for value heads [j0, j1), with `buf` as workspace.
  void chunked_heads(const DeltaNetDims& dims, const HeadView& q, const HeadView& k, const HeadView& v,
                     const float* g, const float* beta, float* state, const HeadView& out, int64_t chunk,
                     int64_t j0, int64_t j1, float* buf);
  void reserve_workers(Buf which, int64_t n);
  // The two matmul paths (see the header comment); matmul picks one per weight type.
  void matmul_float(const WeightView& w, const float* x, float* y, int64_t n_tokens);
  void matmul_quantized(const WeightView& w, const float* x, float* y, int64_t n_tokens);
  static float* grow(std::vector<float>& buf, int64_t n);

  ActivationMode activations_;
  ThreadPool pool_;
  std::vector<WorkerScratch> workers_;
  std::vector<uint8_t> act_scratch_;  // Quantized8: the rounded activation rows of one matmul
  std::vector<float> rope_scratch_;
  std::vector<float> route_scratch_;
  // matmul_experts: the slots of one expert, and its gathered input / output rows.
  std::vector<int64_t> expert_slots_;
  std::vector<float> expert_x_scratch_, expert_y_scratch_;
};

// Shared scalar helpers (kept identical across kernels so tests can rely on them).
inline float silu(float x) { return x / (1.0f + std::exp(-x)); }
inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
// softplus with the usual linear cut-off above 20 (as llama.cpp, vLLM and HF do).
inline float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }
// Float dot product with 8 independent partial sums (vectorisable, deterministic order).
float dot(const float* a, const float* b, int64_t n);

}  // namespace peregrine::cpu
