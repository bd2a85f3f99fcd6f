// Tensor element types with the numeric ids GGUF files use (ggml's `ggml_type`).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace peregrine {

enum class TensorType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct TensorTypeInfo {
  TensorType type;
  std::string_view name;   // ggml's spelling: "f32", "q4_K", "iq4_xs", ...
  uint32_t block_elems;    // values per block (1 for plain types)
  uint32_t block_bytes;    // bytes per block
  bool dequantizable;      // our quant module can convert it to float
};

// Information for a raw GGUF type id, or nullopt for an id no GGUF writer uses.
std::optional<TensorTypeInfo> tensor_type_info(uint32_t raw_id);
TensorTypeInfo tensor_type_info(TensorType type);

// Parses ggml's name ("q4_K", case-insensitive), nullopt when unknown.
std::optional<TensorType> tensor_type_from_name(std::string_view name);

// Bytes of n values of this type; n must be a multiple of block_elems (checked by callers).
inline uint64_t tensor_bytes(const TensorTypeInfo& info, uint64_t n_elements) {
  return n_elements / info.block_elems * info.block_bytes;
}

}  // namespace peregrine
