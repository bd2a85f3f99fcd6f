// GgufValue: conversions between the 13 GGUF value types and the display form used by `inspect`.
#include <fmt/format.h>

#include <limits>

#include "peregrine/gguf.h"

namespace peregrine {

std::string_view gguf_value_type_name(GgufValueType type) {
  switch (type) {
    case GgufValueType::UINT8: return "UINT8";
    case GgufValueType::INT8: return "INT8";
    case GgufValueType::UINT16: return "UINT16";
    case GgufValueType::INT16: return "INT16";
    case GgufValueType::UINT32: return "UINT32";
    case GgufValueType::INT32: return "INT32";
    case GgufValueType::FLOAT32: return "FLOAT32";
    case GgufValueType::BOOL: return "BOOL";
    case GgufValueType::STRING: return "STRING";
    case GgufValueType::ARRAY: return "ARRAY";
    case GgufValueType::UINT64: return "UINT64";
    case GgufValueType::INT64: return "INT64";
    case GgufValueType::FLOAT64: return "FLOAT64";
  }
  return "UNKNOWN";
}

std::string_view gguf_error_code_name(GgufErrorCode code) {
  switch (code) {
    case GgufErrorCode::Io: return "Io";
    case GgufErrorCode::BadMagic: return "BadMagic";
    case GgufErrorCode::UnsupportedVersion: return "UnsupportedVersion";
    case GgufErrorCode::Truncated: return "Truncated";
    case GgufErrorCode::CountTooLarge: return "CountTooLarge";
    case GgufErrorCode::StringTooLong: return "StringTooLong";
    case GgufErrorCode::BadValueType: return "BadValueType";
    case GgufErrorCode::DuplicateKey: return "DuplicateKey";
    case GgufErrorCode::DuplicateTensor: return "DuplicateTensor";
    case GgufErrorCode::BadAlignment: return "BadAlignment";
    case GgufErrorCode::BadDims: return "BadDims";
    case GgufErrorCode::UnknownTensorType: return "UnknownTensorType";
    case GgufErrorCode::BadTensorShape: return "BadTensorShape";
    case GgufErrorCode::BadTensorOffset: return "BadTensorOffset";
    case GgufErrorCode::OverlappingTensors: return "OverlappingTensors";
    case GgufErrorCode::MissingKey: return "MissingKey";
    case GgufErrorCode::WrongKeyType: return "WrongKeyType";
  }
  return "Unknown";
}

GgufValue GgufValue::array(GgufValueType element_type, std::vector<GgufValue> elements) {
  for (size_t i = 0; i < elements.size(); ++i)
    if (elements[i].type() != element_type)
      throw GgufError(GgufErrorCode::BadValueType,
                      fmt::format("GGUF array of {}: element {} is a {}", gguf_value_type_name(element_type),
                                  i, gguf_value_type_name(elements[i].type())));
  auto storage = std::make_shared<GgufArray>(GgufArray{element_type, std::move(elements)});
  return {GgufValueType::ARRAY, std::move(storage)};
}

bool GgufValue::is_integer() const {
  switch (type_) {
    case GgufValueType::UINT8:
    case GgufValueType::INT8:
    case GgufValueType::UINT16:
    case GgufValueType::INT16:
    case GgufValueType::UINT32:
    case GgufValueType::INT32:
    case GgufValueType::UINT64:
    case GgufValueType::INT64: return true;
    default: return false;
  }
}

bool GgufValue::is_float() const {
  return type_ == GgufValueType::FLOAT32 || type_ == GgufValueType::FLOAT64;
}

// The storage alternative is checked, not assumed: a value built with the public constructor
// may pair a type with the wrong alternative, and then the conversions answer nullopt.
std::optional<uint64_t> GgufValue::as_u64() const {
  if (!is_integer()) return std::nullopt;
  if (const auto* u = std::get_if<uint64_t>(&storage_)) return *u;
  if (const auto* s = std::get_if<int64_t>(&storage_); s && *s >= 0) return static_cast<uint64_t>(*s);
  return std::nullopt;
}

std::optional<int64_t> GgufValue::as_i64() const {
  if (!is_integer()) return std::nullopt;
  if (const auto* s = std::get_if<int64_t>(&storage_)) return *s;
  if (const auto* u = std::get_if<uint64_t>(&storage_);
      u && *u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return static_cast<int64_t>(*u);
  return std::nullopt;
}

std::optional<double> GgufValue::as_f64() const {
  if (is_float()) {
    if (const auto* d = std::get_if<double>(&storage_)) return *d;
    return std::nullopt;
  }
  if (!is_integer()) return std::nullopt;
  if (const auto* u = std::get_if<uint64_t>(&storage_)) return static_cast<double>(*u);
  if (const auto* s = std::get_if<int64_t>(&storage_)) return static_cast<double>(*s);
  return std::nullopt;
}

std::optional<bool> GgufValue::as_bool() const {
  if (type_ != GgufValueType::BOOL) return std::nullopt;
  if (const auto* b = std::get_if<bool>(&storage_)) return *b;
  return std::nullopt;
}

const std::string* GgufValue::as_string() const {
  if (type_ != GgufValueType::STRING) return nullptr;
  return std::get_if<std::string>(&storage_);
}

const GgufArray* GgufValue::as_array() const {
  if (type_ != GgufValueType::ARRAY) return nullptr;
  const auto* array = std::get_if<std::shared_ptr<GgufArray>>(&storage_);
  return array ? array->get() : nullptr;
}

namespace {

// Strings longer than this are cut in the display form (chat templates run to kilobytes).
constexpr size_t kMaxDisplayedStringBytes = 160;

void append_quoted(std::string& out, const std::string& text) {
  size_t shown = text.size();
  if (shown > kMaxDisplayedStringBytes) {
    shown = kMaxDisplayedStringBytes;
    // Do not cut a UTF-8 sequence in half: back up over continuation bytes.
    while (shown > 0 && (static_cast<unsigned char>(text[shown]) & 0xC0) == 0x80) --shown;
  }
  out += '"';
  for (size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7F) out += fmt::format("\\x{:02x}", c);
        else out += static_cast<char>(c);
    }
  }
  out += '"';
  if (shown < text.size()) out += fmt::format("... ({} bytes)", text.size());
}

}  // namespace

std::string GgufValue::to_display_string(size_t max_elements) const {
  switch (type_) {
    case GgufValueType::UINT8:
    case GgufValueType::UINT16:
    case GgufValueType::UINT32:
    case GgufValueType::UINT64:
    case GgufValueType::INT8:
    case GgufValueType::INT16:
    case GgufValueType::INT32:
    case GgufValueType::INT64:
      if (const auto* u = std::get_if<uint64_t>(&storage_)) return fmt::format("{}", *u);
      if (const auto* s = std::get_if<int64_t>(&storage_)) return fmt::format("{}", *s);
      return "?";
    // Shortest round-trip form at the stored precision: a FLOAT32 1e-6 shows as "1e-06".
    case GgufValueType::FLOAT32:
      if (const auto* d = std::get_if<double>(&storage_)) return fmt::format("{}", static_cast<float>(*d));
      return "?";
    case GgufValueType::FLOAT64:
      if (const auto* d = std::get_if<double>(&storage_)) return fmt::format("{}", *d);
      return "?";
    case GgufValueType::BOOL:
      if (const auto b = as_bool()) return *b ? "true" : "false";
      return "?";
    case GgufValueType::STRING: {
      const std::string* text = as_string();
      if (!text) return "?";
      std::string out;
      append_quoted(out, *text);
      return out;
    }
    case GgufValueType::ARRAY: {
      const GgufArray* array = as_array();
      if (!array) return "[]";
      std::string out = "[";
      const size_t n = array->elements.size();
      const size_t shown = std::min(n, max_elements);
      for (size_t i = 0; i < shown; ++i) {
        if (i) out += ", ";
        out += array->elements[i].to_display_string(max_elements);
      }
      if (shown < n) out += fmt::format("{}... ({} {} total)", shown ? ", " : "", n,
                                        gguf_value_type_name(array->element_type));
      out += "]";
      return out;
    }
  }
  return "?";
}

}  // namespace peregrine
