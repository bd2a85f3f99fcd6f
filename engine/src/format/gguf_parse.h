// Parses and validates a complete GGUF image held in memory (a mapping or a caller's buffer).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "peregrine/gguf.h"

namespace peregrine::gguf_detail {

struct ParsedGguf {
  uint32_t version = 0;
  uint64_t alignment = GgufFile::kDefaultAlignment;
  uint64_t data_offset = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata;
  std::vector<GgufTensorInfo> tensors;  // data pointers point into `bytes`
};

// Throws GgufError naming `display_name` and the offending key/tensor.
ParsedGguf parse_gguf(std::span<const uint8_t> bytes, const std::string& display_name);

}  // namespace peregrine::gguf_detail
