// Shared fixtures of the engine tests: the qwen35-tiny model and its llama.cpp greedy run.
#pragma once

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace peregrine::test {

inline std::string tiny_model_path() { return std::string(PEREGRINE_TEST_DATA_DIR) + "/qwen35-tiny/tiny-f32.gguf"; }

struct GreedyReference {
  std::vector<int32_t> prompt;     // 16 ids
  std::vector<int32_t> generated;  // 32 ids, llama.cpp argmax
};

inline GreedyReference tiny_greedy() {
  std::ifstream in(std::string(PEREGRINE_TEST_DATA_DIR) + "/qwen35-tiny/tiny-f32.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  GreedyReference ref;
  ref.prompt = j.at("greedy").at("prompt").get<std::vector<int32_t>>();
  ref.generated = j.at("greedy").at("generated").get<std::vector<int32_t>>();
  return ref;
}

}  // namespace peregrine::test
