// Reading the KV cache in device code (cuda_attention.cu, cuda_flash_attention.cu): a cache row
// holds Hkv·hd values of one position in the cache's type (F32, F16 or Q8_0), rows `row_bytes`
// apart.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "peregrine/q8_0_block.h"
#include "peregrine/tensor_type.h"

namespace peregrine::cuda {

constexpr int kKvQ8Block = kQ8_0BlockValues;       // values per Q8_0 block
constexpr int kKvQ8BlockBytes = kQ8_0BlockBytes;  // fp16 scale + kKvQ8Block int8
static_assert(kKvQ8BlockBytes % 2 == 0, "the fp16 scale of every block is 2-byte aligned");

// Value `c` of KV head `kvh` in cache row `s`, decoded to float exactly as the CPU backend decodes
// it (F16: the half value; Q8_0: fp16 scale · int8).
template <TensorType kType>
__device__ __forceinline__ float cache_value(const uint8_t* base, uint64_t row_bytes, int64_t s, int kvh, int hd,
                                             int c) {
  const uint8_t* row = base + static_cast<uint64_t>(s) * row_bytes;
  const int i = kvh * hd + c;  // index in the row of Hkv·hd values
  if constexpr (kType == TensorType::F32) {
    return reinterpret_cast<const float*>(row)[i];
  } else if constexpr (kType == TensorType::F16) {
    return __half2float(reinterpret_cast<const __half*>(row)[i]);
  } else {  // Q8_0: hd is a multiple of kKvQ8Block (the callers check), so a block never straddles two heads
    const uint8_t* block = row + static_cast<int64_t>(i / kKvQ8Block) * kKvQ8BlockBytes;
    const float scale = __half2float(*reinterpret_cast<const __half*>(block));  // 2-byte aligned (see above)
    return scale * static_cast<float>(reinterpret_cast<const int8_t*>(block + 2)[i % kKvQ8Block]);
  }
}

}  // namespace peregrine::cuda
