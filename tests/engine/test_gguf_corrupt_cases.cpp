#include "test_gguf_corrupt_cases.h"

#include <fmt/format.h>

#include <cstring>
#include <optional>
#include <random>
#include <stdexcept>

namespace peregrine::test {
namespace {

using Code = GgufErrorCode;
using Bytes = std::vector<uint8_t>;

constexpr uint32_t kMagic = 0x46554747;
constexpr uint32_t T_UINT8 = 0, T_INT16 = 3, T_UINT32 = 4, T_FLOAT32 = 6, T_BOOL = 7, T_STRING = 8,
                   T_ARRAY = 9, T_UINT64 = 10, T_INT64 = 11, T_FLOAT64 = 12;
constexpr uint32_t GGML_F32 = 0, GGML_F16 = 1, GGML_Q8_0 = 8, GGML_F64 = 28;

template <typename T>
void put(Bytes& b, T v) {
  const size_t at = b.size();
  b.resize(at + sizeof(T));
  std::memcpy(b.data() + at, &v, sizeof(T));
}
void put_str(Bytes& b, const std::string& s, std::optional<uint64_t> length = {}) {
  put<uint64_t>(b, length.value_or(s.size()));
  b.insert(b.end(), s.begin(), s.end());
}
template <typename T>
Bytes scalar(T v) {
  Bytes b(sizeof(T));
  std::memcpy(b.data(), &v, sizeof(T));
  return b;
}
Bytes str_payload(const std::string& s, std::optional<uint64_t> length = {}) {
  Bytes b;
  put_str(b, s, length);
  return b;
}
// An array payload: element type, count, then the already encoded elements.
Bytes array_payload(uint32_t element_type, uint64_t count, const std::vector<Bytes>& elements) {
  Bytes b;
  put(b, element_type);
  put(b, count);
  for (const auto& e : elements) b.insert(b.end(), e.begin(), e.end());
  return b;
}

struct KvSpec {
  KvSpec(std::string k, uint32_t t, Bytes p) : key(std::move(k)), type(t), payload(std::move(p)) {}
  std::string key;
  uint32_t type;
  Bytes payload;
  std::optional<uint64_t> key_length;  // overrides the encoded key length
};

struct TensorSpec {
  TensorSpec(std::string n, std::vector<uint64_t> d, uint32_t t, uint64_t o)
      : name(std::move(n)), dims(std::move(d)), type(t), offset(o) {}
  std::string name;
  std::vector<uint64_t> dims;
  uint32_t type;
  uint64_t offset;
  std::optional<uint32_t> n_dims;       // overrides dims.size()
  std::optional<uint64_t> name_length;  // overrides the encoded name length
};

struct FileSpec {
  uint32_t magic = kMagic;
  uint32_t version = 3;
  std::optional<uint64_t> n_tensors, n_kv;  // override the real counts
  std::vector<KvSpec> kvs;
  std::vector<TensorSpec> tensors;
  uint64_t alignment = 32;
  uint64_t data_bytes = 160;
  std::optional<size_t> truncate_to;
};

Bytes build(const FileSpec& s) {
  Bytes b;
  put(b, s.magic);
  put(b, s.version);
  put<uint64_t>(b, s.n_tensors.value_or(s.tensors.size()));
  put<uint64_t>(b, s.n_kv.value_or(s.kvs.size()));
  for (const auto& kv : s.kvs) {
    put_str(b, kv.key, kv.key_length);
    put(b, kv.type);
    b.insert(b.end(), kv.payload.begin(), kv.payload.end());
  }
  for (const auto& t : s.tensors) {
    put_str(b, t.name, t.name_length);
    put<uint32_t>(b, t.n_dims.value_or(static_cast<uint32_t>(t.dims.size())));
    for (uint64_t d : t.dims) put(b, d);
    put(b, t.type);
    put(b, t.offset);
  }
  while (b.size() % s.alignment) b.push_back(0);
  for (uint64_t i = 0; i < s.data_bytes; ++i) b.push_back(static_cast<uint8_t>(i * 7 + 1));
  if (s.truncate_to) b.resize(*s.truncate_to);
  return b;
}

// The valid base: every scalar kind, string and integer arrays, a nested array, and three
// tensors of three types (F32 64 bytes at 0, Q8_0 34 bytes at 64, F16 8 bytes at 128).
FileSpec base_spec() {
  FileSpec s;
  s.kvs = {
      {"general.architecture", T_STRING, str_payload("test")},
      {"general.name", T_STRING, str_payload("corrupt-base")},
      {"test.u8", T_UINT8, scalar<uint8_t>(7)},
      {"test.i16", T_INT16, scalar<int16_t>(-3)},
      {"test.u32", T_UINT32, scalar<uint32_t>(42)},
      {"test.f32", T_FLOAT32, scalar<float>(0.5f)},
      {"test.u64", T_UINT64, scalar<uint64_t>(uint64_t{1} << 40)},
      {"test.i64", T_INT64, scalar<int64_t>(-5)},
      {"test.f64", T_FLOAT64, scalar<double>(2.5)},
      {"test.bool", T_BOOL, scalar<uint8_t>(1)},
      {"test.int_array", 9, array_payload(5, 3, {scalar<int32_t>(1), scalar<int32_t>(2), scalar<int32_t>(3)})},
      {"test.strings", T_ARRAY, array_payload(T_STRING, 2, {str_payload("a"), str_payload("bc")})},
      {"test.nested", T_ARRAY,
       array_payload(T_ARRAY, 2,
                     {array_payload(T_UINT8, 2, {scalar<uint8_t>(1), scalar<uint8_t>(2)}),
                      array_payload(T_UINT8, 1, {scalar<uint8_t>(3)})})},
  };
  s.tensors = {
      {"a.weight", {8, 2}, GGML_F32, 0},
      {"b.weight", {32, 1}, GGML_Q8_0, 64},
      {"c.bias", {4}, GGML_F16, 128},
  };
  return s;
}

KvSpec& kv(FileSpec& s, const std::string& key) {
  for (auto& k : s.kvs)
    if (k.key == key) return k;
  throw std::logic_error("no such key in the base spec: " + key);
}
TensorSpec& tensor(FileSpec& s, const std::string& name) {
  for (auto& t : s.tensors)
    if (t.name == name) return t;
  throw std::logic_error("no such tensor in the base spec: " + name);
}

// Size of the base file up to and including metadata entry `n_kvs` (all tensors dropped but
// the header counts kept), for truncating inside a given entry.
size_t prefix_size(size_t n_kvs, size_t n_tensors) {
  FileSpec s = base_spec();
  s.n_kv = s.kvs.size();
  s.n_tensors = s.tensors.size();
  s.kvs.erase(s.kvs.begin() + static_cast<std::ptrdiff_t>(n_kvs), s.kvs.end());
  s.tensors.erase(s.tensors.begin() + static_cast<std::ptrdiff_t>(n_tensors), s.tensors.end());
  s.alignment = 1;
  s.data_bytes = 0;
  return build(s).size();
}

Bytes nested_arrays(int levels) {
  Bytes inner = array_payload(T_UINT8, 0, {});
  for (int i = 1; i < levels; ++i) inner = array_payload(T_ARRAY, 1, {inner});
  return inner;
}

}  // namespace

std::vector<CorruptCase> make_corrupt_cases(const std::vector<uint8_t>& fixture) {
  std::vector<CorruptCase> cases;
  auto add = [&](std::string file, std::optional<Code> code, std::string what, Bytes bytes) {
    cases.push_back({std::move(file), code, std::move(what), std::move(bytes)});
  };
  auto variant = [&](std::string file, Code code, std::string what, auto&& mutate) {
    FileSpec s = base_spec();
    mutate(s);
    add(std::move(file), code, std::move(what), build(s));
  };
  const Bytes base = build(base_spec());
  add("valid-base.gguf", std::nullopt,
      "the valid file every other case is derived from: 13 keys of all kinds (nested array included), "
      "3 tensors (F32, Q8_0, F16)",
      base);

  // Header.
  variant("bad-magic.gguf", Code::BadMagic, "magic 'GGUG'", [](FileSpec& s) { s.magic = 0x47554747; });
  {
    std::mt19937 rng(20261123);  // mt19937's sequence is fixed by the standard
    Bytes random(4096);
    for (auto& byte : random) byte = static_cast<uint8_t>(rng());
    add("random-bytes.gguf", Code::BadMagic, "4096 random bytes (std::mt19937, seed 20261123)", random);
  }
  add("empty.gguf", Code::Truncated, "an empty file", {});
  add("magic-only.gguf", Code::Truncated, "just the 4 magic bytes", Bytes(base.begin(), base.begin() + 4));
  add("truncated-header.gguf", Code::Truncated, "cut inside the metadata count (20 bytes)",
      Bytes(base.begin(), base.begin() + 20));
  variant("version-1.gguf", Code::UnsupportedVersion, "version 1 (32-bit counts)", [](FileSpec& s) { s.version = 1; });
  variant("version-4.gguf", Code::UnsupportedVersion, "version 4", [](FileSpec& s) { s.version = 4; });
  variant("big-endian.gguf", Code::UnsupportedVersion, "version field big-endian (00 00 00 03)",
          [](FileSpec& s) { s.version = 0x03000000; });
  variant("kv-count-2pow62.gguf", Code::CountTooLarge, "metadata count 2^62",
          [](FileSpec& s) { s.n_kv = uint64_t{1} << 62; });
  variant("tensor-count-2pow62.gguf", Code::CountTooLarge, "tensor count 2^62",
          [](FileSpec& s) { s.n_tensors = uint64_t{1} << 62; });
  {
    const uint64_t after_header = base.size() - 24;
    variant("counts-together-too-large.gguf", Code::CountTooLarge,
            "metadata and tensor counts that each fit the file alone but not together",
            [&](FileSpec& s) {
              s.n_kv = after_header / 13;
              s.n_tensors = after_header / 32;
            });
  }

  // Metadata.
  variant("array-count-2pow62.gguf", Code::CountTooLarge, "an INT32 array claiming 2^62 elements",
          [](FileSpec& s) { kv(s, "test.int_array").payload = array_payload(5, uint64_t{1} << 62, {}); });
  variant("string-array-count-too-large.gguf", Code::CountTooLarge,
          "a STRING array of 400 elements: fewer than the bytes left, but each needs at least 8",
          [](FileSpec& s) { kv(s, "test.strings").payload = array_payload(T_STRING, 400, {str_payload("a")}); });
  variant("key-length-past-eof.gguf", Code::StringTooLong, "first key length 1,000,000",
          [](FileSpec& s) { kv(s, "general.architecture").key_length = 1000000; });
  variant("key-length-2pow63.gguf", Code::StringTooLong, "first key length 2^63",
          [](FileSpec& s) { kv(s, "general.architecture").key_length = uint64_t{1} << 63; });
  variant("string-value-past-eof.gguf", Code::StringTooLong, "value of general.name claims 5000 bytes",
          [](FileSpec& s) { kv(s, "general.name").payload = str_payload("corrupt-base", 5000); });
  variant("string-in-array-past-eof.gguf", Code::StringTooLong,
          "second element of a STRING array claims 2^40 bytes", [](FileSpec& s) {
            kv(s, "test.strings").payload =
                array_payload(T_STRING, 2, {str_payload("a"), str_payload("bc", uint64_t{1} << 40)});
          });
  variant("bad-value-type.gguf", Code::BadValueType, "value type 13",
          [](FileSpec& s) { kv(s, "test.u32").type = 13; });
  variant("bad-array-element-type.gguf", Code::BadValueType, "array element type 99",
          [](FileSpec& s) { kv(s, "test.int_array").payload = array_payload(99, 3, {}); });
  variant("nested-array-too-deep.gguf", Code::BadValueType, "arrays nested 20 deep (limit 16)",
          [](FileSpec& s) { kv(s, "test.nested").payload = nested_arrays(20); });
  variant("duplicate-key.gguf", Code::DuplicateKey, "key test.u32 twice",
          [](FileSpec& s) { s.kvs.push_back({"test.u32", T_UINT32, scalar<uint32_t>(43)}); });
  variant("alignment-not-power-of-two.gguf", Code::BadAlignment, "general.alignment = 48",
          [](FileSpec& s) { s.kvs.push_back({"general.alignment", T_UINT32, scalar<uint32_t>(48)}); });
  variant("alignment-zero.gguf", Code::BadAlignment, "general.alignment = 0",
          [](FileSpec& s) { s.kvs.push_back({"general.alignment", T_UINT32, scalar<uint32_t>(0)}); });
  variant("alignment-wrong-type.gguf", Code::BadAlignment, "general.alignment = 32 as a UINT64",
          [](FileSpec& s) { s.kvs.push_back({"general.alignment", T_UINT64, scalar<uint64_t>(32)}); });
  {
    // The counts are lowered to what the cut file could hold, so that the count check passes
    // and the read itself runs into the end of the file.
    FileSpec s = base_spec();
    s.n_kv = 2;
    s.n_tensors = 0;
    s.truncate_to = prefix_size(1, 0) + 8 + std::string("general.name").size() + 2;
    add("truncated-in-value-type.gguf", Code::Truncated,
        fmt::format("2 keys declared, cut inside the type of key #1 ({} bytes)", *s.truncate_to), build(s));
    s.n_kv = 5;
    s.truncate_to = prefix_size(5, 0) - 2;
    add("truncated-in-value.gguf", Code::Truncated,
        fmt::format("5 keys declared, cut inside the UINT32 value of test.u32 ({} bytes)", *s.truncate_to), build(s));
    s.n_kv.reset();
    s.n_tensors = 1;
    s.truncate_to = prefix_size(s.kvs.size(), 0) + 8 + 8 + 4 + 3;
    add("truncated-in-tensor-info.gguf", Code::Truncated,
        fmt::format("1 tensor declared, cut inside the first dimension of a.weight ({} bytes)", *s.truncate_to),
        build(s));
  }

  // Tensor infos.
  variant("tensor-name-past-eof.gguf", Code::StringTooLong, "name of c.bias claims 2^32 bytes",
          [](FileSpec& s) { tensor(s, "c.bias").name_length = uint64_t{1} << 32; });
  variant("duplicate-tensor.gguf", Code::DuplicateTensor, "b.weight renamed a.weight",
          [](FileSpec& s) { tensor(s, "b.weight").name = "a.weight"; });
  variant("n-dims-zero.gguf", Code::BadDims, "a.weight with 0 dimensions", [](FileSpec& s) {
    tensor(s, "a.weight").dims.clear();
  });
  variant("n-dims-five.gguf", Code::BadDims, "a.weight with 5 dimensions",
          [](FileSpec& s) { tensor(s, "a.weight").dims = {8, 2, 1, 1, 1}; });
  variant("n-dims-huge.gguf", Code::BadDims, "a.weight claims 2^31 dimensions (only 2 follow)",
          [](FileSpec& s) { tensor(s, "a.weight").n_dims = uint32_t{1} << 31; });
  variant("dim-zero.gguf", Code::BadDims, "a.weight ne = [8, 0]",
          [](FileSpec& s) { tensor(s, "a.weight").dims = {8, 0}; });
  variant("dim-negative.gguf", Code::BadDims, "a.weight ne[1] = -2 as int64",
          [](FileSpec& s) { tensor(s, "a.weight").dims = {8, ~uint64_t{1}}; });
  variant("element-count-overflow.gguf", Code::BadDims, "a.weight ne = [2^32, 2^32]",
          [](FileSpec& s) { tensor(s, "a.weight").dims = {uint64_t{1} << 32, uint64_t{1} << 32}; });
  variant("byte-count-overflow.gguf", Code::BadDims, "F64 tensor of 2^62 elements (2^65 bytes)", [](FileSpec& s) {
    auto& t = tensor(s, "a.weight");
    t.type = GGML_F64;
    t.dims = {uint64_t{1} << 31, uint64_t{1} << 31};
  });
  variant("unknown-tensor-type.gguf", Code::UnknownTensorType, "ggml type 4 (the removed Q4_2)",
          [](FileSpec& s) { tensor(s, "c.bias").type = 4; });
  variant("unknown-tensor-type-huge.gguf", Code::UnknownTensorType, "ggml type 0xFFFFFFFF",
          [](FileSpec& s) { tensor(s, "c.bias").type = 0xFFFFFFFFu; });
  variant("row-not-multiple-of-block.gguf", Code::BadTensorShape, "Q8_0 tensor with ne[0] = 16 (block 32)",
          [](FileSpec& s) { tensor(s, "b.weight").dims = {16, 2}; });

  // Data section.
  variant("misaligned-offset.gguf", Code::BadTensorOffset, "c.bias at data offset 100 (alignment 32)",
          [](FileSpec& s) { tensor(s, "c.bias").offset = 100; });
  variant("offset-past-eof.gguf", Code::BadTensorOffset, "c.bias at data offset 4096",
          [](FileSpec& s) { tensor(s, "c.bias").offset = 4096; });
  variant("offset-overflow.gguf", Code::BadTensorOffset, "c.bias at data offset 2^64 - 32",
          [](FileSpec& s) { tensor(s, "c.bias").offset = ~uint64_t{31}; });
  variant("data-past-eof.gguf", Code::BadTensorOffset, "data section 2 bytes short of c.bias's end",
          [](FileSpec& s) { s.data_bytes = 134; });
  variant("overlapping-tensors.gguf", Code::OverlappingTensors, "b.weight at 32, inside a.weight (0..64)",
          [](FileSpec& s) { tensor(s, "b.weight").offset = 32; });
  variant("alignment-moves-data.gguf", Code::BadTensorOffset,
          "general.alignment = 4096 (valid) moves the data section past the end of the file",
          [](FileSpec& s) { s.kvs.push_back({"general.alignment", T_UINT32, scalar<uint32_t>(4096)}); });
  if (fixture.size() > 16544)
    add("tiny-f32-headers-only.gguf", Code::BadTensorOffset,
        "tests/data/qwen35-tiny/tiny-f32.gguf cut at its data section (16544 bytes): every tensor past the end",
        Bytes(fixture.begin(), fixture.begin() + 16544));
  return cases;
}

std::string corrupt_cases_readme(const std::vector<CorruptCase>& cases) {
  std::string out =
      "# gguf-corrupt — GGUF files the reader must refuse, each with its error code\n\n"
      "Generated deterministically by `tests/engine/test_gguf_corrupt_cases.cpp` (a valid base file\n"
      "built byte by byte, and variants that each break one rule). `test_gguf` checks that every file\n"
      "here is exactly what the generator makes and that reading it throws `GgufError` with the listed\n"
      "code. To regenerate after changing the generator:\n\n"
      "    PEREGRINE_REGENERATE_GGUF_CORRUPT=1 build/bin/test_gguf --gtest_filter='GgufCorrupt.*'\n\n"
      "The files are also the seed corpus of the fuzzer (`tests/fuzz/`).\n\n"
      "| file | expected `GgufErrorCode` | what is wrong |\n|---|---|---|\n";
  for (const auto& c : cases)
    out += fmt::format("| `{}` | {} | {} |\n", c.file_name,
                       c.expected ? std::string(gguf_error_code_name(*c.expected)) : "— (valid)", c.description);
  return out;
}

}  // namespace peregrine::test
