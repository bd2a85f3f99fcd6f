// Q8_0's block (ggml's QK8_0): an fp16 scale, then 32 int8 values. The type table
// (tensor_type_info), the quantizer, the Q8_0 KV cache and the CUDA kernels that read or write
// Q8_0 rows are written against these. No dependencies, so device code includes it too.
#pragma once

namespace peregrine {

inline constexpr int kQ8_0BlockValues = 32;
inline constexpr int kQ8_0BlockBytes = 2 + kQ8_0BlockValues;  // the fp16 scale, then one int8 per value

}  // namespace peregrine
