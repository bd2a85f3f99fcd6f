// Matrix products and embedding lookups on GGUF-encoded weights.
#include <algorithm>
#include <cstring>
#include <string>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/kernels/vec_dot.h"
#include "peregrine/error.h"
#include "peregrine/quant.h"

namespace peregrine::cpu {
namespace {

// Quantized8 prefill tiling: a thread walks its output rows in blocks of kRowBlock and, for each,
// the tokens in blocks of kTokenBlock, so the weight rows of a block (a few tens of KB) and the
// activation rows of a token block stay in L1/L2 while they are reused.
constexpr int64_t kRowBlock = 16;
constexpr int64_t kTokenBlock = 32;

// A row as float: F32 rows are used in place, every other type is dequantized into `buf`.
const float* row_as_float(const WeightView& w, int64_t r, float* buf) {
  if (w.type == TensorType::F32) return reinterpret_cast<const float*>(w.row(r));
  quant::dequantize(w.type, w.row(r), buf, w.n_in);
  return buf;
}

void check_weight(const WeightView& w) {
  if (w.data == nullptr || w.n_in <= 0 || w.n_out <= 0 || w.row_bytes == 0)
    throw Error("cpu backend: weight '" + std::string(w.name) + "' is empty or has no shape");
}

}  // namespace

CpuBackend::CpuBackend(int n_threads, ActivationMode activations)
    : activations_(activations), pool_(n_threads), workers_(pool_.size()) {}

float* CpuBackend::grow(std::vector<float>& buf, int64_t n) {
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(std::max<int64_t>(n, 2 * static_cast<int64_t>(buf.size())));
  return buf.data();
}

void CpuBackend::reserve_workers(Buf which, int64_t n) {
  for (auto& w : workers_) grow(which == Buf::Row ? w.row : which == Buf::Scores ? w.scores : w.delta, n);
}

float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void CpuBackend::matmul(const WeightView& w, const float* x, float* y, int64_t n_tokens) {
  check_weight(w);
  if (activations_ == ActivationMode::Quantized8 && kernels::has_vec_dot(w.type))
    matmul_quantized(w, x, y, n_tokens);
  else
    matmul_float(w, x, y, n_tokens);
}

void CpuBackend::matmul_float(const WeightView& w, const float* x, float* y, int64_t n_tokens) {
  const int64_t n_in = w.n_in, n_out = w.n_out;
  reserve_workers(Buf::Row, n_in);
  // Split over output rows: each row is dequantized once and used for every token.
  pool_.parallel_for(n_out, [&](int64_t r0, int64_t r1, int worker) {
    float* buf = workers_[worker].row.data();
    for (int64_t r = r0; r < r1; ++r) {
      const float* wr = row_as_float(w, r, buf);
      for (int64_t t = 0; t < n_tokens; ++t) y[t * n_out + r] = dot(wr, x + t * n_in, n_in);
    }
  });
}

void CpuBackend::matmul_quantized(const WeightView& w, const float* x, float* y, int64_t n_tokens) {
  const int64_t n_in = w.n_in, n_out = w.n_out;
  // Float activations (F32/F16/BF16 weights) are read in place; otherwise each token's row is
  // rounded once here and shared by every output row.
  const uint8_t* act = reinterpret_cast<const uint8_t*>(x);
  size_t act_bytes = sizeof(float) * static_cast<size_t>(n_in);
  if (kernels::activation_type(w.type) != TensorType::F32) {
    act_bytes = kernels::activation_row_bytes(w.type, n_in);  // throws if n_in is not whole blocks
    const size_t need = act_bytes * static_cast<size_t>(n_tokens);
    if (act_scratch_.size() < need) act_scratch_.resize(std::max(need, 2 * act_scratch_.size()));
    uint8_t* dst = act_scratch_.data();
    pool_.parallel_for(n_tokens, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t)
        kernels::quantize_activations(w.type, x + t * n_in, n_in, dst + static_cast<size_t>(t) * act_bytes);
    });
    act = dst;
  }
  const kernels::VecDotFn dot_one = kernels::vec_dot_kernel(w.type);
  // Every output element is one kernel call on its own weight row and activation row, and
  // vec_dot_multi is bit-identical to vec_dot, so results do not depend on the thread count.
  pool_.parallel_for(n_out, [&](int64_t r0, int64_t r1, int) {
    if (n_tokens == 1) {
      kernels::vec_dot_rows(w.type, n_in, r1 - r0, w.row(r0), w.row_bytes, act, y + r0);
      return;
    }
    float out[kTokenBlock];
    for (int64_t rb = r0; rb < r1; rb += kRowBlock) {
      const int64_t re = std::min(rb + kRowBlock, r1);
      for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokenBlock) {
        const int64_t nt = std::min(kTokenBlock, n_tokens - t0);
        const uint8_t* acts = act + static_cast<size_t>(t0) * act_bytes;
        for (int64_t r = rb; r < re; ++r) {
          if (nt == 1) {
            out[0] = dot_one(n_in, w.row(r), acts);
          } else {
            kernels::vec_dot_multi(w.type, n_in, w.row(r), acts, act_bytes, nt, out);
          }
          for (int64_t j = 0; j < nt; ++j) y[(t0 + j) * n_out + r] = out[j];
        }
      }
    }
  });
}

void CpuBackend::get_rows(const WeightView& table, std::span<const int32_t> tokens, float* out) {
  check_weight(table);
  for (size_t t = 0; t < tokens.size(); ++t) {
    const int32_t id = tokens[t];
    if (id < 0 || id >= table.n_out)
      throw Error("cpu backend: token id " + std::to_string(id) + " outside '" + std::string(table.name) +
                  "' with " + std::to_string(table.n_out) + " rows");
    float* dst = out + static_cast<int64_t>(t) * table.n_in;
    if (table.type == TensorType::F32)
      std::memcpy(dst, table.row(id), sizeof(float) * table.n_in);
    else
      quant::dequantize(table.type, table.row(id), dst, table.n_in);
  }
}

}  // namespace peregrine::cpu

namespace peregrine {
std::unique_ptr<Backend> make_cpu_backend(int n_threads, ActivationMode activations) {
  return std::make_unique<cpu::CpuBackend>(n_threads, activations);
}
}  // namespace peregrine
