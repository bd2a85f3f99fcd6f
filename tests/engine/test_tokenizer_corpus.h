// Reads tests/data/tokenizer-qwen3: corpus.jsonl joined with expected.jsonl by id.
#pragma once

#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace peregrine::test {

inline std::string tokenizer_data_dir() { return std::string(PEREGRINE_TEST_DATA_DIR) + "/tokenizer-qwen3"; }

struct CorpusLine {
  int id = 0;
  std::string tag;
  std::string text;
  nlohmann::json expected;  // the matching line of expected.jsonl
};

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<nlohmann::json> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

inline std::vector<CorpusLine> read_corpus() {
  const auto corpus = read_jsonl(tokenizer_data_dir() + "/corpus.jsonl");
  const auto expected = read_jsonl(tokenizer_data_dir() + "/expected.jsonl");
  if (corpus.size() != expected.size()) throw std::runtime_error("corpus.jsonl and expected.jsonl differ in length");
  std::vector<CorpusLine> lines;
  for (size_t i = 0; i < corpus.size(); ++i) {
    if (corpus[i]["id"] != expected[i]["id"]) throw std::runtime_error("corpus/expected ids out of step");
    lines.push_back(CorpusLine{corpus[i]["id"].get<int>(), corpus[i]["tag"].get<std::string>(),
                               corpus[i]["text"].get<std::string>(), expected[i]});
  }
  return lines;
}

}  // namespace peregrine::test
