// GGUF v2/v3: a validating, memory-mapped reader and a streaming writer.
//
// The reader checks everything before it trusts it (magic, version, counts, string lengths,
// dims, offsets, overlaps, types) and never allocates more than the file could describe, so a
// truncated or hostile file yields a GgufError naming the file and the key/tensor, never a crash.
// Tensor data are views into the mapping; nothing is copied.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "peregrine/error.h"
#include "peregrine/tensor_type.h"

namespace peregrine {

// Why a file was refused; tests assert on these, messages are for people.
enum class GgufErrorCode {
  Io,                  // cannot open / stat / map
  BadMagic,
  UnsupportedVersion,
  Truncated,           // a read ran past the end of the file
  CountTooLarge,       // tensor / metadata / array counts that the file cannot possibly hold
  StringTooLong,       // a string length past the end of the file
  BadValueType,        // unknown metadata value type (or nested array of a bad type)
  DuplicateKey,
  DuplicateTensor,
  BadAlignment,        // general.alignment not a power of two / wrong type
  BadDims,             // n_dims out of range, a dim <= 0, or an element count that overflows
  UnknownTensorType,
  BadTensorShape,      // row length not a multiple of the type's block size
  BadTensorOffset,     // misaligned, outside the data section, or data past the end of the file
  OverlappingTensors,
  MissingKey,          // typed getters: key absent
  WrongKeyType,        // typed getters: key present with another type
};

// The enumerator's name ("BadMagic", ...), for messages, tests and the corrupt-file README.
std::string_view gguf_error_code_name(GgufErrorCode code);

class GgufError : public Error {
 public:
  GgufError(GgufErrorCode code, const std::string& message) : Error(message), code_(code) {}
  GgufErrorCode code() const { return code_; }

 private:
  GgufErrorCode code_;
};

enum class GgufValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
std::string_view gguf_value_type_name(GgufValueType type);

struct GgufArray;

// One metadata value. Arrays hold their element type and elements (arrays may nest).
class GgufValue {
 public:
  using Storage = std::variant<uint64_t, int64_t, double, bool, std::string, std::shared_ptr<GgufArray>>;

  GgufValue() = default;
  GgufValue(GgufValueType type, Storage storage) : type_(type), storage_(std::move(storage)) {}

  static GgufValue u8(uint8_t v) { return {GgufValueType::UINT8, uint64_t{v}}; }
  static GgufValue i8(int8_t v) { return {GgufValueType::INT8, int64_t{v}}; }
  static GgufValue u16(uint16_t v) { return {GgufValueType::UINT16, uint64_t{v}}; }
  static GgufValue i16(int16_t v) { return {GgufValueType::INT16, int64_t{v}}; }
  static GgufValue u32(uint32_t v) { return {GgufValueType::UINT32, uint64_t{v}}; }
  static GgufValue i32(int32_t v) { return {GgufValueType::INT32, int64_t{v}}; }
  static GgufValue u64(uint64_t v) { return {GgufValueType::UINT64, v}; }
  static GgufValue i64(int64_t v) { return {GgufValueType::INT64, v}; }
  static GgufValue f32(float v) { return {GgufValueType::FLOAT32, double{v}}; }
  static GgufValue f64(double v) { return {GgufValueType::FLOAT64, v}; }
  static GgufValue boolean(bool v) { return {GgufValueType::BOOL, v}; }
  static GgufValue string(std::string v) { return {GgufValueType::STRING, std::move(v)}; }
  static GgufValue array(GgufValueType element_type, std::vector<GgufValue> elements);

  GgufValueType type() const { return type_; }
  bool is_integer() const;   // any of the 8 integer types
  bool is_float() const;     // FLOAT32 / FLOAT64

  // Conversions; each returns nullopt when the value is of another kind or out of range.
  std::optional<uint64_t> as_u64() const;
  std::optional<int64_t> as_i64() const;
  std::optional<double> as_f64() const;   // floats and integers
  std::optional<bool> as_bool() const;
  const std::string* as_string() const;
  const GgufArray* as_array() const;

  // A one-line rendering for `inspect` (long arrays abbreviated).
  std::string to_display_string(size_t max_elements = 8) const;

 private:
  GgufValueType type_ = GgufValueType::UINT8;
  Storage storage_{uint64_t{0}};
};

struct GgufArray {
  GgufValueType element_type;
  std::vector<GgufValue> elements;
};

struct GgufTensorInfo {
  std::string name;
  TensorType type;
  std::vector<int64_t> ne;      // ggml order: ne[0] is the contiguous dimension
  uint64_t offset = 0;          // relative to the data section
  uint64_t n_bytes = 0;
  int64_t n_elements = 0;
  const uint8_t* data = nullptr;  // view into the mapping (or buffer), valid while the GgufFile lives
};

class GgufFile {
 public:
  static constexpr uint64_t kDefaultAlignment = 32;  // when general.alignment is absent
  static constexpr uint32_t kMaxDims = 4;             // ggml's GGML_MAX_DIMS
  static constexpr int kMaxArrayNesting = 16;         // arrays inside arrays deeper than this are refused

  // Maps and validates a file. Throws GgufError.
  static GgufFile open(const std::filesystem::path& path);
  // Validates an in-memory image (the fuzzer and tests use this); `bytes` must outlive the result.
  static GgufFile from_memory(std::span<const uint8_t> bytes, std::string display_name = "<memory>");

  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  ~GgufFile();

  const std::string& display_name() const;  // the path, for messages
  uint32_t version() const;
  uint64_t alignment() const;
  uint64_t data_offset() const;  // absolute file offset of the tensor data section
  uint64_t file_size() const;
  // The whole validated image (the mapping, or the caller's buffer); tensor data lie inside it.
  std::span<const uint8_t> bytes() const;

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const;
  const GgufValue* find(std::string_view key) const;

  // Typed getters: throw GgufError(MissingKey / WrongKeyType) naming file and key.
  uint64_t get_u64(std::string_view key) const;
  int64_t get_i64(std::string_view key) const;
  double get_f64(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  const std::string& get_string(std::string_view key) const;
  const GgufArray& get_array(std::string_view key) const;
  // Array of integers (any integer element type) / strings.
  std::vector<int64_t> get_int_array(std::string_view key) const;
  std::vector<std::string> get_string_array(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const;
  const GgufTensorInfo* find_tensor(std::string_view name) const;

 private:
  struct Impl;
  explicit GgufFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Writes a GGUF v3 file in one pass without holding tensor data in memory:
//   1. set metadata and declare every tensor (name, type, ne);
//   2. begin() writes header, metadata and tensor infos;
//   3. write_tensor_data() for each tensor, in declaration order (may be called in several
//      pieces per tensor; the writer checks sizes and pads to the alignment);
//   4. finish() flushes and closes, throwing on any I/O error (e.g. a full disk).
// The files load in llama.cpp (same layout rules as gguf-py / ggml): metadata in `set` order,
// tensor infos in declaration order, the data section and every tensor's data padded with zeros
// to the alignment. An alignment other than 32 is recorded as general.alignment (UINT32).
// The bytes go to "<path>.tmp" and are renamed to `path` only by a successful finish(),
// so a failed or abandoned write never leaves a half file under the final name. (When `path`
// is an existing device such as /dev/null or /dev/full, it is written directly.)
// Misuse (wrong order, wrong byte counts, bad shapes) throws peregrine::Error; I/O failures
// throw GgufError(Io).
class GgufWriter {
 public:
  explicit GgufWriter(std::filesystem::path path, uint64_t alignment = 32);
  ~GgufWriter();

  void set(std::string key, GgufValue value);  // replaces an existing key, keeps first position
  void add_tensor(std::string name, TensorType type, std::vector<int64_t> ne);
  void begin();
  void write_tensor_data(const void* bytes, size_t n);
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace peregrine
