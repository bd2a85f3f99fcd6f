// Reads every model of tests/data/qwen35-tiny/ and checks it against the JSON that llama.cpp's
// gguf-py side recorded for it (metadata keys, types and values; tensor names, types, shapes,
// sizes and offsets).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

#include "peregrine/gguf.h"
#include "test_gguf_util.h"

namespace peregrine::test {
namespace {

using json = nlohmann::ordered_json;  // keeps the JSON's key order, which is the file's

const std::vector<std::string> kFixtures = {"tiny-f32", "tiny-mtp-f32", "tiny256-f32", "tiny-quant", "tiny-moe-f32"};

std::filesystem::path fixture_path(const std::string& name, const char* ext) {
  return test_data_dir() / "qwen35-tiny" / (name + ext);
}

json load_json(const std::string& name) {
  std::ifstream in(fixture_path(name, ".json"));
  return json::parse(in);
}

// "UINT32" / "ARRAY[INT32]" as written in the fixture JSON.
std::string type_label(const GgufValue& value) {
  if (const auto* array = value.as_array())
    return "ARRAY[" + std::string(gguf_value_type_name(array->element_type)) + "]";
  return std::string(gguf_value_type_name(value.type()));
}

void expect_value_matches(const std::string& key, const GgufValue& value, const json& expected) {
  SCOPED_TRACE(key);
  if (const auto* array = value.as_array()) {
    ASSERT_TRUE(expected.is_array());
    ASSERT_EQ(array->elements.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) expect_value_matches(key, array->elements[i], expected[i]);
  } else if (value.type() == GgufValueType::STRING) {
    EXPECT_EQ(*value.as_string(), expected.get<std::string>());
  } else if (value.type() == GgufValueType::BOOL) {
    EXPECT_EQ(*value.as_bool(), expected.get<bool>());
  } else if (value.is_float()) {
    // The JSON holds the float32 value as the exact double it converts to.
    EXPECT_EQ(*value.as_f64(), expected.get<double>());
  } else if (expected.is_number_unsigned()) {
    EXPECT_EQ(*value.as_u64(), expected.get<uint64_t>());
  } else {
    EXPECT_EQ(*value.as_i64(), expected.get<int64_t>());
  }
}

std::string upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::toupper(c); });
  return out;
}

class GgufFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufFixture, MetadataMatchesJson) {
  const GgufFile file = GgufFile::open(fixture_path(GetParam(), ".gguf"));
  const json expected = load_json(GetParam());
  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(file.alignment(), 32u);
  EXPECT_EQ(file.file_size(), expected["model_bytes"].get<uint64_t>());
  const json& metadata = expected["metadata"];
  ASSERT_EQ(file.metadata().size(), metadata.size());
  size_t i = 0;
  for (const auto& [key, entry] : metadata.items()) {
    EXPECT_EQ(file.metadata()[i].first, key) << "entry #" << i;
    const GgufValue* value = file.find(key);
    ASSERT_NE(value, nullptr) << key;
    EXPECT_EQ(type_label(*value), entry["type"].get<std::string>()) << key;
    expect_value_matches(key, *value, entry["value"]);
    ++i;
  }
  EXPECT_EQ(i, file.metadata().size());
}

TEST_P(GgufFixture, TensorsMatchJsonAndPointIntoTheFile) {
  const GgufFile file = GgufFile::open(fixture_path(GetParam(), ".gguf"));
  const json expected = load_json(GetParam());
  const auto raw = read_bytes(fixture_path(GetParam(), ".gguf"));
  const json& tensors = expected["tensors"];
  ASSERT_EQ(file.tensors().size(), tensors.size());
  const auto image = file.bytes();
  ASSERT_EQ(image.size(), raw.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const json& want = tensors[i];
    const GgufTensorInfo& got = file.tensors()[i];  // same order as the file
    SCOPED_TRACE(got.name);
    EXPECT_EQ(got.name, want["name"].get<std::string>());
    EXPECT_EQ(upper(tensor_type_info(got.type).name), upper(want["type"].get<std::string>()));
    EXPECT_EQ(got.ne, want["ne"].get<std::vector<int64_t>>());
    EXPECT_EQ(got.n_bytes, want["n_bytes"].get<uint64_t>());
    int64_t n = 1;
    for (int64_t d : got.ne) n *= d;
    EXPECT_EQ(got.n_elements, n);
    const uint64_t absolute = want["data_offset"].get<uint64_t>();
    EXPECT_EQ(file.data_offset() + got.offset, absolute);
    // A view into the mapping, not a copy, holding the file's bytes.
    ASSERT_GE(got.data, image.data());
    ASSERT_LE(got.data + got.n_bytes, image.data() + image.size());
    EXPECT_EQ(static_cast<uint64_t>(got.data - image.data()), absolute);
    EXPECT_EQ(std::memcmp(got.data, raw.data() + absolute, got.n_bytes), 0);
    EXPECT_EQ(file.find_tensor(got.name), &got);
  }
  EXPECT_EQ(file.find_tensor("no.such.tensor"), nullptr);
}

INSTANTIATE_TEST_SUITE_P(QwenTiny, GgufFixture, ::testing::ValuesIn(kFixtures),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(GgufFixtureGetters, TypedGettersOnTinyF32) {
  const GgufFile file = GgufFile::open(fixture_path("tiny-f32", ".gguf"));
  EXPECT_EQ(file.get_string("general.architecture"), "qwen35");
  EXPECT_EQ(file.get_u64("qwen35.block_count"), 5u);
  EXPECT_EQ(file.get_i64("qwen35.embedding_length"), 64);
  EXPECT_EQ(static_cast<float>(file.get_f64("qwen35.attention.layer_norm_rms_epsilon")), 1e-6f);
  EXPECT_EQ(file.get_f64("qwen35.context_length"), 4096.0);  // integers convert to double
  EXPECT_FALSE(file.get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_EQ(file.get_int_array("qwen35.rope.dimension_sections"), (std::vector<int64_t>{2, 1, 1, 0}));
  const auto tokens = file.get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 512u);
  EXPECT_EQ(tokens[0], "!");
  EXPECT_EQ(file.get_array("tokenizer.ggml.token_type").elements.size(), 512u);

  auto code_of = [](auto&& call) {
    try {
      call();
    } catch (const GgufError& e) {
      return e.code();
    }
    return GgufErrorCode::Io;  // "no error" is reported as something neither test expects
  };
  EXPECT_EQ(code_of([&] { file.get_u64("qwen35.no_such_key"); }), GgufErrorCode::MissingKey);
  EXPECT_EQ(code_of([&] { file.get_u64("general.architecture"); }), GgufErrorCode::WrongKeyType);
  EXPECT_EQ(code_of([&] { file.get_u64("qwen35.rope.freq_base"); }), GgufErrorCode::WrongKeyType);
  EXPECT_EQ(code_of([&] { file.get_string("qwen35.block_count"); }), GgufErrorCode::WrongKeyType);
  EXPECT_EQ(code_of([&] { file.get_bool("qwen35.block_count"); }), GgufErrorCode::WrongKeyType);
  EXPECT_EQ(code_of([&] { file.get_f64("general.name"); }), GgufErrorCode::WrongKeyType);
  EXPECT_EQ(code_of([&] { file.get_int_array("tokenizer.ggml.tokens"); }), GgufErrorCode::WrongKeyType);
  EXPECT_EQ(code_of([&] { file.get_string_array("qwen35.rope.dimension_sections"); }),
            GgufErrorCode::WrongKeyType);
  EXPECT_EQ(code_of([&] { file.get_array("general.name"); }), GgufErrorCode::WrongKeyType);
  try {
    file.get_u64("qwen35.missing");
  } catch (const GgufError& e) {
    EXPECT_NE(std::string(e.what()).find("tiny-f32.gguf"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'qwen35.missing'"), std::string::npos) << e.what();
  }
}

TEST(GgufFixtureGetters, MetadataKeepsFileOrder) {
  const GgufFile file = GgufFile::open(fixture_path("tiny-f32", ".gguf"));
  ASSERT_GE(file.metadata().size(), 2u);
  EXPECT_EQ(file.metadata()[0].first, "general.architecture");
  EXPECT_EQ(file.metadata()[1].first, "general.name");
}

TEST(GgufFixtureGetters, OpenReportsMissingFileAsIo) {
  try {
    GgufFile::open(test_data_dir() / "no-such-file.gguf");
    FAIL() << "opened a missing file";
  } catch (const GgufError& e) {
    EXPECT_EQ(e.code(), GgufErrorCode::Io);
    EXPECT_NE(std::string(e.what()).find("no-such-file.gguf"), std::string::npos);
  }
  try {
    GgufFile::open(test_data_dir());
    FAIL() << "opened a directory";
  } catch (const GgufError& e) {
    EXPECT_EQ(e.code(), GgufErrorCode::Io);
  }
}

// open() of a FIFO waits for a writer: the path is refused before it is opened. Should the open
// block anyway, the test writes into the FIFO itself so that it fails instead of hanging.
TEST(GgufFixtureGetters, OpenRefusesAFifoWithoutBlocking) {
  const ScratchDir dir("fifo");
  const std::filesystem::path fifo = dir / "model.gguf";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  auto opening = std::async(std::launch::async, [&]() -> std::string {
    try {
      GgufFile::open(fifo);
      return "opened";
    } catch (const GgufError& e) {
      return std::string(gguf_error_code_name(e.code())) + ": " + e.what();
    }
  });
  const bool finished = opening.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  if (!finished) {
    const int writer = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);  // lets the blocked open() return
    if (writer >= 0) ::close(writer);
  }
  const std::string result = opening.get();
  EXPECT_TRUE(finished) << "GgufFile::open blocked on a FIFO";
  EXPECT_EQ(result.rfind("Io: ", 0), 0u) << result;
  EXPECT_NE(result.find("not a regular file"), std::string::npos) << result;
  EXPECT_NE(result.find("FIFO"), std::string::npos) << result;
}

}  // namespace
}  // namespace peregrine::test
