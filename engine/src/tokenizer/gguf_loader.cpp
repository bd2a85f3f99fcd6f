// Tokenizer::load_gguf: reads the tokenizer.ggml.* metadata that llama.cpp's converter writes.
#include <chrono>

#include "peregrine/error.h"
#include "peregrine/gguf.h"
#include "peregrine/log.h"
#include "peregrine/tokenizer.h"

namespace peregrine {
namespace {

// llama.cpp's llama_token_type values.
TokenKind kind_of(int64_t type, size_t index, const std::string& source) {
  switch (type) {
    case 1: return TokenKind::Normal;
    case 2: return TokenKind::Control;  // UNKNOWN: llama.cpp treats it like a control token
    case 3: return TokenKind::Control;
    case 4: return TokenKind::UserDefined;
    case 5: return TokenKind::Unused;
    case 6: return TokenKind::Normal;   // BYTE
    default:
      throw Error(source + ": tokenizer.ggml.token_type[" + std::to_string(index) + "] = " + std::to_string(type) +
                  " is not a token type (expected 1..6)");
  }
}

// "<file>: <key> should be <expected>, but it is the <TYPE> <value>", as GgufFile's typed getters say it.
[[noreturn]] void wrong_type(const GgufFile& file, const char* key, const GgufValue& value, const char* expected) {
  throw Error(file.display_name() + ": " + key + " should be " + expected + ", but it is the " +
              std::string(gguf_value_type_name(value.type())) + " " + value.to_display_string(4));
}

std::optional<int32_t> optional_id(const GgufFile& file, const char* key) {
  const GgufValue* value = file.find(key);
  if (!value) return std::nullopt;
  const auto id = value->as_i64();
  if (!id || *id < 0 || *id > INT32_MAX) wrong_type(file, key, *value, "a token id (an integer in [0, 2147483647])");
  return static_cast<int32_t>(*id);
}

}  // namespace

TokenizerData Tokenizer::load_gguf(const GgufFile& file) {
  const std::string& source = file.display_name();
  TokenizerData data;
  data.source = source;

  const std::string& model = file.get_string("tokenizer.ggml.model");
  if (model != "gpt2") {
    throw Error(source + ": tokenizer.ggml.model is '" + model + "', expected 'gpt2' (byte-level BPE)");
  }
  const std::string& pre = file.get_string("tokenizer.ggml.pre");
  if (pre == "qwen2") {
    data.split_pattern = kQwen2SplitPattern;
  } else if (pre == "qwen35") {
    data.split_pattern = kQwen35SplitPattern;
  } else {
    throw Error(source + ": tokenizer.ggml.pre is '" + pre + "', expected 'qwen2' or 'qwen35'");
  }
  // llama.cpp skips normalization; Qwen's tokenizer.json asks for NFC, and we follow it.
  data.nfc = true;

  data.tokens = file.get_string_array("tokenizer.ggml.tokens");
  const std::vector<int64_t> types = file.get_int_array("tokenizer.ggml.token_type");
  if (types.size() != data.tokens.size()) {
    throw Error(source + ": tokenizer.ggml.token_type has " + std::to_string(types.size()) +
                " entries, expected one per token (" + std::to_string(data.tokens.size()) + ")");
  }
  data.kinds.reserve(types.size());
  for (size_t i = 0; i < types.size(); ++i) {
    data.kinds.push_back(kind_of(types[i], i, source));
    if (data.kinds.back() == TokenKind::Control) data.skip_on_decode.push_back(static_cast<int32_t>(i));
  }

  const std::vector<std::string> merges = file.get_string_array("tokenizer.ggml.merges");
  data.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string& m = merges[i];
    const size_t space = m.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == m.size()) {
      throw Error(source + ": tokenizer.ggml.merges[" + std::to_string(i) + "] is '" + m +
                  "', expected \"left right\"");
    }
    data.merges.emplace_back(m.substr(0, space), m.substr(space + 1));
  }

  data.bos_id = optional_id(file, "tokenizer.ggml.bos_token_id");
  data.eos_id = optional_id(file, "tokenizer.ggml.eos_token_id");
  data.pad_id = optional_id(file, "tokenizer.ggml.padding_token_id");
  if (const GgufValue* add_bos = file.find("tokenizer.ggml.add_bos_token")) {
    const auto flag = add_bos->as_bool();
    if (!flag) wrong_type(file, "tokenizer.ggml.add_bos_token", *add_bos, "a bool");
    data.add_bos = *flag;
  }
  return data;
}

Tokenizer Tokenizer::from_gguf(const GgufFile& file) {
  const auto started = std::chrono::steady_clock::now();
  Tokenizer tokenizer = from_data(load_gguf(file));
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  log::get("tokenizer")->info("loaded tokenizer of {} ({} tokens) in {:.0f} ms", file.display_name(),
                              tokenizer.vocab_size(), ms);
  return tokenizer;
}

}  // namespace peregrine
