// A streaming (SAX) reader for Hugging Face tokenizer.json. The two big members,
// model.vocab (~150k entries) and model.merges (~150k pairs), go straight into vectors; the
// rest (added_tokens, normalizer, pre_tokenizer, ...) is small and kept as a JSON tree.
// This is several times faster than building a DOM of the whole 11 MB file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace peregrine::tokenizer_detail {

struct HfTokenizerJson {
  nlohmann::json rest;  // the document without model.vocab and model.merges
  bool has_vocab = false;
  bool has_merges = false;
  std::vector<std::pair<std::string, int64_t>> vocab;            // token -> id, file order
  std::vector<std::pair<std::string, std::string>> merges;       // rank order
  std::optional<std::string> problem;  // first structural problem in vocab/merges, with its key
};

// Parses `text`; throws peregrine::Error("<source>: invalid JSON: ...") on a syntax error.
HfTokenizerJson read_hf_tokenizer_json(const std::string& text, const std::string& source);

}  // namespace peregrine::tokenizer_detail
