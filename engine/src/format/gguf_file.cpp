// GgufFile: owns the mapping (or borrows a buffer), the parsed metadata and the tensor views,
// and answers typed queries.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>

#include "format/gguf_parse.h"
#include "peregrine/gguf.h"

namespace peregrine {
namespace {

// A read-only private mapping of a whole file, unmapped on destruction.
class FileMapping {
 public:
  explicit FileMapping(const std::filesystem::path& path) {
    const std::string name = path.string();
    // Checked before open(): opening a FIFO for reading waits for a writer, forever if none comes.
    struct stat st {};
    if (::stat(name.c_str(), &st) != 0) fail(name, "cannot open");
    refuse_unless_regular(name, st);
    // O_NONBLOCK: should the path become a FIFO after the stat, open() still returns (for a
    // regular file the flag changes nothing).
    const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) fail(name, "cannot open");
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      errno = err;
      fail(name, "cannot stat");
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      refuse_unless_regular(name, st);
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {  // mmap refuses length 0; an empty file is then refused by the parser
      void* addr = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (addr == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        errno = err;
        fail(name, "cannot map");
      }
      data_ = static_cast<const uint8_t*>(addr);
    }
    ::close(fd);  // the mapping keeps the file alive
  }
  FileMapping(const FileMapping&) = delete;
  FileMapping& operator=(const FileMapping&) = delete;
  ~FileMapping() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
  }

  std::span<const uint8_t> bytes() const { return {data_, size_}; }

 private:
  static void refuse_unless_regular(const std::string& name, const struct stat& st) {
    if (S_ISREG(st.st_mode)) return;
    const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a file";
    throw GgufError(GgufErrorCode::Io, fmt::format("{}: not a regular file ({}); a model must be a .gguf file", name, kind));
  }

  [[noreturn]] static void fail(const std::string& name, const char* what) {
    throw GgufError(GgufErrorCode::Io, fmt::format("{}: {}: {}", name, what, std::strerror(errno)));
  }

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace

struct GgufFile::Impl {
  std::string display_name;
  std::unique_ptr<FileMapping> mapping;  // null for from_memory
  std::span<const uint8_t> bytes;
  gguf_detail::ParsedGguf parsed;
  std::unordered_map<std::string_view, size_t> key_index;     // views into parsed.metadata
  std::unordered_map<std::string_view, size_t> tensor_index;  // views into parsed.tensors

  void build_indexes() {
    key_index.reserve(parsed.metadata.size());
    for (size_t i = 0; i < parsed.metadata.size(); ++i) key_index.emplace(parsed.metadata[i].first, i);
    tensor_index.reserve(parsed.tensors.size());
    for (size_t i = 0; i < parsed.tensors.size(); ++i) tensor_index.emplace(parsed.tensors[i].name, i);
  }

  const GgufValue& require(std::string_view key) const {
    auto it = key_index.find(key);
    if (it == key_index.end())
      throw GgufError(GgufErrorCode::MissingKey,
                      fmt::format("{}: metadata key '{}' is missing", display_name, key));
    return parsed.metadata[it->second].second;
  }

  [[noreturn]] void wrong_type(std::string_view key, const GgufValue& value, std::string_view expected) const {
    throw GgufError(GgufErrorCode::WrongKeyType,
                    fmt::format("{}: metadata key '{}' should be {}, but it is the {} {}", display_name, key,
                                expected, gguf_value_type_name(value.type()), value.to_display_string(4)));
  }
};

GgufFile::GgufFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

GgufFile GgufFile::open(const std::filesystem::path& path) {
  auto impl = std::make_unique<Impl>();
  impl->display_name = path.string();
  impl->mapping = std::make_unique<FileMapping>(path);
  impl->bytes = impl->mapping->bytes();
  impl->parsed = gguf_detail::parse_gguf(impl->bytes, impl->display_name);
  impl->build_indexes();
  return GgufFile(std::move(impl));
}

GgufFile GgufFile::from_memory(std::span<const uint8_t> bytes, std::string display_name) {
  auto impl = std::make_unique<Impl>();
  impl->display_name = std::move(display_name);
  impl->bytes = bytes;
  impl->parsed = gguf_detail::parse_gguf(impl->bytes, impl->display_name);
  impl->build_indexes();
  return GgufFile(std::move(impl));
}

const std::string& GgufFile::display_name() const { return impl_->display_name; }
uint32_t GgufFile::version() const { return impl_->parsed.version; }
uint64_t GgufFile::alignment() const { return impl_->parsed.alignment; }
uint64_t GgufFile::data_offset() const { return impl_->parsed.data_offset; }
uint64_t GgufFile::file_size() const { return impl_->bytes.size(); }
std::span<const uint8_t> GgufFile::bytes() const { return impl_->bytes; }

const std::vector<std::pair<std::string, GgufValue>>& GgufFile::metadata() const {
  return impl_->parsed.metadata;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = impl_->key_index.find(key);
  return it == impl_->key_index.end() ? nullptr : &impl_->parsed.metadata[it->second].second;
}

uint64_t GgufFile::get_u64(std::string_view key) const {
  const GgufValue& value = impl_->require(key);
  if (auto v = value.as_u64()) return *v;
  impl_->wrong_type(key, value, "a non-negative integer");
}

int64_t GgufFile::get_i64(std::string_view key) const {
  const GgufValue& value = impl_->require(key);
  if (auto v = value.as_i64()) return *v;
  impl_->wrong_type(key, value, "an integer within the int64 range");
}

double GgufFile::get_f64(std::string_view key) const {
  const GgufValue& value = impl_->require(key);
  if (auto v = value.as_f64()) return *v;
  impl_->wrong_type(key, value, "a number");
}

bool GgufFile::get_bool(std::string_view key) const {
  const GgufValue& value = impl_->require(key);
  if (auto v = value.as_bool()) return *v;
  impl_->wrong_type(key, value, "a BOOL");
}

const std::string& GgufFile::get_string(std::string_view key) const {
  const GgufValue& value = impl_->require(key);
  if (const auto* v = value.as_string()) return *v;
  impl_->wrong_type(key, value, "a STRING");
}

const GgufArray& GgufFile::get_array(std::string_view key) const {
  const GgufValue& value = impl_->require(key);
  if (const auto* v = value.as_array()) return *v;
  impl_->wrong_type(key, value, "an ARRAY");
}

std::vector<int64_t> GgufFile::get_int_array(std::string_view key) const {
  const GgufArray& array = get_array(key);
  // Checked on the element type too, so that an empty FLOAT32 array is refused like a full one.
  if (!GgufValue(array.element_type, uint64_t{0}).is_integer())
    impl_->wrong_type(key, *find(key), "an ARRAY of integers");
  std::vector<int64_t> out;
  out.reserve(array.elements.size());
  for (const auto& element : array.elements) {
    auto v = element.as_i64();
    if (!v) impl_->wrong_type(key, *find(key), "an ARRAY of integers within the int64 range");
    out.push_back(*v);
  }
  return out;
}

std::vector<std::string> GgufFile::get_string_array(std::string_view key) const {
  const GgufArray& array = get_array(key);
  if (array.element_type != GgufValueType::STRING) impl_->wrong_type(key, *find(key), "an ARRAY of STRING");
  std::vector<std::string> out;
  out.reserve(array.elements.size());
  for (const auto& element : array.elements) {
    const auto* v = element.as_string();
    if (!v) impl_->wrong_type(key, *find(key), "an ARRAY of STRING");
    out.push_back(*v);
  }
  return out;
}

const std::vector<GgufTensorInfo>& GgufFile::tensors() const { return impl_->parsed.tensors; }

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = impl_->tensor_index.find(name);
  return it == impl_->tensor_index.end() ? nullptr : &impl_->parsed.tensors[it->second];
}

}  // namespace peregrine
