// Quantization block formats: exact dequantization (bit-identical to ggml) and quantization
// (at least as accurate as llama.cpp's reference quantizers; in fact byte-identical to
// llama-quantize for every format with a reference file, see docs/quant-formats.md).
//
// Supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K,
// IQ4_NL, IQ4_XS. All functions are stateless and thread-safe: call them from any number of
// threads (e.g. one row range per thread). Buffers need no particular alignment.
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
// Importance is used by Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K, IQ4_NL and IQ4_XS (llama.cpp's
// weighted searches) and ignored by F32, F16, BF16, Q8_0 and Q8_K (as in llama.cpp).
// Rows are quantized independently, so splitting a tensor by rows across threads gives the
// same bytes. Throws peregrine::Error for an unsupported type or a bad n_per_row.
size_t quantize(TensorType type, const float* src, void* dst, int64_t n_rows, int64_t n_per_row,
                const float* importance = nullptr);

// Bytes of one row of n_per_row values; throws if n_per_row is not a multiple of the block size.
// Works for every GGUF type with known geometry, including ones this module cannot convert.
size_t row_bytes(TensorType type, int64_t n_per_row);

// True for the types dequantize and quantize accept.
bool is_supported(TensorType type);

// IEEE half / bfloat16 conversions as ggml does them (round to nearest even; bf16 keeps NaN quiet).
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

}  // namespace peregrine::quant
