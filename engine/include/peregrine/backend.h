// The narrow set of operations the Qwen 3.5/3.6 forward pass is written against.
//
// The forward pass (src/model/qwen35_forward.cpp) calls only these operations, so a backend is a
// complete implementation of them: the CPU backend is the float32 reference, a CUDA backend
// implements the same contract on device memory. Activations are float32 rows, row-major,
// one row per token; weights stay in their GGUF encoding (possibly quantized) and are described
// by a WeightView. Buffers passed to a backend belong to the caller; a backend keeps only its own
// scratch, grown once and reused, so the hot path does not allocate.
//
// Memory: every float* / uint8_t* an operation takes (activations, weights, caches, states) is
// *backend memory* — host memory for the CPU backend, device memory for a GPU backend — obtained
// from allocate() / place_weights(). The host touches backend memory only through upload(),
// download() and copy(). Spans (token ids, positions, gathered rows, expert weights) are host
// memory: they are small, and a device backend copies them over itself.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "peregrine/activation_mode.h"
#include "peregrine/logit_select.h"
#include "peregrine/tensor_type.h"

namespace peregrine {

// A 2-D weight matrix in GGUF layout: `n_out` rows of `n_in` contiguous values (ggml ne =
// [n_in, n_out]), encoded as `type`. Computes y = W·x. Views into the mapping, never owning.
struct WeightView {
  TensorType type = TensorType::F32;
  const uint8_t* data = nullptr;
  int64_t n_in = 0;
  int64_t n_out = 0;
  uint64_t row_bytes = 0;   // bytes of one row of n_in values
  std::string_view name;    // the GGUF tensor name, for messages

  bool empty() const { return data == nullptr; }
  const uint8_t* row(int64_t r) const { return data + static_cast<uint64_t>(r) * row_bytes; }
  // Rows [first, first + count) as a matrix of their own (an expert of a stacked 3-D tensor,
  // or the gate / up half of a fused tensor).
  WeightView rows(int64_t first, int64_t count) const {
    WeightView v = *this;
    v.data = row(first);
    v.n_out = count;
    return v;
  }
};

// A [tokens][heads][head_dim] view with arbitrary token and head strides (in floats), so that
// per-head operations can work in place on interleaved projections (the q/gate rows of attn_q,
// the q|k|v channels of a delta-net layer) without copies.
struct HeadView {
  float* data = nullptr;
  int64_t n_tokens = 0;
  int64_t n_heads = 0;
  int64_t head_dim = 0;
  int64_t token_stride = 0;
  int64_t head_stride = 0;

  float* head(int64_t t, int64_t h) const { return data + t * token_stride + h * head_stride; }
  // A contiguous [n_tokens][n_heads * head_dim] buffer.
  static HeadView dense(float* data, int64_t n_tokens, int64_t n_heads, int64_t head_dim) {
    return {data, n_tokens, n_heads, head_dim, n_heads * head_dim, head_dim};
  }
};

// One layer's KV cache as the attention reads it: `k` and `v` each hold n_ctx rows of
// n_kv_heads·head_dim values encoded as `type` (F32, F16 or Q8_0; a Q8_0 block never straddles
// two heads because head_dim is a multiple of 32), `row_bytes` apart.
struct KvView {
  TensorType type = TensorType::F32;
  const uint8_t* k = nullptr;
  const uint8_t* v = nullptr;
  uint64_t row_bytes = 0;
  int64_t n_kv_heads = 0;
};

struct RopeParams {
  int64_t n_rot = 0;          // rotated dims at the start of each head (pairs (i, i + n_rot/2))
  float freq_base = 10000.0f;
  // rope.dimension_sections (counts of rotary pairs per position stream: time, height, width,
  // extra). For text tokens time = height = width = the position and the extra stream is 0, so a
  // pair that falls into the extra stream is not rotated. Empty: every pair uses the position.
  std::vector<int32_t> sections;
};

// The experts of a stacked 3-D expert tensor as matrices: expert e is stacked.rows(e·stride,
// rows). stride is rows for a plain stack, 2·rows for one half of a fused gate_up tensor (whose
// view then starts at that half's first row).
struct ExpertsView {
  WeightView stacked;
  int64_t rows = 0;    // output rows of one expert
  int64_t stride = 0;  // rows from one expert's first row to the next one's
  int64_t count() const { return rows > 0 && stride > 0 ? (stacked.n_out - rows) / stride + 1 : 0; }
  WeightView expert(int64_t e) const { return stacked.rows(e * stride, rows); }
};

// Head counts of a gated delta-net layer.
struct DeltaNetDims {
  int64_t n_k_heads = 0;   // Hk (ssm.group_count)
  int64_t n_v_heads = 0;   // Hv (ssm.time_step_rank); value head j reads key head j mod Hk
  int64_t head_dim = 0;    // d, for keys and values alike
};

// Times a span of issued operations on a backend's own clock (a GPU's events), for profiling.
// start() and stop() only mark points in the backend's operation stream and do not wait;
// elapsed_ms() waits until the stop point has been reached and returns the milliseconds between
// the two marks. A timer is reusable: start() again begins a new span.
class OpTimer {
 public:
  virtual ~OpTimer() = default;
  virtual void start() = 0;
  virtual void stop() = 0;
  virtual double elapsed_ms() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  // The device it runs on, for people ("NVIDIA H100 80GB HBM3"); empty where there is nothing
  // more to say than name().
  virtual std::string device_name() const { return {}; }

  // ---- memory (see the header comment) ----
  // True when backend memory is ordinary host memory (the CPU backend): callers may then skip
  // staging copies. Code that is correct for a device backend never needs to ask.
  virtual bool host_memory() const { return true; }
  // `bytes` of backend memory, zero-filled, 256-byte aligned. Throws peregrine::Error (with the
  // numbers) when the backend is out of memory. allocate(0) returns a valid, unique pointer.
  virtual void* allocate(uint64_t bytes) = 0;
  virtual void release(void* p) noexcept = 0;
  virtual void upload(void* dst, const void* host_src, uint64_t bytes) = 0;   // host → backend
  virtual void download(void* host_dst, const void* src, uint64_t bytes) = 0; // backend → host
  virtual void copy(void* dst, const void* src, uint64_t bytes) = 0;          // backend → backend
  virtual void fill_zero(void* dst, uint64_t bytes) = 0;
  // Makes `bytes` of weight data (a region of the mapped model file, or a float vector) readable
  // by the operations and returns where they read it: the CPU backend returns `host` itself (no
  // copy; the mapping must outlive the backend), a device backend uploads the bytes once and keeps
  // them until it is destroyed. `name` is for messages.
  virtual const uint8_t* place_weights(const uint8_t* host, uint64_t bytes, std::string_view name) = 0;
  // Waits until every operation issued so far has finished (a no-op where operations are
  // synchronous). download() waits by itself.
  virtual void synchronize() {}
  // Bytes that can still be allocated (the CPU backend: the host's MemAvailable; CUDA:
  // cudaMemGetInfo's free bytes), or nullopt where the backend does not know a bound.
  virtual std::optional<uint64_t> free_memory() const { return std::nullopt; }
  // A timer on the backend's own clock (OpTimer), or null where the backend has none: then a
  // profiler times operations with the host clock around synchronize() (exact for synchronous
  // backends such as the CPU one).
  virtual std::unique_ptr<OpTimer> make_op_timer() { return nullptr; }

  // ---- step capture (CUDA graphs; docs/cuda.md, "Step graphs") ----
  // A backend that can record a whole forward step and replay it as one submission returns true
  // from begin_step_capture: the operations issued until end_step_capture are recorded, not run,
  // and end_step_capture submits them (shape_key names the step's shape: steps of one key issue
  // the same operations with different arguments). Inside a capture nothing may wait for the
  // backend or read its memory on the host (download, synchronize, moe_route, top_k_rows): that
  // throws. abort_step_capture discards a capture (an exception inside the step); nothing of it
  // ran. The defaults capture nothing: operations simply run as they are issued. A wrapper that
  // must see every operation (the profiler) keeps these defaults.
  virtual bool begin_step_capture(uint64_t shape_key) {
    (void)shape_key;
    return false;
  }
  virtual void end_step_capture() {}
  virtual void abort_step_capture() noexcept {}

  // y[t] = W·x[t] for t < n_tokens; x rows have w.n_in values, y rows w.n_out, both contiguous.
  virtual void matmul(const WeightView& w, const float* x, float* y, int64_t n_tokens) = 0;
  // out[t] = row tokens[t] of the table (an embedding lookup), as float.
  virtual void get_rows(const WeightView& table, std::span<const int32_t> tokens, float* out) = 0;

  // y = x / sqrt(mean(x²) + eps) · w over rows of n values (w: n weights, or null for none).
  // x == y is allowed.
  virtual void rmsnorm(const float* x, const float* w, float* y, int64_t n_rows, int64_t n, float eps) = 0;
  // Per head, in place: RMSNorm over head_dim with a shared head_dim weight vector.
  virtual void rmsnorm_heads(const HeadView& x, const float* w, float eps) = 0;
  // Per head, in place: x / sqrt(Σx² + eps) · scale.
  virtual void l2norm_heads(const HeadView& x, float eps, float scale) = 0;
  // In place NeoX rotation of the first n_rot dims of every head; positions[t] per token.
  virtual void rope(const HeadView& x, std::span<const int32_t> positions, const RopeParams& p) = 0;

  // dst[r·dst_stride + i] = src[r·src_stride + i] for r < n_rows, i < n: KV-cache writes and
  // concatenations along rows.
  virtual void copy_2d(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t n_rows,
                       int64_t n) = 0;

  // Elementwise helpers. n is the number of values.
  virtual void add(float* y, const float* x, int64_t n) = 0;                 // y += x
  virtual void swiglu(const float* gate, const float* up, float* y, int64_t n) = 0;  // y = silu(gate)·up
  // x *= sigmoid(gate) over matching heads (the attention output gate).
  virtual void mul_sigmoid_heads(const HeadView& x, const HeadView& gate) = 0;
  // Per head: x = rmsnorm(x)·w ⊙ silu(z) (the delta-net output norm); x, z dense [T][H][d].
  virtual void gated_rmsnorm_heads(const HeadView& x, const HeadView& z, const float* w, float eps) = 0;

  // Causal depthwise convolution over the channels of x ([T][channels], row stride
  // x_stride), kernel `kernel` with weights w[c][kernel] (tap kernel-1 = the current token),
  // no bias, followed by SiLU; out is dense [T][channels]. `state` ([kernel-1][channels], the
  // last kernel-1 inputs before this call, zeros at sequence start) is updated.
  virtual void conv1d_silu(const float* x, int64_t x_stride, int64_t n_tokens, int64_t channels,
                           const float* w, int64_t kernel, float* state, float* out) = 0;

  // Delta-rule gates per token and value head: beta = sigmoid(b), g = a_neg · softplus(a + dt_bias),
  // with a_neg = ssm_a (stored as −exp(A_log)). a, b: [T][Hv] (row strides a_stride/b_stride);
  // g, beta: dense [T][Hv].
  virtual void delta_gates(const float* a, int64_t a_stride, const float* b, int64_t b_stride,
                           const float* dt_bias, const float* a_neg, int64_t n_tokens,
                           int64_t n_v_heads, float* g, float* beta) = 0;

  // Gated delta rule over n_tokens tokens. q, k: [T][Hk][d] views (already L2-normalised, q
  // already scaled), v: [T][Hv][d], g/beta: dense [T][Hv]; state: [Hv][d][d] (key index × value
  // index), float32, updated; out: [T][Hv][d] view. The recurrent form steps token by token; the
  // chunked form processes chunks of up to `chunk` tokens with the WY/UT decomposition and gives
  // the same result up to rounding.
  virtual void delta_rule_recurrent(const DeltaNetDims& dims, const HeadView& q, const HeadView& k,
                                    const HeadView& v, const float* g, const float* beta,
                                    float* state, const HeadView& out) = 0;
  virtual void delta_rule_chunked(const DeltaNetDims& dims, const HeadView& q, const HeadView& k,
                                  const HeadView& v, const float* g, const float* beta,
                                  float* state, const HeadView& out, int64_t chunk) = 0;

  // Stores n_rows rows of n floats (src, contiguous) as `type` into dst, rows one after another
  // (quant::row_bytes(type, n) bytes each): the KV-cache write. type: F32 (exact copy), F16
  // (round to nearest even) or Q8_0 (llama.cpp's reference quantizer; n a multiple of 32).
  virtual void kv_store(TensorType type, const float* src, int64_t n_rows, int64_t n, uint8_t* dst) = 0;

  // Causal softmax attention with grouped KV heads. q: [T][H][hd] view; the caches hold
  // [n_ctx][Hkv][hd] values encoded as kv.type (see KvView) and already contain the keys/values
  // of every position up to positions[t]; token t attends to cache rows 0..positions[t]. Query
  // head h reads KV head h / (H / Hkv). out: dense [T][H][hd]. Queries, scores and the output
  // stay float32 whatever the cache type; only the cached keys/values are rounded.
  virtual void attention(const HeadView& q, const KvView& kv, std::span<const int32_t> positions, float scale,
                         float* out) = 0;
  // The same over dense float32 caches ([n_ctx][n_kv_heads][hd] floats).
  void attention(const HeadView& q, const float* k_cache, const float* v_cache, int64_t n_kv_heads,
                 std::span<const int32_t> positions, float scale, float* out) {
    const KvView kv{TensorType::F32, reinterpret_cast<const uint8_t*>(k_cache),
                    reinterpret_cast<const uint8_t*>(v_cache),
                    static_cast<uint64_t>(n_kv_heads * q.head_dim) * sizeof(float), n_kv_heads};
    attention(q, kv, positions, scale, out);
  }

  // MoE router: logits [T][E] → for each token the k experts of highest softmax probability
  // (best first, ties to the lower id) and their probabilities renormalised to sum to 1.
  // expert_ids / weights: [T][k], in memory the caller can read (the model groups tokens by
  // expert from them; a device backend copies these few values back).
  virtual void moe_route(const float* logits, int64_t n_tokens, int64_t n_expert, int64_t k,
                         int32_t* expert_ids, float* weights) = 0;
  // out[i] = x[rows[i]] for rows of n values.
  virtual void gather_rows(const float* x, std::span<const int32_t> rows, int64_t n, float* out) = 0;
  // y[rows[i]] += scale[i] · x[i] for rows of n values (scale: host, one value per row).
  virtual void scatter_add_rows(const float* x, std::span<const int32_t> rows, std::span<const float> scale,
                                int64_t n, float* y) = 0;
  // x[t] *= sigmoid(gate_logit[t]) for n_tokens rows of n values (the shared expert's gate).
  virtual void scale_rows_sigmoid(float* x, const float* gate_logit, int64_t n_tokens, int64_t n) = 0;

  // ---- MoE with the routing kept in backend memory (decode, verify: a few tokens) ----
  // The defaults (backend_moe_defaults.cpp) work on any backend through the ops above, with a
  // host round trip; the CPU and CUDA backends override them.
  // moe_route with expert_ids / weights ([T][k]) in backend memory; nothing comes back to the host.
  virtual void moe_route_device(const float* logits, int64_t n_tokens, int64_t n_expert, int64_t k,
                                int32_t* expert_ids, float* weights);
  // For every token t and slot j: y[t][j] = expert ids[t][j] · x_row, x_row = x[t] (x: [T][n_in])
  // or x[t][j] when x_per_slot (x: [T][k][n_in]); y: [T][k][w.rows]. ids: backend memory [T][k],
  // distinct experts within a token. Each output equals matmul over that expert's rows (same
  // arithmetic as the backend's matmul for one token; a backend may read each selected expert's
  // weights once for all tokens that chose it).
  virtual void matmul_experts(const ExpertsView& w, const int32_t* ids, int64_t n_tokens, int64_t k, const float* x,
                              bool x_per_slot, float* y);
  // out[t] += Σ_j weights[t][j] · expert_out[t][j] over rows of n values, the slots added one
  // at a time in ascending expert id (ids[t][j]) — the order of scatter_add_rows over experts
  // 0..E-1, so the result equals the host-grouped path's bit for bit where the products do.
  // ids, weights: backend memory [T][k]; expert_out: [T][k][n].
  virtual void moe_combine(const float* expert_out, const int32_t* ids, const float* weights, int64_t n_tokens,
                           int64_t k, int64_t n, float* out);

  // ---- sampling next to the logits (logit_select.h: the host reference they must equal) ----
  // apply_logit_penalties on one row of n logits in backend memory (ids and subtract values are
  // host spans). The default downloads the row, applies the penalties on the host and uploads it.
  virtual void penalize_logits(float* row, int64_t n, const LogitPenalties& penalties) {
    if (penalties.empty()) return;
    std::vector<float> host(static_cast<size_t>(n));
    download(host.data(), row, host.size() * sizeof(float));
    apply_logit_penalties(host.data(), penalties);
    upload(row, host.data(), host.size() * sizeof(float));
  }
  // Per row r < n_rows (starting at x + r·row_stride): select_top_k over its first n_valid values
  // with 1 <= k <= kMaxLogitCandidates, into ids / values [n_rows][k] in host memory, so only the
  // candidates reach the host. The default downloads each row and selects on the host.
  virtual void top_k_rows(const float* x, int64_t n_rows, int64_t row_stride, int64_t n_valid, int64_t k,
                          int32_t* ids, float* values) {
    std::vector<float> host(static_cast<size_t>(n_valid));
    for (int64_t r = 0; r < n_rows; ++r) {
      download(host.data(), x + r * row_stride, host.size() * sizeof(float));
      select_top_k(host.data(), n_valid, k, ids + r * k, values + r * k);
    }
  }
};

// An array of T in a backend's memory, owned: released when destroyed. Movable, not copyable.
template <class T>
class BackendArray {
 public:
  BackendArray() = default;
  BackendArray(Backend& backend, int64_t n) { reset(backend, n); }
  BackendArray(BackendArray&& o) noexcept { *this = std::move(o); }
  BackendArray& operator=(BackendArray&& o) noexcept {
    if (this != &o) {
      free();
      be_ = std::exchange(o.be_, nullptr);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  BackendArray(const BackendArray&) = delete;
  BackendArray& operator=(const BackendArray&) = delete;
  ~BackendArray() { free(); }

  // Frees the old contents and allocates n zero-filled values.
  void reset(Backend& backend, int64_t n) {
    free();
    be_ = &backend;
    data_ = static_cast<T*>(backend.allocate(static_cast<uint64_t>(n) * sizeof(T)));
    size_ = n;
  }
  T* data() { return data_; }
  const T* data() const { return data_; }
  int64_t size() const { return size_; }
  uint64_t bytes() const { return static_cast<uint64_t>(size_) * sizeof(T); }
  bool empty() const { return size_ == 0; }
  Backend* backend() const { return be_; }

 private:
  void free() {
    if (be_ && data_) be_->release(data_);
    data_ = nullptr;
    size_ = 0;
  }
  Backend* be_ = nullptr;
  T* data_ = nullptr;
  int64_t size_ = 0;
};

// Which backend a model runs on. Auto: CUDA when this build has it and a device exists, else CPU.
enum class BackendKind { Auto, Cpu, Cuda };
std::string_view backend_kind_name(BackendKind kind);               // "auto", "cpu", "cuda"
std::optional<BackendKind> parse_backend_kind(std::string_view s);  // those names; nullopt otherwise
// Auto resolved against this build and machine (Cpu and Cuda are returned unchanged).
BackendKind resolve_backend_kind(BackendKind kind);

// CUDA devices this process can use: 0 when the build has no CUDA backend, no driver is
// installed, or no device is present. Never throws.
int cuda_device_count();
bool cuda_backend_compiled();
// The CUDA backend on device `device`. Throws peregrine::Error saying why when the build has no
// CUDA backend or the device cannot be used.
std::unique_ptr<Backend> make_cuda_backend(int device = 0);

// The float32 reference backend. n_threads ≤ 1: everything on the calling thread; otherwise
// matrix products are split over output rows, attention and the delta rule over heads, between
// that many threads (the results do not depend on the thread count). `activations` picks how
// quantized weights are multiplied (see activation_mode.h); Float is the exact float32 reference.
std::unique_ptr<Backend> make_cpu_backend(int n_threads = 1, ActivationMode activations = ActivationMode::Float);

// The backend a model runs on when it is given none: `kind` (Auto resolved as above) with the
// settings of that backend; the others are ignored. ModelOptions carries the same fields.
struct BackendChoice {
  BackendKind kind = BackendKind::Cpu;
  int n_threads = 1;                                    // CPU backend
  ActivationMode activations = ActivationMode::Float;  // CPU backend
  int cuda_device = 0;                                  // CUDA backend
};
std::unique_ptr<Backend> make_backend(const BackendChoice& choice);

}  // namespace peregrine
