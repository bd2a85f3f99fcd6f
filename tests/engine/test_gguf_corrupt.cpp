// Validation: every file of tests/data/gguf-corrupt/ is refused with its own error code, and
// systematic damage to a valid file (every truncation, every bit flip) is refused cleanly.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <set>

#include "peregrine/gguf.h"
#include "test_gguf_corrupt_cases.h"
#include "test_gguf_util.h"

namespace peregrine::test {
namespace {

std::filesystem::path corrupt_dir() { return test_data_dir() / "gguf-corrupt"; }

const std::vector<CorruptCase>& cases() {
  static const std::vector<CorruptCase> all =
      make_corrupt_cases(read_bytes(test_data_dir() / "qwen35-tiny" / "tiny-f32.gguf"));
  return all;
}

void write_file(const std::filesystem::path& path, const void* data, size_t n) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
  ASSERT_TRUE(out.good()) << path;
}

TEST(GgufCorrupt, CommittedFilesAreWhatTheGeneratorMakes) {
  if (std::getenv("PEREGRINE_REGENERATE_GGUF_CORRUPT")) {
    std::filesystem::create_directories(corrupt_dir());
    for (const auto& c : cases()) write_file(corrupt_dir() / c.file_name, c.bytes.data(), c.bytes.size());
    const std::string readme = corrupt_cases_readme(cases());
    write_file(corrupt_dir() / "README.md", readme.data(), readme.size());
  }
  EXPECT_GE(cases().size(), 30u);
  std::set<std::string> names;
  for (const auto& c : cases()) {
    EXPECT_TRUE(names.insert(c.file_name).second) << "two cases named " << c.file_name;
    const auto path = corrupt_dir() / c.file_name;
    ASSERT_TRUE(std::filesystem::exists(path))
        << path << " is missing; regenerate with PEREGRINE_REGENERATE_GGUF_CORRUPT=1 (see its README)";
    EXPECT_EQ(read_bytes(path), c.bytes) << path << " differs from the generator's output";
  }
  const std::string readme = corrupt_cases_readme(cases());
  const auto committed = read_bytes(corrupt_dir() / "README.md");
  EXPECT_EQ(std::string(committed.begin(), committed.end()), readme) << "README.md is out of date";
  // No stray files the README does not describe.
  for (const auto& entry : std::filesystem::directory_iterator(corrupt_dir())) {
    const std::string name = entry.path().filename().string();
    if (name != "README.md") {
      EXPECT_TRUE(names.count(name)) << "unlisted file " << name;
    }
  }
}

TEST(GgufCorrupt, EachFileGivesItsErrorCode) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.file_name);
    const auto path = corrupt_dir() / c.file_name;
    if (!c.expected) {
      EXPECT_NO_THROW(GgufFile::open(path));
      continue;
    }
    try {
      GgufFile::open(path);
      ADD_FAILURE() << "accepted; expected " << gguf_error_code_name(*c.expected);
    } catch (const GgufError& e) {
      EXPECT_EQ(gguf_error_code_name(e.code()), gguf_error_code_name(*c.expected)) << e.what();
      // The message names the file.
      EXPECT_NE(std::string(e.what()).find(c.file_name), std::string::npos) << e.what();
    }
    // The same image from memory gives the same verdict.
    try {
      GgufFile::from_memory(c.bytes, c.file_name);
      ADD_FAILURE() << "from_memory accepted it";
    } catch (const GgufError& e) {
      EXPECT_EQ(e.code(), *c.expected) << e.what();
    }
  }
}

TEST(GgufCorrupt, MessagesNameTheKeyOrTensorAndWhatWasExpected) {
  auto message_of = [](const std::string& file) -> std::string {
    for (const auto& c : cases())
      if (c.file_name == file) {
        try {
          GgufFile::from_memory(c.bytes, c.file_name);
        } catch (const GgufError& e) {
          return e.what();
        }
      }
    return "";
  };
  EXPECT_NE(message_of("duplicate-key.gguf").find("'test.u32'"), std::string::npos);
  EXPECT_NE(message_of("duplicate-tensor.gguf").find("'a.weight'"), std::string::npos);
  EXPECT_NE(message_of("row-not-multiple-of-block.gguf").find("'b.weight'"), std::string::npos);
  EXPECT_NE(message_of("row-not-multiple-of-block.gguf").find("block size 32"), std::string::npos);
  EXPECT_NE(message_of("misaligned-offset.gguf").find("'c.bias'"), std::string::npos);
  EXPECT_NE(message_of("string-value-past-eof.gguf").find("'general.name'"), std::string::npos);
  EXPECT_NE(message_of("version-1.gguf").find("expected version 2 or 3"), std::string::npos);
  EXPECT_NE(message_of("big-endian.gguf").find("big-endian"), std::string::npos);
  EXPECT_NE(message_of("overlapping-tensors.gguf").find("'b.weight'"), std::string::npos);
}

// An array that fits the file but would decode to more than the reader's memory budget
// (1 GiB; a decoded element is much larger than one encoded byte) is refused, not allocated.
TEST(GgufCorrupt, ArraysThatFitTheFileButNotTheMemoryBudgetAreRefused) {
  const uint64_t count = 24u << 20;  // 24 Mi one-byte elements: 24 MB on disk, > 1 GiB decoded
  std::vector<uint8_t> image;
  auto put = [&](const auto& v) {
    const size_t at = image.size();
    image.resize(at + sizeof v);
    std::memcpy(image.data() + at, &v, sizeof v);
  };
  put(uint32_t{0x46554747});
  put(uint32_t{3});
  put(uint64_t{0});  // tensors
  put(uint64_t{1});  // keys
  put(uint64_t{1});
  image.push_back('k');
  put(uint32_t{9});  // ARRAY
  put(uint32_t{0});  // of UINT8
  put(count);
  image.resize(image.size() + count, 0);
  try {
    GgufFile::from_memory(image, "huge-array");
    FAIL() << "a " << count << "-element array was decoded";
  } catch (const GgufError& e) {
    EXPECT_EQ(e.code(), GgufErrorCode::CountTooLarge) << e.what();
    EXPECT_NE(std::string(e.what()).find("'k'"), std::string::npos) << e.what();
  }
}

TEST(GgufCorrupt, EveryTruncationOfAValidFileIsRefused) {
  const auto& base = cases().front().bytes;
  ASSERT_FALSE(cases().front().expected);
  const std::set<GgufErrorCode> allowed{GgufErrorCode::Truncated, GgufErrorCode::StringTooLong,
                                        GgufErrorCode::CountTooLarge, GgufErrorCode::BadTensorOffset};
  // The padding after the last tensor is optional (a file may end with the last tensor's data).
  const GgufFile whole = GgufFile::from_memory(base);
  uint64_t data_end = 0;
  for (const auto& t : whole.tensors()) data_end = std::max(data_end, whole.data_offset() + t.offset + t.n_bytes);
  ASSERT_LT(data_end, base.size());
  for (size_t n = 0; n < base.size(); ++n) {
    try {
      GgufFile::from_memory(std::span(base.data(), n));
      if (n < data_end) ADD_FAILURE() << "a " << n << "-byte prefix was accepted";
    } catch (const GgufError& e) {
      EXPECT_LT(n, data_end) << e.what();
      EXPECT_TRUE(allowed.count(e.code())) << n << ": " << e.what();
    }
  }
}

TEST(GgufCorrupt, EveryBitFlipIsAcceptedOrRefusedCleanly) {
  auto bytes = cases().front().bytes;
  size_t refused = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      bytes[i] ^= static_cast<uint8_t>(1u << bit);
      try {
        GgufFile file = GgufFile::from_memory(bytes);
        for (const auto& t : file.tensors()) {  // whatever is accepted lies inside the image
          ASSERT_GE(t.data, bytes.data());
          ASSERT_LE(t.data + t.n_bytes, bytes.data() + bytes.size());
        }
      } catch (const GgufError&) {
        ++refused;
      }
      bytes[i] ^= static_cast<uint8_t>(1u << bit);
    }
  }
  EXPECT_GT(refused, 0u);
}

}  // namespace
}  // namespace peregrine::test
