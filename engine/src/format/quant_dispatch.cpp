// peregrine::quant entry points: argument checks and the table from TensorType to its kernels.
// Everything here is stateless (the table is constexpr), so any number of threads may quantize
// or dequantize at once.
#include <array>
#include <string>

#include "format/quant_kernels.h"
#include "peregrine/error.h"
#include "peregrine/q8_0_block.h"
#include "peregrine/quant.h"

namespace peregrine::quant {
namespace {

struct Kernels {
  TensorType type;
  int64_t block_elems;
  size_t block_bytes;
  kernels::DequantizeBlocks dequantize;  // for the plain types: n elements, not blocks
  kernels::QuantizeRow quantize;
};

constexpr std::array<Kernels, 16> kKernels{{
    {TensorType::F32, 1, 4, kernels::dequantize_f32, kernels::quantize_f32},
    {TensorType::F16, 1, 2, kernels::dequantize_f16, kernels::quantize_f16},
    {TensorType::BF16, 1, 2, kernels::dequantize_bf16, kernels::quantize_bf16},
    {TensorType::Q4_0, 32, 18, kernels::dequantize_q4_0, kernels::quantize_q4_0},
    {TensorType::Q4_1, 32, 20, kernels::dequantize_q4_1, kernels::quantize_q4_1},
    {TensorType::Q5_0, 32, 22, kernels::dequantize_q5_0, kernels::quantize_q5_0},
    {TensorType::Q5_1, 32, 24, kernels::dequantize_q5_1, kernels::quantize_q5_1},
    {TensorType::Q8_0, kQ8_0BlockValues, kQ8_0BlockBytes, kernels::dequantize_q8_0, kernels::quantize_q8_0},
    {TensorType::Q2_K, 256, 84, kernels::dequantize_q2_k, kernels::quantize_q2_k},
    {TensorType::Q3_K, 256, 110, kernels::dequantize_q3_k, kernels::quantize_q3_k},
    {TensorType::Q4_K, 256, 144, kernels::dequantize_q4_k, kernels::quantize_q4_k},
    {TensorType::Q5_K, 256, 176, kernels::dequantize_q5_k, kernels::quantize_q5_k},
    {TensorType::Q6_K, 256, 210, kernels::dequantize_q6_k, kernels::quantize_q6_k},
    {TensorType::Q8_K, 256, 292, kernels::dequantize_q8_k, kernels::quantize_q8_k},
    {TensorType::IQ4_NL, 32, 18, kernels::dequantize_iq4_nl, kernels::quantize_iq4_nl},
    {TensorType::IQ4_XS, 256, 136, kernels::dequantize_iq4_xs, kernels::quantize_iq4_xs},
}};
// Q8_1 and the IQ1/IQ2/IQ3/TQ/MXFP4 families are not supported (no table entry).

std::string type_name(TensorType type) {
  if (auto info = tensor_type_info(static_cast<uint32_t>(type))) return std::string(info->name);
  return "type id " + std::to_string(static_cast<uint32_t>(type));
}

const Kernels& kernels_for(TensorType type, const char* operation, int64_t n) {
  for (const auto& k : kKernels)
    if (k.type == type) return k;
  throw Error("quant::" + std::string(operation) + ": tensor type " + type_name(type) + " (n = " + std::to_string(n) +
              ") is not supported (supported: f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_K, q3_K, q4_K, "
              "q5_K, q6_K, q8_K, iq4_nl, iq4_xs)");
}

void check_multiple(const Kernels& k, int64_t n, const char* operation, const char* what) {
  if (n < 0 || n % k.block_elems != 0)
    throw Error("quant::" + std::string(operation) + ": " + what + " = " + std::to_string(n) + " is not a " +
                "non-negative multiple of the " + type_name(k.type) + " block size " + std::to_string(k.block_elems));
}

}  // namespace

void dequantize(TensorType type, const void* src, float* dst, int64_t n) {
  const Kernels& k = kernels_for(type, "dequantize", n);
  check_multiple(k, n, "dequantize", "n");
  if (n == 0) return;
  if (!src || !dst) throw Error("quant::dequantize: null buffer for " + type_name(type) + " with n = " + std::to_string(n));
  k.dequantize(static_cast<const uint8_t*>(src), dst, n / k.block_elems);
}

size_t quantize(TensorType type, const float* src, void* dst, int64_t n_rows, int64_t n_per_row, const float* importance) {
  const Kernels& k = kernels_for(type, "quantize", n_per_row);
  check_multiple(k, n_per_row, "quantize", "n_per_row");
  if (n_rows < 0)
    throw Error("quant::quantize: n_rows = " + std::to_string(n_rows) + " is negative for " + type_name(type));
  const size_t row_size = static_cast<size_t>(n_per_row / k.block_elems) * k.block_bytes;
  if (n_rows == 0 || n_per_row == 0) return static_cast<size_t>(n_rows) * row_size;
  if (!src || !dst)
    throw Error("quant::quantize: null buffer for " + type_name(type) + " with " + std::to_string(n_rows) + " rows of " +
                std::to_string(n_per_row));
  auto* out = static_cast<uint8_t*>(dst);
  for (int64_t row = 0; row < n_rows; ++row)
    k.quantize(src + row * n_per_row, out + static_cast<size_t>(row) * row_size, n_per_row, importance);
  return static_cast<size_t>(n_rows) * row_size;
}

bool is_supported(TensorType type) {
  for (const auto& k : kKernels)
    if (k.type == type) return true;
  return false;
}

size_t row_bytes(TensorType type, int64_t n_per_row) {
  // Geometry is known for every GGUF type, including ones this module cannot convert.
  const auto info = tensor_type_info(static_cast<uint32_t>(type));
  if (!info) throw Error("quant::row_bytes: unknown tensor " + type_name(type));
  if (n_per_row < 0 || n_per_row % info->block_elems != 0)
    throw Error("quant::row_bytes: n_per_row = " + std::to_string(n_per_row) + " is not a non-negative multiple of the " +
                type_name(type) + " block size " + std::to_string(info->block_elems));
  return static_cast<size_t>(n_per_row / info->block_elems) * info->block_bytes;
}

}  // namespace peregrine::quant
