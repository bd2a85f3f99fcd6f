#include "format/gguf_parse.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "format/gguf_cursor.h"
#include "peregrine/log.h"

namespace peregrine::gguf_detail {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
// Smallest possible encodings, used to bound the header's counts before anything is reserved:
// a key-value pair is an empty key (8), a type (4) and a one-byte value; a tensor info is an
// empty name (8), n_dims (4), one dim (8), a type (4) and an offset (8).
constexpr uint64_t kMinKeyValueBytes = 8 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;

void read_header(GgufCursor& cursor, ParsedGguf& out, uint64_t& n_tensors, uint64_t& n_kv) {
  if (cursor.remaining() < sizeof(uint32_t))
    cursor.fail(GgufErrorCode::Truncated,
                fmt::format("truncated file: {} bytes is too short for the GGUF magic", cursor.remaining()));
  const auto magic = cursor.read<uint32_t>("the magic");
  if (magic != kMagic)
    cursor.fail(GgufErrorCode::BadMagic,
                fmt::format("not a GGUF file: expected the magic bytes 'GGUF' (47 47 55 46), found "
                            "{:02x} {:02x} {:02x} {:02x}",
                            magic & 0xFF, (magic >> 8) & 0xFF, (magic >> 16) & 0xFF, magic >> 24));
  out.version = cursor.read<uint32_t>("the version");
  if (out.version == 1)
    cursor.fail(GgufErrorCode::UnsupportedVersion,
                "GGUF version 1 (32-bit counts, 2023) is not supported; expected version 2 or 3 "
                "(re-convert the model)");
  if (out.version != 2 && out.version != 3) {
    const uint32_t swapped = __builtin_bswap32(out.version);
    if (swapped >= 1 && swapped <= 3)
      cursor.fail(GgufErrorCode::UnsupportedVersion,
                  fmt::format("this is a big-endian GGUF file (version {} byte-swapped); only "
                              "little-endian files are supported",
                              swapped));
    cursor.fail(GgufErrorCode::UnsupportedVersion,
                fmt::format("unsupported GGUF version {}; expected 2 or 3", out.version));
  }
  n_tensors = cursor.read<uint64_t>("the tensor count");
  n_kv = cursor.read<uint64_t>("the metadata key-value count");
  cursor.check_count(n_kv, kMinKeyValueBytes, "the metadata key-value count");
  cursor.check_count(n_tensors, kMinTensorInfoBytes, "the tensor count");
  // Both fit on their own; together they must fit too (no overflow: each term <= remaining).
  if (n_kv * kMinKeyValueBytes + n_tensors * kMinTensorInfoBytes > cursor.remaining())
    cursor.fail(GgufErrorCode::CountTooLarge,
                fmt::format("{} metadata entries and {} tensor infos cannot fit in the {} bytes "
                            "that follow the header",
                            n_kv, n_tensors, cursor.remaining()));
}

void check_alignment_value(GgufCursor& cursor, const GgufValue& value, ParsedGguf& out) {
  if (value.type() != GgufValueType::UINT32)
    cursor.fail(GgufErrorCode::BadAlignment,
                fmt::format("key 'general.alignment' must be a UINT32, found a {}",
                            gguf_value_type_name(value.type())));
  const uint64_t alignment = value.as_u64().value_or(0);
  if (!std::has_single_bit(alignment))
    cursor.fail(GgufErrorCode::BadAlignment,
                fmt::format("key 'general.alignment' is {}; expected a power of two", alignment));
  out.alignment = alignment;
}

void read_metadata(GgufCursor& cursor, uint64_t n_kv, ParsedGguf& out) {
  cursor.charge_memory(n_kv, sizeof(std::pair<std::string, GgufValue>), "the metadata");
  out.metadata.reserve(static_cast<size_t>(n_kv));
  std::unordered_map<std::string, uint64_t> index;
  index.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = cursor.read_string([&] { return fmt::format("the key of metadata entry #{}", i); });
    const GgufValueType type = read_value_type(cursor, key);
    GgufValue value = read_value(cursor, type, key);
    if (auto [it, inserted] = index.emplace(key, i); !inserted)
      cursor.fail(GgufErrorCode::DuplicateKey,
                  fmt::format("duplicate metadata key '{}' (entries #{} and #{}); keys must be unique",
                              key, it->second, i));
    if (key == "general.alignment") check_alignment_value(cursor, value, out);
    out.metadata.emplace_back(std::move(key), std::move(value));
  }
}

GgufTensorInfo read_tensor_info(GgufCursor& cursor, uint64_t i) {
  GgufTensorInfo t;
  t.name = cursor.read_string([&] { return fmt::format("the name of tensor #{}", i); });
  const std::string& name = t.name;
  const auto n_dims = cursor.read<uint32_t>([&] { return fmt::format("n_dims of tensor '{}'", name); });
  if (n_dims == 0 || n_dims > GgufFile::kMaxDims)
    cursor.fail(GgufErrorCode::BadDims,
                fmt::format("tensor '{}' has {} dimensions; expected 1 to {}", name, n_dims, GgufFile::kMaxDims));
  t.ne.reserve(n_dims);
  int64_t n_elements = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    const auto dim = cursor.read<uint64_t>([&] { return fmt::format("dimension {} of tensor '{}'", d, name); });
    if (dim == 0 || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      cursor.fail(GgufErrorCode::BadDims,
                  fmt::format("tensor '{}': dimension {} is {} (as int64 {}); expected a positive size",
                              name, d, dim, static_cast<int64_t>(dim)));
    if (__builtin_mul_overflow(n_elements, static_cast<int64_t>(dim), &n_elements))
      cursor.fail(GgufErrorCode::BadDims,
                  fmt::format("tensor '{}': the element count overflows 64 bits at dimension {} ({})",
                              name, d, dim));
    t.ne.push_back(static_cast<int64_t>(dim));
  }
  t.n_elements = n_elements;

  const auto raw_type = cursor.read<uint32_t>([&] { return fmt::format("the type of tensor '{}'", name); });
  const auto type_info = tensor_type_info(raw_type);
  if (!type_info)
    cursor.fail(GgufErrorCode::UnknownTensorType,
                fmt::format("tensor '{}' has unknown ggml type id {}", name, raw_type));
  t.type = type_info->type;
  if (t.ne[0] % type_info->block_elems != 0)
    cursor.fail(GgufErrorCode::BadTensorShape,
                fmt::format("tensor '{}' of type {}: row length ne[0] = {} is not a multiple of the "
                            "block size {}",
                            name, type_info->name, t.ne[0], type_info->block_elems));
  const uint64_t n_blocks = static_cast<uint64_t>(n_elements) / type_info->block_elems;
  if (__builtin_mul_overflow(n_blocks, uint64_t{type_info->block_bytes}, &t.n_bytes))
    cursor.fail(GgufErrorCode::BadDims,
                fmt::format("tensor '{}': {} elements of {} overflow a 64-bit byte count", name,
                            n_elements, type_info->name));
  t.offset = cursor.read<uint64_t>([&] { return fmt::format("the data offset of tensor '{}'", name); });
  return t;
}

void read_tensor_infos(GgufCursor& cursor, uint64_t n_tensors, ParsedGguf& out) {
  cursor.charge_memory(n_tensors, sizeof(GgufTensorInfo), "the tensor infos");
  out.tensors.reserve(static_cast<size_t>(n_tensors));
  std::unordered_map<std::string, uint64_t> index;
  index.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t = read_tensor_info(cursor, i);
    if (auto [it, inserted] = index.emplace(t.name, i); !inserted)
      cursor.fail(GgufErrorCode::DuplicateTensor,
                  fmt::format("duplicate tensor name '{}' (tensors #{} and #{})", t.name, it->second, i));
    out.tensors.push_back(std::move(t));
  }
}

// Places every tensor in the data section: aligned, inside the file, no two sharing a byte.
void place_tensors(GgufCursor& cursor, std::span<const uint8_t> bytes, ParsedGguf& out) {
  const uint64_t file_size = bytes.size();
  const uint64_t data_size = file_size > out.data_offset ? file_size - out.data_offset : 0;
  for (auto& t : out.tensors) {
    if (t.offset % out.alignment != 0)
      cursor.fail(GgufErrorCode::BadTensorOffset,
                  fmt::format("tensor '{}': data offset {} is not a multiple of the alignment {}",
                              t.name, t.offset, out.alignment));
    if (t.offset > data_size || t.n_bytes > data_size - t.offset)
      cursor.fail(GgufErrorCode::BadTensorOffset,
                  fmt::format("tensor '{}': {} bytes at data offset {} (file offset {}) run past the "
                              "end of the file ({} bytes, data section of {} bytes at {})",
                              t.name, t.n_bytes, t.offset, out.data_offset + t.offset, file_size,
                              data_size, out.data_offset));
    t.data = bytes.data() + out.data_offset + t.offset;
  }
  std::vector<size_t> order(out.tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return out.tensors[a].offset < out.tensors[b].offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const auto& prev = out.tensors[order[i - 1]];
    const auto& next = out.tensors[order[i]];
    if (prev.offset + prev.n_bytes > next.offset)  // no overflow: both checked against data_size
      cursor.fail(GgufErrorCode::OverlappingTensors,
                  fmt::format("tensors '{}' (bytes {}..{}) and '{}' (from {}) overlap in the data section",
                              prev.name, prev.offset, prev.offset + prev.n_bytes, next.name, next.offset));
  }
}

}  // namespace

ParsedGguf parse_gguf(std::span<const uint8_t> bytes, const std::string& display_name) {
  GgufCursor cursor(bytes, display_name);
  ParsedGguf out;
  uint64_t n_tensors = 0;
  uint64_t n_kv = 0;
  read_header(cursor, out, n_tensors, n_kv);
  read_metadata(cursor, n_kv, out);
  read_tensor_infos(cursor, n_tensors, out);
  // The data section starts at the first aligned offset after the tensor infos (no overflow:
  // the position is at most the file size and the alignment at most 2^31).
  out.data_offset = (cursor.position() + out.alignment - 1) / out.alignment * out.alignment;
  place_tensors(cursor, bytes, out);
  log::get("gguf")->debug("{}: GGUF v{}, {} metadata keys, {} tensors, alignment {}, data at offset {} of {}",
                          display_name, out.version, out.metadata.size(), out.tensors.size(),
                          out.alignment, out.data_offset, bytes.size());
  return out;
}

}  // namespace peregrine::gguf_detail
