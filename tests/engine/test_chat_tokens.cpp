// End to end from text to ids: the expected render of each reference conversation, encoded with the
// real Qwen tokenizer, must give exactly the ids Hugging Face produced for it.
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "peregrine/tokenizer.h"

namespace {

const std::string kDir = std::string(PEREGRINE_TEST_DATA_DIR) + "/tokenizer-qwen3/";

TEST(ChatTokens, ReferenceRendersEncodeToReferenceIds) {
  const auto tokenizer = peregrine::Tokenizer::from_hf_json(kDir + "tokenizer.json");
  std::ifstream in(kDir + "chat_expected.jsonl");
  ASSERT_TRUE(in) << "missing chat_expected.jsonl";
  int checked = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto entry = nlohmann::json::parse(line);
    const auto expected = entry.at("ids").get<std::vector<int32_t>>();
    const auto ids = tokenizer.encode(entry.at("text").get<std::string>());
    EXPECT_EQ(ids, expected) << "conversation " << entry.at("name");
    ++checked;
  }
  EXPECT_EQ(checked, 10);
}

}  // namespace
