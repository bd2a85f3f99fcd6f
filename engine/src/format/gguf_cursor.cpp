#include "format/gguf_cursor.h"

#include <fmt/format.h>

namespace peregrine::gguf_detail {

void GgufCursor::fail(GgufErrorCode code, const std::string& message) const {
  throw GgufError(code, fmt::format("{}: {}", file_, message));
}

void GgufCursor::fail_truncated(uint64_t needed, const std::string& what) const {
  fail(GgufErrorCode::Truncated,
       fmt::format("truncated file: {} needs {} bytes at offset {} but the file ends after {} more "
                   "(file size {})",
                   what, needed, pos_, remaining(), bytes_.size()));
}

void GgufCursor::fail_string_too_long(uint64_t length, const std::string& what) const {
  fail(GgufErrorCode::StringTooLong,
       fmt::format("{} is a string of {} bytes (length at offset {}), but only {} bytes remain in "
                   "the file",
                   what, length, pos_ - sizeof(uint64_t), remaining()));
}

void GgufCursor::check_count(uint64_t count, uint64_t min_bytes_each, std::string_view what) const {
  // Division instead of multiplication: count * min_bytes_each may overflow for 2^62 entries.
  if (min_bytes_each > 0 && count > remaining() / min_bytes_each)
    fail(GgufErrorCode::CountTooLarge,
         fmt::format("{} claims {} entries of at least {} bytes each, but only {} bytes remain "
                     "after offset {}",
                     what, count, min_bytes_each, remaining(), pos_));
}

void GgufCursor::fail_memory(uint64_t count, const std::string& what) const {
  fail(GgufErrorCode::CountTooLarge,
       fmt::format("{} ({} entries, read up to offset {}) would take the decoded header past {} MiB of "
                   "memory; no real GGUF header needs that much",
                   what, count, pos_, kMemoryBudget >> 20));
}

uint64_t min_encoded_size(GgufValueType type) {
  switch (type) {
    case GgufValueType::UINT8:
    case GgufValueType::INT8:
    case GgufValueType::BOOL: return 1;
    case GgufValueType::UINT16:
    case GgufValueType::INT16: return 2;
    case GgufValueType::UINT32:
    case GgufValueType::INT32:
    case GgufValueType::FLOAT32: return 4;
    case GgufValueType::UINT64:
    case GgufValueType::INT64:
    case GgufValueType::FLOAT64:
    case GgufValueType::STRING: return 8;                     // the length of an empty string
    case GgufValueType::ARRAY: return 4 + 8;                  // element type + zero count
  }
  return 1;
}

GgufValueType read_value_type(GgufCursor& cursor, std::string_view key) {
  const uint64_t at = cursor.position();
  const auto raw = cursor.read<uint32_t>([&] { return fmt::format("the value type of key '{}'", key); });
  if (raw > static_cast<uint32_t>(GgufValueType::FLOAT64))
    cursor.fail(GgufErrorCode::BadValueType,
                fmt::format("key '{}': unknown value type {} at offset {} (expected 0..12)", key, raw, at));
  return static_cast<GgufValueType>(raw);
}

namespace {

GgufValue read_array(GgufCursor& cursor, std::string_view key, int depth) {
  if (depth >= GgufFile::kMaxArrayNesting)
    cursor.fail(GgufErrorCode::BadValueType,
                fmt::format("key '{}': arrays nested more than {} deep at offset {}", key,
                            GgufFile::kMaxArrayNesting, cursor.position()));
  const GgufValueType element_type = read_value_type(cursor, key);
  const auto count =
      cursor.read<uint64_t>([&] { return fmt::format("the element count of array '{}'", key); });
  cursor.check_count(count, min_encoded_size(element_type),
                     fmt::format("array '{}' of {}", key, gguf_value_type_name(element_type)));
  cursor.charge_memory(count, sizeof(GgufValue), [&] { return fmt::format("array '{}'", key); });
  auto array = std::make_shared<GgufArray>();
  array->element_type = element_type;
  array->elements.reserve(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; ++i)
    array->elements.push_back(read_value(cursor, element_type, key, depth + 1));
  return GgufValue(GgufValueType::ARRAY, std::move(array));
}

}  // namespace

GgufValue read_value(GgufCursor& cursor, GgufValueType type, std::string_view key, int depth) {
  auto what = [&] { return fmt::format("the {} value of key '{}'", gguf_value_type_name(type), key); };
  switch (type) {
    case GgufValueType::UINT8: return GgufValue::u8(cursor.read<uint8_t>(what));
    case GgufValueType::INT8: return GgufValue::i8(cursor.read<int8_t>(what));
    case GgufValueType::UINT16: return GgufValue::u16(cursor.read<uint16_t>(what));
    case GgufValueType::INT16: return GgufValue::i16(cursor.read<int16_t>(what));
    case GgufValueType::UINT32: return GgufValue::u32(cursor.read<uint32_t>(what));
    case GgufValueType::INT32: return GgufValue::i32(cursor.read<int32_t>(what));
    case GgufValueType::FLOAT32: return GgufValue::f32(cursor.read<float>(what));
    // Any non-zero byte is true, as in ggml and gguf-py.
    case GgufValueType::BOOL: return GgufValue::boolean(cursor.read<uint8_t>(what) != 0);
    case GgufValueType::STRING: return GgufValue::string(cursor.read_string(what));
    case GgufValueType::ARRAY: return read_array(cursor, key, depth);
    case GgufValueType::UINT64: return GgufValue::u64(cursor.read<uint64_t>(what));
    case GgufValueType::INT64: return GgufValue::i64(cursor.read<int64_t>(what));
    case GgufValueType::FLOAT64: return GgufValue::f64(cursor.read<double>(what));
  }
  cursor.fail(GgufErrorCode::BadValueType, fmt::format("key '{}': unknown value type", key));
}

}  // namespace peregrine::gguf_detail
