// Header values that size what the loader allocates (block count, dimensions, per-layer arrays)
// are checked against what the file holds before anything is allocated: a damaged or hostile
// header is refused at once, with the key and the bound, instead of allocating gigabytes first.
#include <gtest/gtest.h>

#include <chrono>

#include "peregrine/error.h"
#include "peregrine/gguf.h"
#include "peregrine/model_config.h"
#include "test_model_util.h"

namespace peregrine {
namespace {

using test::Mutation;

struct BoundCase {
  const char* label;
  const char* key;
  GgufValue value;
  const char* expected;  // substring of the error
};

class HeaderBounds : public ::testing::TestWithParam<BoundCase> {
 protected:
  test::ModelScratch dir{"bounds"};
};

TEST_P(HeaderBounds, RefusedAtOnceNamingKeyAndBound) {
  const BoundCase& k = GetParam();
  Mutation m;
  m.set_keys[k.key] = k.value;
  const auto path = dir / "m.gguf";
  test::rewrite_gguf(test::fixture("tiny-f32.gguf"), path, m);
  const GgufFile file = GgufFile::open(path);

  std::string error = "no error";
  const auto start = std::chrono::steady_clock::now();
  try {
    const ModelConfig config = ModelConfig::from_gguf(file);
    check_tensors(config, file);
  } catch (const Error& e) {
    error = e.what();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(error.find(std::string("'") + k.key + "'"), std::string::npos) << error;
  EXPECT_NE(error.find(k.expected), std::string::npos) << error;
  // Generous: the check is arithmetic on the header (milliseconds); before it, tens of seconds.
  EXPECT_LT(seconds, 2.0) << error;
}

GgufValue u32_array(std::vector<uint32_t> values) {
  std::vector<GgufValue> elements;
  for (uint32_t v : values) elements.push_back(GgufValue::u32(v));
  return GgufValue::array(GgufValueType::UINT32, std::move(elements));
}

INSTANTIATE_TEST_SUITE_P(
    Keys, HeaderBounds,
    ::testing::Values(
        // tiny-f32 has blocks blk.0 .. blk.4 (4 trunk layers and the MTP block).
        BoundCase{"block_count_huge", "qwen35.block_count", GgufValue::u64(uint64_t{1} << 40),
                  "1099511627776 blocks, but the file's tensors stop at blk.4 (at most 5 blocks)"},
        BoundCase{"block_count_modest", "qwen35.block_count", GgufValue::u32(100000),
                  "at most 5 blocks"},
        BoundCase{"embedding_length", "qwen35.embedding_length", GgufValue::u64(uint64_t{1} << 40),
                  "more than the largest tensor of the file holds (32768 elements)"},
        BoundCase{"head_count_overflows", "qwen35.attention.head_count", GgufValue::u64(uint64_t{1} << 61),
                  "more than the largest tensor of the file holds"},
        BoundCase{"state_size", "qwen35.ssm.state_size", GgufValue::u64(uint64_t{1} << 40),
                  "more than the largest tensor of the file holds"},
        BoundCase{"time_step_rank_product", "qwen35.ssm.time_step_rank", GgufValue::u32(4096),
                  "ssm.time_step_rank × ssm.state_size = 65536"},
        BoundCase{"per_layer_array_length", "qwen35.attention.head_count_kv", u32_array({2, 2, 2}),
                  "expected one entry per block (5), found 3"}),
    [](const auto& info) { return std::string(info.param.label); });

}  // namespace
}  // namespace peregrine
