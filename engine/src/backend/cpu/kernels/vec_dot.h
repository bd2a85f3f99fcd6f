// Dot products of one quantized weight row with one activation row: the inner loop of the CPU
// backend's quantized matrix-vector products.
//
// As in ggml-cpu, quantized weights are not multiplied with float activations: the activation row
// is first rounded to 8 bits in the block format ggml pairs with the weight type (its
// `vec_dot_type`), so the inner loop is an integer dot product per block and one float multiply
// per (sub-)block:
//
//   weight type                               activation format
//   Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_XS           Q8_K  (256 values, f32 scale, 16-value sums)
//   Q4_0 Q5_0 Q8_0 IQ4_NL                     Q8_0  (32 values, f16 scale)
//   Q4_1 Q5_1                                 Q8_1  (32 values, f16 scale, f16 scale*sum)
//   F32 F16 BF16                              F32   (float activations, no rounding)
//
// (ggml-cpu converts activations to F16/BF16 for F16/BF16 weights; here they stay float, which is
// at least as accurate and costs nothing for a matrix-vector product.)
//
// Typical use by a row-parallel matmul: quantize each activation row once
// (quantize_activations into activation_row_bytes), then every thread calls vec_dot / vec_dot_rows
// for its range of weight rows. All functions are stateless and thread-safe; no alignment needed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "peregrine/tensor_type.h"

namespace peregrine::cpu::kernels {

// Instruction sets with their own implementation. Avx2 means AVX2 + FMA + F16C.
enum class Isa { Scalar, Avx2 };

// The best Isa this CPU runs (detected once, with __builtin_cpu_supports).
Isa best_isa();
bool isa_available(Isa isa);
const char* isa_name(Isa isa);

// True when vec_dot supports this weight type.
bool has_vec_dot(TensorType weight_type);

// The format activations must be in for this weight type: Q8_K, Q8_0, Q8_1 or F32.
// Throws peregrine::Error for weight types without a dot product.
TensorType activation_type(TensorType weight_type);

// Values per weight block (256 for K-quants and IQ4_XS, 32 for Q4_0..Q8_0 and IQ4_NL, 1 for
// float types): n passed to vec_dot / quantize_activations must be a multiple of it.
int64_t weight_block_elems(TensorType weight_type);

// Bytes one activation row of n values takes in activation_type(weight_type).
// Throws peregrine::Error when n is not a multiple of the block size.
size_t activation_row_bytes(TensorType weight_type, int64_t n);

// Rounds n floats into activation_type(weight_type) blocks at dst (activation_row_bytes bytes),
// exactly as ggml-cpu does on x86. Q8_K: scale d = (largest-magnitude value, sign kept) / -127,
// q = min(127, round_half_even(x * (-127 / max))), bsums = sums of 16 (ggml's reference quantizer).
// Q8_0: d = max|x| / 127 stored as f16, q = round_half_even(x * (127 / max|x|)) (ggml-cpu's AVX2
// quantizer, which differs from ggml's scalar reference, roundf(x / d), in rare last-unit cases);
// Q8_1 adds s = f16(d * Σq). F32 is a copy. The Isa overload picks the implementation (same bytes).
void quantize_activations(TensorType weight_type, const float* x, int64_t n, void* dst);
void quantize_activations(TensorType weight_type, const float* x, int64_t n, void* dst, Isa isa);

// One row dot product of n values (a multiple of weight_block_elems; not checked here, this is
// the hot loop). `act_row` must hold activation_type(weight_type) data.
using VecDotFn = float (*)(int64_t n, const void* weight_row, const void* act_row);

// The implementation of one Isa (falls back to Scalar where that Isa has no specific kernel).
// Returns nullptr for weight types without a dot product. Used by tests and benchmarks.
VecDotFn vec_dot_kernel(TensorType weight_type, Isa isa);

// The best implementation for this CPU, chosen once. Throws for unsupported weight types.
VecDotFn vec_dot_kernel(TensorType weight_type);

// Convenience: vec_dot_kernel(weight_type)(n, weight_row, act_row).
float vec_dot(TensorType weight_type, int64_t n, const void* weight_row, const void* act_row);

// y[r] = dot(weight row r, act_row) for r < n_rows, weight rows `weight_row_stride` bytes apart:
// the body of a matrix-vector product over a range of output rows.
void vec_dot_rows(TensorType weight_type, int64_t n, int64_t n_rows, const void* weight_rows,
                  size_t weight_row_stride, const void* act_row, float* y);

// y[j] = dot(weight_row, activation row j) for j < n_act, activation rows `act_row_stride` bytes
// apart (e.g. the quantized rows of several tokens): the body of a matrix-matrix product. With
// AVX2, every quantized type expands each weight block once per 4 activation rows (F32/F16/BF16
// and the scalar path loop over vec_dot); results are bit-identical to vec_dot either way.
void vec_dot_multi(TensorType weight_type, int64_t n, const void* weight_row, const void* act_rows,
                   size_t act_row_stride, int64_t n_act, float* y);

}  // namespace peregrine::cpu::kernels
