// The CUDA implementation of the Backend operations (docs/cuda.md).
//
// Everything runs on one stream of one device, in issue order; the host waits only in
// download(), synchronize() and where an operation must hand values back to the host
// (moe_route). Weights are uploaded once in their GGUF encoding (place_weights); quantized matrix
// products decode blocks on the fly (decode: a GEMV family serving 1..9 activation rows per weight
// pass, in versions chosen per type: cuda_gemv.h; longer batches: tiles dequantized to float32
// and multiplied with cuBLAS on TF32 tensor cores). Scratch (device and
// pinned host staging) only grows, so steady-state decoding does not allocate.
//
// The methods are implemented in one file per family; every file of this folder:
//   cuda_backend.h            this class and DeviceInfo
//   cuda_backend.cu           device setup, memory, weight placement, scratch, staging, entry points
//   cuda_device_log.cpp       the start-up log lines and the settings read from the environment
//   cuda_elementwise.cu       norms, rope, copies, SwiGLU, gates, conv1d, KV stores, MoE helpers, get_rows
//   cuda_matmul.cu            matmul: GEMV v1 and the cuBLAS path for longer batches
//   cuda_gemv.h               the GEMV versions v1/v2/v3 (plain C++: tests and the benchmark call them)
//   cuda_gemv_select.cpp      which GEMV version matmul runs per type, and its log line
//   cuda_gemv_direct.cu       GEMV v2: float activations, weights loaded straight into registers
//   cuda_gemv_q8.cu           GEMV v3: 8-bit activations, integer dot products (__dp4a)
//   cuda_gemv_common.cuh      helpers shared by the GEMV versions and matmul_experts
//   cuda_quant_blocks.cuh     decoding of GGUF weight blocks, for device and host
//   cuda_vec_dot_q8.cuh       integer dot products of weight blocks with 8-bit activations (v3)
//   cuda_moe.cu               matmul_experts and moe_combine: routed experts with ids on the device
//   cuda_attention.cu         attention over F32 / F16 / Q8_0 caches for decode and verify
//   cuda_flash_attention.cu   tiled flash attention for prefill
//   cuda_kv_cache.cuh         reading KV-cache rows in device code
//   cuda_delta_net.cu         the gated delta rule for decode and verify (recurrent form)
//   cuda_delta_net_chunked.cu the chunked (WY/UT) delta rule for prefill
//   cuda_prefill.h            the prefill kernels' entry points (chunked delta rule, flash attention)
//   cuda_sampling.cu          penalties and top-k selection next to the logits
//   cuda_step_capture.cu      step graphs: the switch, capture arenas, deferred frees, refused calls
//   cuda_step_graph.h/.cu     capture, update and launch of step graphs
//   cuda_op_timer.cu          CUDA-event timers for the operation profiler
//   cuda_bandwidth.h/.cu      device read bandwidth, the roofline of the GEMV benchmark
//   cuda_common.cuh           error checks, launch helpers, warp reductions
//   emulation/                host-run emulation of the CUDA runtime (PEREGRINE_CUDA_EMULATION)
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/cuda_step_graph.h"
#include "peregrine/backend.h"

// Opaque CUDA handles, so this header compiles as plain C++ too (tests include it).
typedef struct CUstream_st* cudaStream_t;
typedef struct CUevent_st* cudaEvent_t;
typedef struct cublasContext* cublasHandle_t;

namespace peregrine::cuda {

struct DeviceInfo {
  int device = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int sm_count = 0;
  uint64_t total_memory = 0;
  uint64_t free_memory = 0;
  int driver_version = 0, runtime_version = 0;
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device);
  ~CudaBackend() override;

  std::string_view name() const override { return "cuda"; }
  std::string device_name() const override { return info_.name; }
  const DeviceInfo& device_info() const { return info_; }
  cudaStream_t stream() const { return stream_; }

  // ---- memory (cuda_backend.cu) ----
  bool host_memory() const override { return false; }
  void* allocate(uint64_t bytes) override;
  void release(void* p) noexcept override;
  void upload(void* dst, const void* host_src, uint64_t bytes) override;
  void download(void* host_dst, const void* src, uint64_t bytes) override;
  void copy(void* dst, const void* src, uint64_t bytes) override;
  void fill_zero(void* dst, uint64_t bytes) override;
  const uint8_t* place_weights(const uint8_t* host, uint64_t bytes, std::string_view name) override;
  void synchronize() override;
  std::optional<uint64_t> free_memory() const override;
  std::unique_ptr<OpTimer> make_op_timer() override;  // cudaEvent pairs on the stream (cuda_op_timer.cu)

  // ---- step graphs (cuda_step_capture.cu; docs/cuda.md, "Step graphs") ----
  // On unless PEREGRINE_CUDA_GRAPHS=0 (read when the backend is made). While a step is captured,
  // stage() and upload() copy through capture arenas instead of the staging ring, scratch that
  // grows keeps its old buffer until the step's graph has run, and download() / synchronize()
  // throw (the step would wait for work that has not been submitted).
  bool begin_step_capture(uint64_t shape_key) override;
  void end_step_capture() override;
  void abort_step_capture() noexcept override;
  bool step_graphs_enabled() const { return graphs_enabled_; }
  bool capturing() const { return step_graph_ && step_graph_->capturing(); }
  StepGraphStats step_graph_stats() const { return step_graph_ ? step_graph_->stats() : StepGraphStats{}; }
  uint64_t weight_bytes() const { return weight_bytes_; }
  // Prefill matrix products on TF32 tensor cores (default) or in exact float32
  // (PEREGRINE_CUDA_PREFILL_MATH=fp32, read when the backend is made).
  bool tf32_prefill() const { return tf32_prefill_; }

  // ---- operations ----
  void matmul(const WeightView& w, const float* x, float* y, int64_t n_tokens) override;  // cuda_matmul.cu
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
  // Routing kept in device memory: moe_route_device in cuda_elementwise.cu (next to moe_route),
  // the expert GEMV and the weighted sum in cuda_moe.cu.
  void moe_route_device(const float* logits, int64_t n_tokens, int64_t n_expert, int64_t k, int32_t* expert_ids,
                        float* weights) override;
  void matmul_experts(const ExpertsView& w, const int32_t* ids, int64_t n_tokens, int64_t k, const float* x,
                      bool x_per_slot, float* y) override;
  void moe_combine(const float* expert_out, const int32_t* ids, const float* weights, int64_t n_tokens, int64_t k,
                   int64_t n, float* out) override;
  // Sampling next to the logits (cuda_sampling.cu): only the candidates come back to the host.
  void penalize_logits(float* row, int64_t n, const LogitPenalties& penalties) override;
  void top_k_rows(const float* x, int64_t n_rows, int64_t row_stride, int64_t n_valid, int64_t k, int32_t* ids,
                  float* values) override;

  // ---- scratch shared by the operation files (cuda_backend.cu) ----
  // Device scratch slot `slot` of at least `bytes` (grown, never shrunk; contents undefined).
  // Slots let one operation hold several buffers at once; an operation must not assume a slot
  // survives another operation.
  enum class Scratch { A, B, C, D, Count };
  void* scratch(Scratch slot, uint64_t bytes);
  // Copies a small host array to device scratch (through pinned staging, on the stream) and
  // returns the device pointer; kernels issued before the next call with the same slot read
  // this call's bytes (stream order). The host does not wait unless the copy it issued
  // kStagingRing calls ago on this slot has not run yet.
  enum class Staging { Positions, Rows, Scales, Tokens, Count };
  const void* stage(Staging slot, const void* host, uint64_t bytes);
  cublasHandle_t cublas();

 private:
  struct Buffer {
    void* ptr = nullptr;
    uint64_t bytes = 0;
  };
  DeviceInfo info_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  std::vector<void*> weight_blocks_;
  uint64_t weight_bytes_ = 0;
  bool tf32_prefill_ = true;
  Buffer scratch_[static_cast<int>(Scratch::Count)];
  // One staging slot: a device buffer, and a ring of pinned host buffers, each with an event
  // recorded after the copy out of it, so a buffer is rewritten only once its copy has run.
  static constexpr int kStagingRing = 16;
  struct StagingSlot {
    void* device = nullptr;
    uint64_t capacity = 0;
    void* pinned[kStagingRing] = {};
    cudaEvent_t copied[kStagingRing] = {};
    bool pending[kStagingRing] = {};
    int next = 0;
    std::vector<uint8_t> mirror;  // what the device buffer holds once the issued copies have run
  };
  void grow_staging(StagingSlot& slot, uint64_t bytes);
  void free_staging(StagingSlot& slot) noexcept;
  StagingSlot staging_[static_cast<int>(Staging::Count)];

  // Step capture. A captured step's host→device copies read pinned memory when the graph runs,
  // not when they are recorded, so they come from an arena of their own (bump allocated, pinned
  // chunks paired with device chunks), reused only after the event recorded behind that step's
  // graph launch. The staging ring and its mirrors are left alone while capturing.
  struct CaptureArena {
    struct Chunk {
      void* pinned = nullptr;
      void* device = nullptr;
      uint64_t bytes = 0;
    };
    std::vector<Chunk> chunks;
    size_t chunk = 0;   // bump position: chunk index and bytes used in it
    uint64_t used = 0;
    cudaEvent_t launched = nullptr;  // recorded after the graph that read this arena
    bool pending = false;
  };
  static constexpr int kCaptureArenas = 3;
  const void* capture_copy(const void* host, uint64_t bytes, void* device_dst);
  void refuse_while_capturing(const char* call) const;
  void release_capture_resources() noexcept;
  bool graphs_enabled_ = true;
  std::unique_ptr<StepGraph> step_graph_;
  CaptureArena arenas_[kCaptureArenas];
  int arena_ = 0;
  std::vector<void*> deferred_frees_;  // scratch replaced during a capture, freed after the launch
};

}  // namespace peregrine::cuda
