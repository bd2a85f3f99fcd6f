// A bounds-checked little-endian reader over a GGUF image, and the metadata value decoder.
// Every read is checked against the bytes that remain, so a hostile file produces a GgufError
// naming the file and what was being read, never an out-of-bounds access.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "peregrine/gguf.h"

namespace peregrine::gguf_detail {

static_assert(std::endian::native == std::endian::little,
              "GGUF files are little-endian; this reader copies scalars as they are");

class GgufCursor {
 public:
  GgufCursor(std::span<const uint8_t> bytes, const std::string& file) : bytes_(bytes), file_(file) {}

  uint64_t position() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }
  const std::string& file() const { return file_; }

  // Throws GgufError(code) with "<file>: <message>".
  [[noreturn]] void fail(GgufErrorCode code, const std::string& message) const;

  // Reads a fixed-size scalar; Truncated when the file ends first. `what` names the field:
  // a string, or a callable returning one (so that the message is only built on failure).
  template <typename T, typename What>
  T read(const What& what) {
    if (remaining() < sizeof(T)) fail_truncated(sizeof(T), describe(what));
    T value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }

  // A GGUF string: uint64 length, then the bytes (no terminator). StringTooLong when the
  // length runs past the end of the file.
  template <typename What>
  std::string read_string(const What& what) {
    const uint64_t length = read<uint64_t>(what);
    if (length > remaining()) fail_string_too_long(length, describe(what));
    charge_memory(length, 1, what);
    std::string text(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<size_t>(length));
    pos_ += length;
    return text;
  }

  // Refuses `count` elements that need at least `min_bytes_each` bytes each when the rest of
  // the file could not hold them (CountTooLarge). Call before reserving memory for them.
  void check_count(uint64_t count, uint64_t min_bytes_each, std::string_view what) const;

  // Counts `count` objects of `object_bytes` in memory against the parse's budget and refuses
  // (CountTooLarge) past it: a decoded element is larger than its encoding (a one-byte UINT8
  // becomes a GgufValue), so the file-size bound alone would still let a 20 GB file ask for
  // ~1 TB. No real model's header comes near the budget.
  template <typename What>
  void charge_memory(uint64_t count, uint64_t object_bytes, const What& what) {
    // count is bounded by the file size already; compare by division all the same.
    if (object_bytes > 0 && count > (kMemoryBudget - memory_charged_) / object_bytes)
      fail_memory(count, describe(what));
    memory_charged_ += count * object_bytes;
  }
  static constexpr uint64_t kMemoryBudget = uint64_t{1} << 30;

 private:
  [[noreturn]] void fail_truncated(uint64_t needed, const std::string& what) const;
  [[noreturn]] void fail_string_too_long(uint64_t length, const std::string& what) const;
  [[noreturn]] void fail_memory(uint64_t count, const std::string& what) const;

  template <typename What>
  static std::string describe(const What& what) {
    if constexpr (std::is_invocable_v<What>) return what();
    else return std::string(what);
  }

  std::span<const uint8_t> bytes_;
  const std::string& file_;
  uint64_t pos_ = 0;
  uint64_t memory_charged_ = 0;
};

// The smallest number of bytes one encoded value of this type occupies (an empty string or
// empty array for the variable-size types); used to bound counts before allocating.
uint64_t min_encoded_size(GgufValueType type);

// Reads a uint32 value type id; BadValueType for an id outside the 13 GGUF types.
GgufValueType read_value_type(GgufCursor& cursor, std::string_view key);

// Decodes one value of `type` (arrays recursively, at most GgufFile::kMaxArrayNesting deep).
GgufValue read_value(GgufCursor& cursor, GgufValueType type, std::string_view key, int depth = 0);

}  // namespace peregrine::gguf_detail
