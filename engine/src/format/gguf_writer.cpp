// GgufWriter: a one-pass GGUF v3 writer with the layout of gguf-py (header, metadata in order,
// tensor infos in declaration order, zero padding to the alignment before the data section and
// after every tensor's data).
#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "peregrine/gguf.h"
#include "peregrine/log.h"

namespace peregrine {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF"
constexpr uint32_t kVersion = 3;
constexpr char kAlignmentKey[] = "general.alignment";

struct DeclaredTensor {
  std::string name;
  TensorType type;
  std::vector<int64_t> ne;
  uint64_t offset = 0;   // relative to the data section
  uint64_t n_bytes = 0;
};

uint64_t align_up(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

// Throws unless `value` is well formed: its storage fits its declared type, arrays hold
// elements of their element type (recursively).
void check_value(const std::string& key, const GgufValue& value) {
  auto bad = [&](std::string_view why) {
    throw GgufError(GgufErrorCode::BadValueType, fmt::format("GGUF writer: key '{}': {}", key, why));
  };
  auto check_unsigned = [&](uint64_t max) {
    auto v = value.as_u64();
    if (!v || *v > max) bad(fmt::format("{} value out of range", gguf_value_type_name(value.type())));
  };
  auto check_signed = [&](int64_t min, int64_t max) {
    auto v = value.as_i64();
    if (!v || *v < min || *v > max) bad(fmt::format("{} value out of range", gguf_value_type_name(value.type())));
  };
  switch (value.type()) {
    case GgufValueType::UINT8: return check_unsigned(UINT8_MAX);
    case GgufValueType::UINT16: return check_unsigned(UINT16_MAX);
    case GgufValueType::UINT32: return check_unsigned(UINT32_MAX);
    case GgufValueType::UINT64: return check_unsigned(UINT64_MAX);
    case GgufValueType::INT8: return check_signed(INT8_MIN, INT8_MAX);
    case GgufValueType::INT16: return check_signed(INT16_MIN, INT16_MAX);
    case GgufValueType::INT32: return check_signed(INT32_MIN, INT32_MAX);
    case GgufValueType::INT64: return check_signed(INT64_MIN, INT64_MAX);
    case GgufValueType::FLOAT32:
    case GgufValueType::FLOAT64:
      if (!value.is_float() || !value.as_f64()) bad("float value without a float");
      return;
    case GgufValueType::BOOL:
      if (!value.as_bool()) bad("BOOL value without a bool");
      return;
    case GgufValueType::STRING:
      if (!value.as_string()) bad("STRING value without a string");
      return;
    case GgufValueType::ARRAY: {
      const GgufArray* array = value.as_array();
      if (!array) bad("ARRAY value without an array");
      if (static_cast<uint32_t>(array->element_type) > static_cast<uint32_t>(GgufValueType::FLOAT64))
        bad("array of an unknown element type");
      for (const auto& element : array->elements) {
        if (element.type() != array->element_type)
          bad(fmt::format("array of {} holds a {}", gguf_value_type_name(array->element_type),
                          gguf_value_type_name(element.type())));
        check_value(key, element);
      }
      return;
    }
  }
  bad("unknown value type");
}

}  // namespace

struct GgufWriter::Impl {
  enum class State { Declaring, Writing, Done };

  std::filesystem::path final_path;
  std::filesystem::path write_path;  // the temporary name, or final_path for a device
  bool write_direct = false;
  uint64_t alignment;
  std::vector<std::pair<std::string, GgufValue>> metadata;
  std::vector<DeclaredTensor> tensors;
  std::unordered_set<std::string> tensor_names;
  uint64_t data_size = 0;  // running end of the data section (aligned)

  State state = State::Declaring;
  std::FILE* file = nullptr;
  size_t current = 0;          // tensor receiving data
  uint64_t current_written = 0;
  uint64_t bytes_out = 0;      // bytes handed to the stream so far (for padding)

  [[noreturn]] void io_failure(const std::string& what) {
    const int err = errno;
    abandon();
    throw GgufError(GgufErrorCode::Io, fmt::format("{}: {}: {}", final_path.string(), what,
                                                   err ? std::strerror(err) : "unknown error"));
  }

  [[noreturn]] void misuse(const std::string& what) {
    throw Error(fmt::format("GGUF writer for {}: {}", final_path.string(), what));
  }

  // Closes and deletes the partial output; used on every failure and by the destructor.
  void abandon() noexcept {
    if (file) std::fclose(file);
    file = nullptr;
    if (!write_direct && !write_path.empty()) {
      std::error_code ignored;
      std::filesystem::remove(write_path, ignored);
    }
    state = State::Done;
  }

  void put(const void* bytes, size_t n) {
    if (n == 0) return;
    if (std::fwrite(bytes, 1, n, file) != n) io_failure("write failed");
    bytes_out += n;
  }
  void put_u32(uint32_t v) { put(&v, sizeof v); }
  void put_u64(uint64_t v) { put(&v, sizeof v); }
  void put_string(const std::string& s) {
    put_u64(s.size());
    put(s.data(), s.size());
  }
  void pad_to_alignment() {
    static constexpr uint8_t zeros[256] = {};
    uint64_t n = align_up(bytes_out, alignment) - bytes_out;
    while (n > 0) {
      const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, sizeof zeros));
      put(zeros, chunk);
      n -= chunk;
    }
  }

  // Encodes the payload of a value (no type tag); values were checked by check_value.
  void put_value(const GgufValue& value) {
    switch (value.type()) {
      case GgufValueType::UINT8: { const auto v = static_cast<uint8_t>(*value.as_u64()); return put(&v, 1); }
      case GgufValueType::INT8: { const auto v = static_cast<int8_t>(*value.as_i64()); return put(&v, 1); }
      case GgufValueType::UINT16: { const auto v = static_cast<uint16_t>(*value.as_u64()); return put(&v, 2); }
      case GgufValueType::INT16: { const auto v = static_cast<int16_t>(*value.as_i64()); return put(&v, 2); }
      case GgufValueType::UINT32: return put_u32(static_cast<uint32_t>(*value.as_u64()));
      case GgufValueType::INT32: { const auto v = static_cast<int32_t>(*value.as_i64()); return put(&v, 4); }
      case GgufValueType::UINT64: return put_u64(*value.as_u64());
      case GgufValueType::INT64: { const auto v = *value.as_i64(); return put(&v, 8); }
      case GgufValueType::FLOAT32: { const auto v = static_cast<float>(*value.as_f64()); return put(&v, 4); }
      case GgufValueType::FLOAT64: { const auto v = *value.as_f64(); return put(&v, 8); }
      case GgufValueType::BOOL: { const uint8_t v = *value.as_bool() ? 1 : 0; return put(&v, 1); }
      case GgufValueType::STRING: return put_string(*value.as_string());
      case GgufValueType::ARRAY: {
        const GgufArray& array = *value.as_array();
        put_u32(static_cast<uint32_t>(array.element_type));
        put_u64(array.elements.size());
        for (const auto& element : array.elements) put_value(element);
        return;
      }
    }
  }

  void finish_tensor_if_complete() {
    while (current < tensors.size() && current_written == tensors[current].n_bytes) {
      pad_to_alignment();
      ++current;
      current_written = 0;
    }
  }
};

GgufWriter::GgufWriter(std::filesystem::path path, uint64_t alignment) : impl_(std::make_unique<Impl>()) {
  impl_->final_path = std::move(path);
  impl_->alignment = alignment;
  if (!std::has_single_bit(alignment) || alignment > std::numeric_limits<uint32_t>::max())
    throw GgufError(GgufErrorCode::BadAlignment,
                    fmt::format("GGUF writer for {}: alignment {} is not a power of two that fits a UINT32",
                                impl_->final_path.string(), alignment));
}

GgufWriter::~GgufWriter() {
  if (impl_->state != Impl::State::Done || impl_->file) impl_->abandon();
}

void GgufWriter::set(std::string key, GgufValue value) {
  if (impl_->state != Impl::State::Declaring) impl_->misuse(fmt::format("set('{}') after begin()", key));
  check_value(key, value);
  for (auto& [existing, old] : impl_->metadata) {
    if (existing == key) {
      old = std::move(value);
      return;
    }
  }
  impl_->metadata.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::add_tensor(std::string name, TensorType type, std::vector<int64_t> ne) {
  if (impl_->state != Impl::State::Declaring) impl_->misuse(fmt::format("add_tensor('{}') after begin()", name));
  if (impl_->tensor_names.count(name)) impl_->misuse(fmt::format("tensor '{}' declared twice", name));
  if (ne.empty() || ne.size() > GgufFile::kMaxDims)
    impl_->misuse(fmt::format("tensor '{}' has {} dimensions; expected 1 to {}", name, ne.size(), GgufFile::kMaxDims));
  int64_t n_elements = 1;
  for (int64_t dim : ne)
    if (dim <= 0 || __builtin_mul_overflow(n_elements, dim, &n_elements))
      impl_->misuse(fmt::format("tensor '{}': dimension {} is not positive or the element count overflows", name, dim));
  const auto known = tensor_type_info(static_cast<uint32_t>(type));
  if (!known) impl_->misuse(fmt::format("tensor '{}' has unknown type id {}", name, static_cast<uint32_t>(type)));
  const TensorTypeInfo info = *known;
  if (ne[0] % info.block_elems != 0)
    impl_->misuse(fmt::format("tensor '{}' of type {}: ne[0] = {} is not a multiple of the block size {}", name,
                              info.name, ne[0], info.block_elems));
  DeclaredTensor t{name, type, std::move(ne), impl_->data_size, tensor_bytes(info, static_cast<uint64_t>(n_elements))};
  impl_->data_size = align_up(t.offset + t.n_bytes, impl_->alignment);
  impl_->tensor_names.insert(name);
  impl_->tensors.push_back(std::move(t));
}

void GgufWriter::begin() {
  Impl& w = *impl_;
  if (w.state != Impl::State::Declaring) w.misuse("begin() called twice");
  // The reader assumes 32 without the key, so any other alignment must be recorded.
  const GgufValue* declared = nullptr;
  for (const auto& [key, value] : w.metadata)
    if (key == kAlignmentKey) declared = &value;
  if (declared) {
    if (declared->type() != GgufValueType::UINT32 || declared->as_u64() != w.alignment)
      throw GgufError(GgufErrorCode::BadAlignment,
                      fmt::format("GGUF writer for {}: general.alignment is {} but the writer aligns to {}",
                                  w.final_path.string(), declared->to_display_string(), w.alignment));
  } else if (w.alignment != GgufFile::kDefaultAlignment) {
    w.metadata.emplace_back(kAlignmentKey, GgufValue::u32(static_cast<uint32_t>(w.alignment)));
  }

  std::error_code ec;
  const auto status = std::filesystem::status(w.final_path, ec);
  w.write_direct = !ec && std::filesystem::exists(status) && !std::filesystem::is_regular_file(status) &&
                   !std::filesystem::is_directory(status);
  // "<name>.tmp" (ignored by the project's .gitignore); a stale one from a crashed run is overwritten.
  w.write_path = w.write_direct ? w.final_path : std::filesystem::path(w.final_path.string() + ".tmp");
  w.file = std::fopen(w.write_path.c_str(), "wb");
  if (!w.file) w.io_failure(fmt::format("cannot create {}", w.write_path.string()));
  w.state = Impl::State::Writing;

  w.put_u32(kMagic);
  w.put_u32(kVersion);
  w.put_u64(w.tensors.size());
  w.put_u64(w.metadata.size());
  for (const auto& [key, value] : w.metadata) {
    w.put_string(key);
    w.put_u32(static_cast<uint32_t>(value.type()));
    w.put_value(value);
  }
  for (const auto& t : w.tensors) {
    w.put_string(t.name);
    w.put_u32(static_cast<uint32_t>(t.ne.size()));
    for (int64_t dim : t.ne) w.put_u64(static_cast<uint64_t>(dim));
    w.put_u32(static_cast<uint32_t>(t.type));
    w.put_u64(t.offset);
  }
  w.pad_to_alignment();
  w.finish_tensor_if_complete();  // (no tensor is empty, so this only matters for none)
  log::get("gguf")->debug("{}: writing GGUF v3, {} metadata keys, {} tensors, alignment {}, {} data bytes",
                          w.final_path.string(), w.metadata.size(), w.tensors.size(), w.alignment, w.data_size);
}

void GgufWriter::write_tensor_data(const void* bytes, size_t n) {
  Impl& w = *impl_;
  if (w.state != Impl::State::Writing) w.misuse("write_tensor_data() outside begin()..finish()");
  if (n == 0) return;
  if (w.current >= w.tensors.size())
    w.misuse(fmt::format("{} bytes of tensor data after the last declared tensor", n));
  const DeclaredTensor& t = w.tensors[w.current];
  if (n > t.n_bytes - w.current_written)
    w.misuse(fmt::format("tensor '{}' takes {} bytes; {} were written and {} more were given", t.name,
                         t.n_bytes, w.current_written, n));
  w.put(bytes, n);
  w.current_written += n;
  w.finish_tensor_if_complete();
}

void GgufWriter::finish() {
  Impl& w = *impl_;
  if (w.state != Impl::State::Writing) w.misuse("finish() without a successful begin()");
  if (w.current < w.tensors.size()) {
    const DeclaredTensor& t = w.tensors[w.current];
    const std::string what = fmt::format("finish() before all tensor data was written: tensor '{}' got {} of its "
                                         "{} bytes ({} of {} tensors complete)",
                                         t.name, w.current_written, t.n_bytes, w.current, w.tensors.size());
    w.abandon();
    w.misuse(what);
  }
  if (std::fflush(w.file) != 0) w.io_failure("flush failed");
  // Durable before it gets its final name, so a crash never leaves a short file there.
  if (!w.write_direct && ::fsync(::fileno(w.file)) != 0) w.io_failure("fsync failed");
  std::FILE* file = w.file;
  w.file = nullptr;
  if (std::fclose(file) != 0) w.io_failure("close failed");
  if (!w.write_direct) {
    std::error_code ec;
    std::filesystem::rename(w.write_path, w.final_path, ec);
    if (ec) {
      errno = ec.value();
      w.io_failure(fmt::format("cannot rename {} to the final name", w.write_path.string()));
    }
  }
  w.state = Impl::State::Done;
  log::get("gguf")->debug("{}: wrote {} bytes", w.final_path.string(), w.bytes_out);
}

}  // namespace peregrine
