#include "peregrine/tensor_type.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "peregrine/q8_0_block.h"

namespace peregrine {
namespace {

// Block geometry from ggml's type traits (ggml-common.h); ids are part of the GGUF format.
constexpr std::array<TensorTypeInfo, 32> kTypes{{
    {TensorType::F32, "f32", 1, 4, true},
    {TensorType::F16, "f16", 1, 2, true},
    {TensorType::Q4_0, "q4_0", 32, 18, true},
    {TensorType::Q4_1, "q4_1", 32, 20, true},
    {TensorType::Q5_0, "q5_0", 32, 22, true},
    {TensorType::Q5_1, "q5_1", 32, 24, true},
    {TensorType::Q8_0, "q8_0", kQ8_0BlockValues, kQ8_0BlockBytes, true},
    {TensorType::Q8_1, "q8_1", 32, 36, false},
    {TensorType::Q2_K, "q2_K", 256, 84, true},
    {TensorType::Q3_K, "q3_K", 256, 110, true},
    {TensorType::Q4_K, "q4_K", 256, 144, true},
    {TensorType::Q5_K, "q5_K", 256, 176, true},
    {TensorType::Q6_K, "q6_K", 256, 210, true},
    {TensorType::Q8_K, "q8_K", 256, 292, true},
    {TensorType::IQ2_XXS, "iq2_xxs", 256, 66, false},
    {TensorType::IQ2_XS, "iq2_xs", 256, 74, false},
    {TensorType::IQ3_XXS, "iq3_xxs", 256, 98, false},
    {TensorType::IQ1_S, "iq1_s", 256, 50, false},
    {TensorType::IQ4_NL, "iq4_nl", 32, 18, true},
    {TensorType::IQ3_S, "iq3_s", 256, 110, false},
    {TensorType::IQ2_S, "iq2_s", 256, 82, false},
    {TensorType::IQ4_XS, "iq4_xs", 256, 136, true},
    {TensorType::I8, "i8", 1, 1, false},
    {TensorType::I16, "i16", 1, 2, false},
    {TensorType::I32, "i32", 1, 4, false},
    {TensorType::I64, "i64", 1, 8, false},
    {TensorType::F64, "f64", 1, 8, false},
    {TensorType::IQ1_M, "iq1_m", 256, 56, false},
    {TensorType::BF16, "bf16", 1, 2, true},
    {TensorType::TQ1_0, "tq1_0", 256, 54, false},
    {TensorType::TQ2_0, "tq2_0", 256, 66, false},
    {TensorType::MXFP4, "mxfp4", 32, 17, false},
}};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::optional<TensorTypeInfo> tensor_type_info(uint32_t raw_id) {
  for (const auto& t : kTypes)
    if (static_cast<uint32_t>(t.type) == raw_id) return t;
  return std::nullopt;
}

TensorTypeInfo tensor_type_info(TensorType type) { return *tensor_type_info(static_cast<uint32_t>(type)); }

std::optional<TensorType> tensor_type_from_name(std::string_view name) {
  for (const auto& t : kTypes)
    if (iequals(t.name, name)) return t.type;
  return std::nullopt;
}

}  // namespace peregrine
