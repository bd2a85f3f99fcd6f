// Runtime dispatch of the dot-product kernels and the activation formats each weight type pairs
// with (ggml-cpu's `vec_dot_type`).
#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <string>

#include "backend/cpu/kernels/vec_dot.h"
#include "backend/cpu/kernels/vec_dot_impl.h"
#include "peregrine/error.h"
#include "peregrine/log.h"
#include "peregrine/quant.h"

namespace peregrine::cpu::kernels {
namespace {

using MultiFn = void (*)(int64_t n, const void* w, const void* act, size_t act_stride, int n_act, float* y);

struct KernelEntry {
  TensorType activation;
  int64_t block_elems;
  VecDotFn scalar;
  VecDotFn avx2;
  MultiFn avx2_multi;  // 1..4 activation rows at once; null: loop over avx2
};

constexpr size_t kMaxTypeId = 40;

#if PEREGRINE_KERNELS_X86
#define PEREGRINE_X86_ONLY(fn) fn
#else
#define PEREGRINE_X86_ONLY(fn) nullptr
#endif

std::array<KernelEntry, kMaxTypeId> build_table() {
  std::array<KernelEntry, kMaxTypeId> t{};
  auto set = [&t](TensorType w, TensorType act, int64_t block, VecDotFn scalar, VecDotFn avx2,
                  MultiFn avx2_multi = nullptr) {
    t[static_cast<size_t>(w)] = KernelEntry{act, block, scalar, avx2, avx2_multi};
  };
  using T = TensorType;
  set(T::F32, T::F32, 1, vec_dot_f32_scalar, PEREGRINE_X86_ONLY(vec_dot_f32_avx2));
  set(T::F16, T::F32, 1, vec_dot_f16_scalar, PEREGRINE_X86_ONLY(vec_dot_f16_avx2));
  set(T::BF16, T::F32, 1, vec_dot_bf16_scalar, PEREGRINE_X86_ONLY(vec_dot_bf16_avx2));
  set(T::Q4_0, T::Q8_0, 32, vec_dot_q4_0_scalar, PEREGRINE_X86_ONLY(vec_dot_q4_0_avx2),
      PEREGRINE_X86_ONLY(vec_dot_q4_0_avx2_multi));
  set(T::Q4_1, T::Q8_1, 32, vec_dot_q4_1_scalar, PEREGRINE_X86_ONLY(vec_dot_q4_1_avx2),
      PEREGRINE_X86_ONLY(vec_dot_q4_1_avx2_multi));
  set(T::Q5_0, T::Q8_0, 32, vec_dot_q5_0_scalar, PEREGRINE_X86_ONLY(vec_dot_q5_0_avx2),
      PEREGRINE_X86_ONLY(vec_dot_q5_0_avx2_multi));
  set(T::Q5_1, T::Q8_1, 32, vec_dot_q5_1_scalar, PEREGRINE_X86_ONLY(vec_dot_q5_1_avx2),
      PEREGRINE_X86_ONLY(vec_dot_q5_1_avx2_multi));
  set(T::Q8_0, T::Q8_0, 32, vec_dot_q8_0_scalar, PEREGRINE_X86_ONLY(vec_dot_q8_0_avx2),
      PEREGRINE_X86_ONLY(vec_dot_q8_0_avx2_multi));
  set(T::IQ4_NL, T::Q8_0, 32, vec_dot_iq4_nl_scalar, PEREGRINE_X86_ONLY(vec_dot_iq4_nl_avx2),
      PEREGRINE_X86_ONLY(vec_dot_iq4_nl_avx2_multi));
  set(T::Q2_K, T::Q8_K, 256, vec_dot_q2_k_scalar, PEREGRINE_X86_ONLY(vec_dot_q2_k_avx2),
      PEREGRINE_X86_ONLY(vec_dot_q2_k_avx2_multi));
  set(T::Q3_K, T::Q8_K, 256, vec_dot_q3_k_scalar, PEREGRINE_X86_ONLY(vec_dot_q3_k_avx2),
      PEREGRINE_X86_ONLY(vec_dot_q3_k_avx2_multi));
  set(T::Q4_K, T::Q8_K, 256, vec_dot_q4_k_scalar, PEREGRINE_X86_ONLY(vec_dot_q4_k_avx2),
      PEREGRINE_X86_ONLY(vec_dot_q4_k_avx2_multi));
  set(T::Q5_K, T::Q8_K, 256, vec_dot_q5_k_scalar, PEREGRINE_X86_ONLY(vec_dot_q5_k_avx2),
      PEREGRINE_X86_ONLY(vec_dot_q5_k_avx2_multi));
  set(T::Q6_K, T::Q8_K, 256, vec_dot_q6_k_scalar, PEREGRINE_X86_ONLY(vec_dot_q6_k_avx2),
      PEREGRINE_X86_ONLY(vec_dot_q6_k_avx2_multi));
  set(T::IQ4_XS, T::Q8_K, 256, vec_dot_iq4_xs_scalar, PEREGRINE_X86_ONLY(vec_dot_iq4_xs_avx2),
      PEREGRINE_X86_ONLY(vec_dot_iq4_xs_avx2_multi));
  return t;
}

const std::array<KernelEntry, kMaxTypeId>& table() {
  static const std::array<KernelEntry, kMaxTypeId> t = build_table();
  return t;
}

const KernelEntry* find_entry(TensorType type) {
  const auto id = static_cast<size_t>(type);
  if (id >= kMaxTypeId || table()[id].scalar == nullptr) return nullptr;
  return &table()[id];
}

const KernelEntry& entry_or_throw(TensorType type, const char* what) {
  const KernelEntry* e = find_entry(type);
  if (e == nullptr) {
    throw Error(std::string(what) + ": no CPU dot product for weight type " +
                std::string(tensor_type_info(type).name) +
                " (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K, IQ4_NL, IQ4_XS)");
  }
  return *e;
}

Isa detect_isa() {
#if PEREGRINE_KERNELS_X86
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c");
#else
  const bool avx2 = false;
#endif
  const Isa isa = avx2 ? Isa::Avx2 : Isa::Scalar;
  log::get("cpu")->debug("dot-product kernels: {}", isa_name(isa));
  return isa;
}

}  // namespace

Isa best_isa() {
  static const Isa isa = detect_isa();
  return isa;
}

bool isa_available(Isa isa) { return isa == Isa::Scalar || best_isa() == Isa::Avx2; }

const char* isa_name(Isa isa) { return isa == Isa::Avx2 ? "avx2+fma+f16c" : "scalar"; }

bool has_vec_dot(TensorType weight_type) { return find_entry(weight_type) != nullptr; }

TensorType activation_type(TensorType weight_type) {
  return entry_or_throw(weight_type, "activation_type").activation;
}

int64_t weight_block_elems(TensorType weight_type) {
  return entry_or_throw(weight_type, "weight_block_elems").block_elems;
}

size_t activation_row_bytes(TensorType weight_type, int64_t n) {
  const KernelEntry& e = entry_or_throw(weight_type, "activation_row_bytes");
  if (n < 0 || n % e.block_elems != 0) {
    throw Error("activation_row_bytes: row length " + std::to_string(n) + " is not a multiple of " +
                std::to_string(e.block_elems) + " (block size of " +
                std::string(tensor_type_info(weight_type).name) + ")");
  }
  if (e.activation == TensorType::Q8_1) return static_cast<size_t>(n / 32) * kQ8_1Bytes;
  return quant::row_bytes(e.activation, n);
}

namespace {

void quantize_row(const KernelEntry& e, const float* x, int64_t n, void* dst, [[maybe_unused]] bool avx2) {
  auto* out = static_cast<uint8_t*>(dst);
  switch (e.activation) {
    case TensorType::F32:
      std::memcpy(dst, x, static_cast<size_t>(n) * sizeof(float));
      return;
    case TensorType::Q8_0:
    case TensorType::Q8_1: {
      const bool with_sum = e.activation == TensorType::Q8_1;
#if PEREGRINE_KERNELS_X86
      if (avx2) {
        quantize_row_q8_0_avx2(x, out, n, with_sum);
        return;
      }
#endif
      quantize_row_q8_0_scalar(x, out, n, with_sum);
      return;
    }
    default:  // Q8_K: ggml's reference quantizer (what ggml-cpu runs), in the quant library.
#if PEREGRINE_KERNELS_X86
      if (avx2) {
        quantize_row_q8_k_avx2(x, out, n);
        return;
      }
#endif
      quant::quantize(e.activation, x, dst, 1, n);
      return;
  }
}

bool all_finite(const float* x, int64_t n) {
  uint32_t special = 0;  // exponent all ones: NaN or ±Inf; an OR over the bits, which vectorizes
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    special |= (bits & 0x7F800000u) == 0x7F800000u;
  }
  return special == 0;
}

// The quantizers find a block's scale with max operations that drop NaN (ggml's do the same), so
// a NaN activation became a finite block, and an infinity a block of arbitrary values: products
// finite but wrong, where float activations give NaN. Such a block gets a NaN scale instead, so
// every product with it is NaN too.
void mark_non_finite_blocks(TensorType activation, const float* x, int64_t n, uint8_t* out) {
  if (all_finite(x, n)) return;  // the usual row: one pass, no per-block work
  const TensorTypeInfo block = tensor_type_info(activation);
  constexpr uint16_t kHalfNan = 0x7E00;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t b = 0; b < n / block.block_elems; ++b, out += block.block_bytes) {
    if (all_finite(x + b * block.block_elems, block.block_elems)) continue;
    if (activation == TensorType::Q8_K) {
      std::memcpy(out, &nan, sizeof nan);
    } else {
      std::memcpy(out, &kHalfNan, 2);
      if (activation == TensorType::Q8_1) std::memcpy(out + 2, &kHalfNan, 2);
    }
  }
}

}  // namespace

void quantize_activations(TensorType weight_type, const float* x, int64_t n, void* dst, Isa isa) {
  const KernelEntry& e = entry_or_throw(weight_type, "quantize_activations");
  activation_row_bytes(weight_type, n);  // validates n
  const bool avx2 = PEREGRINE_KERNELS_X86 && isa == Isa::Avx2 && isa_available(Isa::Avx2);
  quantize_row(e, x, n, dst, avx2);
  if (e.activation != TensorType::F32) mark_non_finite_blocks(e.activation, x, n, static_cast<uint8_t*>(dst));
}

void quantize_activations(TensorType weight_type, const float* x, int64_t n, void* dst) {
  quantize_activations(weight_type, x, n, dst, best_isa());
}

VecDotFn vec_dot_kernel(TensorType weight_type, Isa isa) {
  const KernelEntry* e = find_entry(weight_type);
  if (e == nullptr) return nullptr;
  if (isa == Isa::Avx2 && isa_available(Isa::Avx2) && e->avx2 != nullptr) return e->avx2;
  return e->scalar;
}

VecDotFn vec_dot_kernel(TensorType weight_type) {
  VecDotFn fn = vec_dot_kernel(weight_type, best_isa());
  if (fn == nullptr) entry_or_throw(weight_type, "vec_dot");
  return fn;
}

float vec_dot(TensorType weight_type, int64_t n, const void* weight_row, const void* act_row) {
  return vec_dot_kernel(weight_type)(n, weight_row, act_row);
}

void vec_dot_rows(TensorType weight_type, int64_t n, int64_t n_rows, const void* weight_rows,
                  size_t weight_row_stride, const void* act_row, float* y) {
  const VecDotFn fn = vec_dot_kernel(weight_type);
  const auto* w = static_cast<const uint8_t*>(weight_rows);
  for (int64_t r = 0; r < n_rows; ++r) y[r] = fn(n, w + static_cast<size_t>(r) * weight_row_stride, act_row);
}

void vec_dot_multi(TensorType weight_type, int64_t n, const void* weight_row, const void* act_rows,
                   size_t act_row_stride, int64_t n_act, float* y) {
  const KernelEntry& e = entry_or_throw(weight_type, "vec_dot_multi");
  const auto* act = static_cast<const uint8_t*>(act_rows);
  if (best_isa() == Isa::Avx2 && e.avx2_multi != nullptr) {
    for (int64_t j = 0; j < n_act; j += 4) {
      const int chunk = static_cast<int>(std::min<int64_t>(4, n_act - j));
      e.avx2_multi(n, weight_row, act + static_cast<size_t>(j) * act_row_stride, act_row_stride, chunk, y + j);
    }
    return;
  }
  const VecDotFn fn = vec_dot_kernel(weight_type);
  for (int64_t j = 0; j < n_act; ++j) y[j] = fn(n, weight_row, act + static_cast<size_t>(j) * act_row_stride);
}

}  // namespace peregrine::cpu::kernels
