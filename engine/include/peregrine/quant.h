// Quantization block formats: exact dequantization (bit-identical to ggml) and quantization
// (at least as accurate as llama.cpp's reference quantizers).
#pragma once

#include <cstddef>
#include <cstdint>

#include "peregrine/tensor_type.h"

namespace peregrine::quant {

// Converts n values (n a multiple of the type's block size) stored as `type` to float.
// Throws peregrine::Error for types that are not dequantizable or a bad n.
void dequantize(TensorType type, const void* src, float* dst, int64_t n);

// Quantizes n_rows rows of n_per_row floats into `dst` (rows laid out one after another,
// as in a GGUF tensor). `importance` (optional, n_per_row weights) steers the K/I-quant
// searches the way llama.cpp's imatrix does. Returns the bytes written.
size_t quantize(TensorType type, const float* src, void* dst, int64_t n_rows, int64_t n_per_row,
                const float* importance = nullptr);

// Bytes of one row of n_per_row values; throws if n_per_row is not a multiple of the block size.
size_t row_bytes(TensorType type, int64_t n_per_row);

// IEEE half / bfloat16 conversions as ggml does them (round to nearest even; bf16 keeps NaN quiet).
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

}  // namespace peregrine::quant
