// GgufWriter: round trips, byte-exact rewrites of the llama.cpp fixtures, misuse and I/O failure.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <numeric>

#include "peregrine/gguf.h"
#include "test_gguf_util.h"

namespace peregrine::test {
namespace {

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(i * 31 + seed);
  return out;
}

std::vector<std::pair<std::string, GgufValue>> all_kinds_of_values() {
  using T = GgufValueType;
  return {
      {"general.architecture", GgufValue::string("roundtrip")},
      {"v.u8", GgufValue::u8(255)},
      {"v.i8", GgufValue::i8(-128)},
      {"v.u16", GgufValue::u16(65535)},
      {"v.i16", GgufValue::i16(-32768)},
      {"v.u32", GgufValue::u32(4000000000u)},
      {"v.i32", GgufValue::i32(-2000000000)},
      {"v.u64", GgufValue::u64(UINT64_MAX)},
      {"v.i64", GgufValue::i64(INT64_MIN)},
      {"v.f32", GgufValue::f32(1e-6f)},
      {"v.f64", GgufValue::f64(3.141592653589793)},
      {"v.bool", GgufValue::boolean(true)},
      {"v.string", GgufValue::string(std::string("utf-8 \xc3\xa9 and a NUL \0 inside", 27))},
      {"v.empty_string", GgufValue::string("")},
      {"v.floats", GgufValue::array(T::FLOAT32, {GgufValue::f32(0.5f), GgufValue::f32(-2.0f)})},
      {"v.bools", GgufValue::array(T::BOOL, {GgufValue::boolean(true), GgufValue::boolean(false)})},
      {"v.strings", GgufValue::array(T::STRING, {GgufValue::string("a"), GgufValue::string("")})},
      {"v.empty", GgufValue::array(T::UINT64, {})},
      {"v.nested",
       GgufValue::array(T::ARRAY, {GgufValue::array(T::INT16, {GgufValue::i16(1), GgufValue::i16(-1)}),
                                   GgufValue::array(T::ARRAY, {GgufValue::array(T::STRING, {GgufValue::string("deep")})}),
                                   GgufValue::array(T::UINT8, {})})},
  };
}

void expect_same_value(const GgufValue& a, const GgufValue& b, const std::string& key) {
  ASSERT_EQ(a.type(), b.type()) << key;
  if (const auto* array = a.as_array()) {
    const auto* other = b.as_array();
    ASSERT_NE(other, nullptr);
    ASSERT_EQ(array->element_type, other->element_type) << key;
    ASSERT_EQ(array->elements.size(), other->elements.size()) << key;
    for (size_t i = 0; i < array->elements.size(); ++i) expect_same_value(array->elements[i], other->elements[i], key);
    return;
  }
  EXPECT_EQ(a.as_u64(), b.as_u64()) << key;
  EXPECT_EQ(a.as_i64(), b.as_i64()) << key;
  EXPECT_EQ(a.as_f64(), b.as_f64()) << key;
  EXPECT_EQ(a.as_bool(), b.as_bool()) << key;
  if (a.as_string()) {
    EXPECT_EQ(*a.as_string(), *b.as_string()) << key;
  }
}

struct TensorSpec {
  std::string name;
  TensorType type;
  std::vector<int64_t> ne;
  size_t n_bytes;
};

TEST(GgufWriter, RoundTripsEveryValueTypeAndSeveralTensorTypes) {
  ScratchDir dir("roundtrip");
  for (uint64_t alignment : {32u, 64u, 1u}) {
    SCOPED_TRACE(alignment);
    const auto path = dir / ("roundtrip-" + std::to_string(alignment) + ".gguf");
    const std::vector<TensorSpec> specs = {
        {"f32", TensorType::F32, {3, 5}, 60},
        {"f16", TensorType::F16, {7}, 14},
        {"q8_0", TensorType::Q8_0, {64, 2}, 4 * 34},
        {"q4_k", TensorType::Q4_K, {256, 1, 2}, 2 * 144},
        {"i32", TensorType::I32, {1, 1, 1, 3}, 12},
    };
    std::vector<std::vector<uint8_t>> data;
    {
      GgufWriter writer(path, alignment);
      for (auto& [key, value] : all_kinds_of_values()) writer.set(key, value);
      for (const auto& s : specs) writer.add_tensor(s.name, s.type, s.ne);
      writer.begin();
      for (size_t i = 0; i < specs.size(); ++i) {
        data.push_back(pattern(specs[i].n_bytes, static_cast<uint8_t>(i)));
        // Several pieces per tensor: 1 byte, then the rest.
        writer.write_tensor_data(data.back().data(), 1);
        writer.write_tensor_data(data.back().data() + 1, data.back().size() - 1);
      }
      writer.finish();
    }
    const GgufFile file = GgufFile::open(path);
    EXPECT_EQ(file.version(), 3u);
    EXPECT_EQ(file.alignment(), alignment);
    const auto expected = all_kinds_of_values();
    const size_t extra = alignment == 32 ? 0 : 1;  // general.alignment is added when not 32
    ASSERT_EQ(file.metadata().size(), expected.size() + extra);
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(file.metadata()[i].first, expected[i].first);
      expect_same_value(file.metadata()[i].second, expected[i].second, expected[i].first);
    }
    if (extra) {
      EXPECT_EQ(file.get_u64("general.alignment"), alignment);
    }
    ASSERT_EQ(file.tensors().size(), specs.size());
    for (size_t i = 0; i < specs.size(); ++i) {
      const auto& t = file.tensors()[i];
      EXPECT_EQ(t.name, specs[i].name);
      EXPECT_EQ(t.type, specs[i].type);
      EXPECT_EQ(t.ne, specs[i].ne);
      EXPECT_EQ(t.n_bytes, specs[i].n_bytes);
      EXPECT_EQ(t.offset % alignment, 0u);
      EXPECT_EQ(std::memcmp(t.data, data[i].data(), data[i].size()), 0) << t.name;
    }
    // gguf-py pads the last tensor too: the file ends on an alignment boundary.
    EXPECT_EQ((file.file_size() - file.data_offset()) % alignment, 0u);
    EXPECT_FALSE(std::filesystem::exists(path.string() + ".tmp"));
  }
}

// Reads a fixture and writes it back through the writer; gguf-py's layout (metadata, tensor
// infos, zero padding to 32 before the data and after each tensor) is what the writer produces,
// so the copy is identical byte for byte.
class GgufRewrite : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufRewrite, FixtureRewriteIsByteIdentical) {
  ScratchDir dir("rewrite");
  const auto source = test_data_dir() / "qwen35-tiny" / (GetParam() + ".gguf");
  const auto copy = dir / "copy.gguf";
  {
    const GgufFile original = GgufFile::open(source);
    GgufWriter writer(copy, original.alignment());
    for (const auto& [key, value] : original.metadata()) writer.set(key, value);
    for (const auto& t : original.tensors()) writer.add_tensor(t.name, t.type, t.ne);
    writer.begin();
    for (const auto& t : original.tensors()) writer.write_tensor_data(t.data, t.n_bytes);
    writer.finish();
  }
  const auto a = read_bytes(source);
  const auto b = read_bytes(copy);
  ASSERT_EQ(a.size(), b.size());
  const auto mismatch = std::mismatch(a.begin(), a.end(), b.begin());
  EXPECT_TRUE(mismatch.first == a.end()) << "first difference at byte " << (mismatch.first - a.begin());
}

INSTANTIATE_TEST_SUITE_P(QwenTiny, GgufRewrite,
                         ::testing::Values("tiny-f32", "tiny-quant", "tiny-moe-f32"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(GgufWriter, SetReplacesAValueInPlace) {
  ScratchDir dir("replace");
  const auto path = dir / "replace.gguf";
  GgufWriter writer(path);
  writer.set("a", GgufValue::u32(1));
  writer.set("b", GgufValue::u32(2));
  writer.set("a", GgufValue::string("one"));
  writer.begin();
  writer.finish();
  const GgufFile file = GgufFile::open(path);
  ASSERT_EQ(file.metadata().size(), 2u);
  EXPECT_EQ(file.metadata()[0].first, "a");
  EXPECT_EQ(file.get_string("a"), "one");
  EXPECT_TRUE(file.tensors().empty());
}

TEST(GgufWriter, RefusesWrongByteCountsAndLeavesNoFile) {
  ScratchDir dir("counts");
  const auto path = dir / "short.gguf";
  const auto data = pattern(64, 1);
  {
    GgufWriter writer(path);
    writer.add_tensor("a", TensorType::F32, {8});   // 32 bytes
    writer.add_tensor("b", TensorType::F32, {4});   // 16 bytes
    writer.begin();
    EXPECT_THROW(writer.write_tensor_data(data.data(), 33), Error);  // more than a's 32
    writer.write_tensor_data(data.data(), 32);
    writer.write_tensor_data(data.data(), 8);        // half of b
    EXPECT_THROW(writer.finish(), Error);
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "the temporary file was left behind";

  {
    GgufWriter writer(path);
    writer.add_tensor("a", TensorType::F32, {8});
    writer.begin();
    writer.write_tensor_data(data.data(), 32);
    EXPECT_THROW(writer.write_tensor_data(data.data(), 1), Error);  // nothing left to receive it
    // Abandoned without finish(): nothing under either name.
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(GgufWriter, FailedWriteKeepsThePreviousFileUntouched) {
  ScratchDir dir("keep");
  const auto path = dir / "model.gguf";
  {
    std::ofstream old(path, std::ios::binary);
    old << "previous contents";
  }
  {
    GgufWriter writer(path);
    writer.add_tensor("a", TensorType::F32, {8});
    writer.begin();
    EXPECT_TRUE(std::filesystem::exists(path.string() + ".tmp"));
    EXPECT_THROW(writer.finish(), Error);  // no data written
  }
  const auto bytes = read_bytes(path);
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), "previous contents");
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".tmp"));
}

TEST(GgufWriter, RefusesBadDeclarationsAndMisuse) {
  ScratchDir dir("misuse");
  const auto path = dir / "x.gguf";
  EXPECT_THROW(GgufWriter(path, 48), GgufError);
  EXPECT_THROW(GgufWriter(path, 0), GgufError);
  GgufWriter writer(path);
  EXPECT_THROW(writer.add_tensor("q", TensorType::Q4_K, {128}), Error);  // not a multiple of 256
  EXPECT_THROW(writer.add_tensor("z", TensorType::F32, {4, 0}), Error);
  EXPECT_THROW(writer.add_tensor("n", TensorType::F32, {}), Error);
  EXPECT_THROW(writer.add_tensor("f", TensorType::F32, {1, 1, 1, 1, 1}), Error);
  EXPECT_THROW(writer.add_tensor("o", TensorType::F32, {INT64_MAX, 2}), Error);
  EXPECT_THROW(writer.add_tensor("u", static_cast<TensorType>(4), {32}), Error);  // no such ggml type
  writer.add_tensor("t", TensorType::F32, {4});
  EXPECT_THROW(writer.add_tensor("t", TensorType::F32, {4}), Error);
  EXPECT_THROW(writer.set("bad", GgufValue(GgufValueType::UINT8, uint64_t{300})), GgufError);
  EXPECT_THROW(writer.set("bad", GgufValue(GgufValueType::STRING, uint64_t{1})), GgufError);
  EXPECT_THROW(writer.write_tensor_data("abcd", 4), Error);  // before begin()
  EXPECT_THROW(writer.finish(), Error);
  writer.set("general.alignment", GgufValue::u32(64));  // disagrees with the writer's 32
  EXPECT_THROW(writer.begin(), GgufError);
}

TEST(GgufWriter, FullDiskMakesFinishThrow) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  const auto data = pattern(4096, 3);
  try {
    GgufWriter writer("/dev/full");
    writer.set("general.architecture", GgufValue::string("full"));
    writer.add_tensor("t", TensorType::F32, {1024});
    writer.begin();
    writer.write_tensor_data(data.data(), data.size());
    writer.finish();
    FAIL() << "writing to /dev/full succeeded";
  } catch (const GgufError& e) {
    EXPECT_EQ(e.code(), GgufErrorCode::Io);
    EXPECT_NE(std::string(e.what()).find("/dev/full"), std::string::npos) << e.what();
  }
}

TEST(GgufWriter, UnwritableDirectoryIsAnIoError) {
  try {
    GgufWriter writer("/nonexistent-dir/x.gguf");
    writer.begin();
    FAIL() << "created a file in a missing directory";
  } catch (const GgufError& e) {
    EXPECT_EQ(e.code(), GgufErrorCode::Io);
  }
}

}  // namespace
}  // namespace peregrine::test
