// The tokenizer read from GGUF metadata (tests/data/qwen35-tiny/tiny-f32.gguf): llama.cpp's ids
// for the strings in tiny-f32.json -> tokenizer_checks, with special parsing on and off.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "peregrine/gguf.h"
#include "peregrine/tokenizer.h"

namespace peregrine {
namespace {

const std::string kDir = std::string(PEREGRINE_TEST_DATA_DIR) + "/qwen35-tiny";

TEST(TokenizerGguf, MatchesLlamaCppTokenizerChecks) {
  const GgufFile file = GgufFile::open(kDir + "/tiny-f32.gguf");
  const Tokenizer t = Tokenizer::from_gguf(file);
  std::ifstream in(kDir + "/tiny-f32.json");
  const auto reference = nlohmann::json::parse(in);
  int passed = 0;
  int total = 0;
  for (const auto& check : reference.at("tokenizer_checks")) {
    const auto text = check.at("text").get<std::string>();
    const bool parse_special = check.at("parse_special").get<bool>();
    const auto expected = check.at("ids").get<std::vector<int32_t>>();
    // llama.cpp parse_special=false still matches user-defined tokens such as <think>.
    const auto ids =
        t.encode(text, EncodeOptions().with_special(parse_special ? SpecialTokens::All : SpecialTokens::UserDefinedOnly));
    ++total;
    if (ids == expected) {
      ++passed;
    } else {
      ADD_FAILURE() << "'" << text << "' parse_special=" << parse_special << ": got "
                    << ::testing::PrintToString(ids) << " expected " << ::testing::PrintToString(expected);
    }
    EXPECT_EQ(t.decode(ids), text);
  }
  std::printf("[ variant  ] %-18s %d/%d checks pass\n", "gguf tiny-f32", passed, total);
  EXPECT_EQ(total, 12);
  EXPECT_EQ(passed, total);
}

TEST(TokenizerGguf, MetadataAndSpecialIds) {
  const GgufFile file = GgufFile::open(kDir + "/tiny-f32.gguf");
  const Tokenizer t = Tokenizer::from_gguf(file);
  EXPECT_EQ(t.vocab_size(), 512);
  EXPECT_EQ(t.split_pattern(), kQwen35SplitPattern);  // tokenizer.ggml.pre = qwen35
  EXPECT_TRUE(t.uses_nfc());
  EXPECT_EQ(t.eos(), 509);
  EXPECT_EQ(t.bos(), 507);
  EXPECT_EQ(t.pad(), 507);
  EXPECT_FALSE(t.adds_bos());
  EXPECT_EQ(t.end_of_text(), 507);
  EXPECT_EQ(t.im_start(), 508);
  EXPECT_EQ(t.im_end(), 509);
  EXPECT_EQ(t.think(), 510);
  EXPECT_EQ(t.end_think(), 511);
  EXPECT_TRUE(t.is_end_of_generation(507));
  EXPECT_TRUE(t.is_end_of_generation(509));
  EXPECT_FALSE(t.is_end_of_generation(508));
  EXPECT_EQ(t.token_kind(508), TokenKind::Control);
  EXPECT_EQ(t.token_kind(510), TokenKind::UserDefined);

  // The 64-token ChatML sequence of the fixture (README "What was run").
  const std::string chat =
      "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n<think>\nIt is "
      "Paris.\n</think>\n\nParis.<|im_end|>\n<|im_start|>user\nAnd the quick brown fox jumps over the lazy "
      "dog?<|im_end|>\n<|endoftext|>";
  std::ifstream in(kDir + "/tiny-f32.json");
  const auto reference = nlohmann::json::parse(in);
  EXPECT_EQ(t.encode(chat), reference.at("tokens").get<std::vector<int32_t>>());
  // Control tokens are dropped by skip_special, user-defined ones kept.
  EXPECT_EQ(t.decode(t.encode("<|im_start|>a<think>b<|im_end|>"), DecodeOptions::skipping_special()), "a<think>b");
}

// Writes the tokenizer.* metadata of tiny-f32.gguf (no tensors) to a scratch file after letting
// `edit` change it, then loads the tokenizer from it; returns the error message ("" if none).
std::string load_error_after(const std::string& name,
                             const std::function<void(std::vector<std::pair<std::string, GgufValue>>&)>& edit) {
  const GgufFile original = GgufFile::open(kDir + "/tiny-f32.gguf");
  std::vector<std::pair<std::string, GgufValue>> metadata;
  for (const auto& [key, value] : original.metadata()) {
    if (key.rfind("tokenizer.", 0) == 0) metadata.emplace_back(key, value);
  }
  edit(metadata);
  const auto path = std::filesystem::temp_directory_path() /
                    ("peregrine-tokenizer-" + std::to_string(::getpid()) + "-" + name + ".gguf");
  {
    GgufWriter writer(path);
    for (const auto& [key, value] : metadata) writer.set(key, value);
    writer.begin();
    writer.finish();
  }
  std::string message;
  try {
    const GgufFile file = GgufFile::open(path);
    Tokenizer::from_gguf(file);
  } catch (const Error& e) {
    message = e.what();
  }
  std::filesystem::remove(path);
  if (message.find(path.string()) == std::string::npos) return "message does not name the file: " + message;
  return message;
}

void erase_key(std::vector<std::pair<std::string, GgufValue>>& metadata, const std::string& key) {
  std::erase_if(metadata, [&](const auto& kv) { return kv.first == key; });
}

GgufValue& value_of(std::vector<std::pair<std::string, GgufValue>>& metadata, const std::string& key) {
  for (auto& [k, v] : metadata) {
    if (k == key) return v;
  }
  throw std::runtime_error("no key " + key);
}

TEST(TokenizerGguf, UnchangedCopyLoads) {
  EXPECT_EQ(load_error_after("same", [](auto&) {}), "message does not name the file: ");
}

TEST(TokenizerGguf, LoadErrorsNameFileAndKey) {
  auto contains = [](const std::string& message, const std::string& part) {
    return message.find(part) != std::string::npos;
  };
  const auto no_merges = load_error_after("nomerges", [](auto& m) { erase_key(m, "tokenizer.ggml.merges"); });
  EXPECT_TRUE(contains(no_merges, "tokenizer.ggml.merges")) << no_merges;

  const auto no_tokens = load_error_after("notokens", [](auto& m) { erase_key(m, "tokenizer.ggml.tokens"); });
  EXPECT_TRUE(contains(no_tokens, "tokenizer.ggml.tokens")) << no_tokens;

  const auto model = load_error_after("model", [](auto& m) {
    value_of(m, "tokenizer.ggml.model") = GgufValue::string("llama");
  });
  EXPECT_TRUE(contains(model, "tokenizer.ggml.model is 'llama', expected 'gpt2'")) << model;

  const auto pre = load_error_after("pre", [](auto& m) { value_of(m, "tokenizer.ggml.pre") = GgufValue::string("llama3"); });
  EXPECT_TRUE(contains(pre, "tokenizer.ggml.pre is 'llama3'")) << pre;

  const auto types = load_error_after("types", [](auto& m) {
    auto& v = value_of(m, "tokenizer.ggml.token_type");
    std::vector<GgufValue> fewer = v.as_array()->elements;
    fewer.pop_back();
    v = GgufValue::array(GgufValueType::INT32, std::move(fewer));
  });
  EXPECT_TRUE(contains(types, "tokenizer.ggml.token_type has 511 entries, expected one per token (512)")) << types;

  const auto merge = load_error_after("merge", [](auto& m) {
    auto& v = value_of(m, "tokenizer.ggml.merges");
    std::vector<GgufValue> merges = v.as_array()->elements;
    merges.push_back(GgufValue::string("qq \xC4\xA0zz"));
    v = GgufValue::array(GgufValueType::STRING, std::move(merges));
  });
  EXPECT_TRUE(contains(merge, "refers to unknown token 'qq'")) << merge;

  const auto eos = load_error_after("eos", [](auto& m) {
    value_of(m, "tokenizer.ggml.eos_token_id") = GgufValue::u32(512);
  });
  EXPECT_TRUE(contains(eos, "eos token id 512")) << eos;

  const auto eos_type = load_error_after("eostype", [](auto& m) {
    value_of(m, "tokenizer.ggml.eos_token_id") = GgufValue::string("<|im_end|>");
  });
  EXPECT_TRUE(contains(eos_type, "tokenizer.ggml.eos_token_id should be a token id (an integer in [0, 2147483647]), "
                                 "but it is the STRING")) << eos_type;

  const auto add_bos = load_error_after("addbos", [](auto& m) {
    value_of(m, "tokenizer.ggml.add_bos_token") = GgufValue::u8(1);
  });
  EXPECT_TRUE(contains(add_bos, "tokenizer.ggml.add_bos_token should be a bool, but it is the UINT8 1")) << add_bos;
}

}  // namespace
}  // namespace peregrine
