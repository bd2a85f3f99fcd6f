// Tokenizer::load_hf_json: reads a Hugging Face tokenizer.json (BPE model with a byte-level
// pre-tokenizer) and, when present, the tokenizer_config.json next to it.
#include <chrono>
#include <fstream>

#include <nlohmann/json.hpp>

#include "peregrine/error.h"
#include "peregrine/log.h"
#include "peregrine/tokenizer.h"
#include "tokenizer/hf_json_reader.h"

namespace peregrine {
namespace {

using nlohmann::json;

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open");
  std::string text;
  in.seekg(0, std::ios::end);
  text.resize(static_cast<size_t>(std::max<std::streamoff>(in.tellg(), 0)));
  in.seekg(0, std::ios::beg);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (!in) throw Error(path.string() + ": read failed");
  return text;
}

json read_json(const std::filesystem::path& path) {
  try {
    return json::parse(read_file(path));
  } catch (const json::exception& e) {
    throw Error(path.string() + ": invalid JSON: " + e.what());
  }
}

[[noreturn]] void fail(const std::string& source, const std::string& key, const std::string& what) {
  throw Error(source + ": " + key + ": " + what);
}

// "a string", "an array", ...: the actual type in a wrong-type message.
std::string kind_of(const json& value) {
  switch (value.type()) {
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::null: return "null";
    default: return "a number";
  }
}

[[noreturn]] void wrong_type(const std::string& source, const std::string& key, const std::string& expected,
                             const json& actual) {
  fail(source, key, "expected " + expected + ", found " + kind_of(actual));
}

// `where` is the path of `object` with a trailing dot ("added_tokens[3]."), "" for the root.
const json& member(const json& object, const char* key, const std::string& source, const std::string& where) {
  if (!object.is_object()) wrong_type(source, where.substr(0, where.size() - 1), "an object", object);
  if (!object.contains(key)) fail(source, where + key, "missing");
  return object.at(key);
}

const std::string& string_member(const json& object, const char* key, const std::string& source,
                                 const std::string& where) {
  const json& value = member(object, key, source, where);
  if (!value.is_string()) wrong_type(source, where + key, "a string", value);
  return value.get_ref<const std::string&>();
}

// A member that may be absent (or null: then `fallback`) but, when given, must be a string.
std::string optional_string_member(const json& object, const char* key, const char* fallback,
                                   const std::string& source, const std::string& where) {
  if (!object.is_object() || !object.contains(key) || object[key].is_null()) return fallback;
  const json& value = object[key];
  if (!value.is_string()) wrong_type(source, where + key, "a string", value);
  return value.get<std::string>();
}

bool flag_member(const json& object, const char* key, const std::string& source, const std::string& where) {
  if (!object.contains(key) || object[key].is_null()) return false;
  const json& value = object[key];
  if (!value.is_boolean()) wrong_type(source, where + key, "true or false", value);
  return value.get<bool>();
}

// Ids past this are refused before a vocabulary of that size is allocated.
constexpr int64_t kMaxTokenId = 16'000'000;

int64_t id_member(const json& object, const std::string& source, const std::string& where) {
  const json& value = member(object, "id", source, where);
  if (!value.is_number_integer()) wrong_type(source, where + "id", "an integer", value);
  const bool in_range = value.is_number_unsigned() ? value.get<uint64_t>() <= kMaxTokenId
                                                   : value.get<int64_t>() >= 0 && value.get<int64_t>() <= kMaxTokenId;
  if (!in_range) fail(source, where + "id", value.dump() + " is outside [0, " + std::to_string(kMaxTokenId) + "]");
  return value.get<int64_t>();
}

// convert_hf_to_gguf.py marks non-special added tokens that look like <|...|> as control tokens;
// llama.cpp's parse_special=false then spells them out.
bool looks_like_control(const std::string& text) {
  return text.size() >= 4 && text.rfind("<|", 0) == 0 && text.compare(text.size() - 2, 2, "|>") == 0;
}

bool normalizer_is_nfc(const json& normalizer, const std::string& source) {
  if (normalizer.is_null()) return false;
  const std::string type = optional_string_member(normalizer, "type", "", source, "normalizer.");
  if (type == "NFC") return true;
  if (type == "Sequence") {
    const json& steps = member(normalizer, "normalizers", source, "normalizer.");
    if (steps.size() == 1) return normalizer_is_nfc(steps[0], source);
    if (steps.empty()) return false;
  }
  fail(source, "normalizer", "unsupported normalizer " + normalizer.dump() + " (expected NFC or null)");
}

// The regex of the Split step; the ByteLevel step must not add its own regex or a prefix space.
std::string split_pattern_of(const json& pre, const std::string& source) {
  std::string pattern;
  std::vector<const json*> steps;
  if (optional_string_member(pre, "type", "", source, "pre_tokenizer.") == "Sequence") {
    for (const json& step : member(pre, "pretokenizers", source, "pre_tokenizer.")) steps.push_back(&step);
  } else {
    steps.push_back(&pre);
  }
  for (const json* step : steps) {
    const std::string type = optional_string_member(*step, "type", "", source, "pre_tokenizer.");
    if (type == "Split") {
      const json& p = member(*step, "pattern", source, "pre_tokenizer.Split.");
      if (!p.contains("Regex") || !p["Regex"].is_string()) {
        fail(source, "pre_tokenizer.Split.pattern", "expected {\"Regex\": \"...\"}");
      }
      if (optional_string_member(*step, "behavior", "Isolated", source, "pre_tokenizer.Split.") != "Isolated" ||
          flag_member(*step, "invert", source, "pre_tokenizer.Split.")) {
        fail(source, "pre_tokenizer.Split", "only behavior Isolated without invert is supported");
      }
      if (!pattern.empty()) fail(source, "pre_tokenizer", "more than one Split step");
      pattern = p["Regex"].get<std::string>();
    } else if (type == "ByteLevel") {
      if (flag_member(*step, "add_prefix_space", source, "pre_tokenizer.ByteLevel.") ||
          flag_member(*step, "use_regex", source, "pre_tokenizer.ByteLevel.")) {
        fail(source, "pre_tokenizer.ByteLevel", "add_prefix_space and use_regex must be false");
      }
    } else {
      fail(source, "pre_tokenizer", "unsupported step " + step->dump().substr(0, 200));
    }
  }
  if (pattern.empty()) fail(source, "pre_tokenizer", "no Split step with a Regex pattern");
  return pattern;
}

// tokenizer_config.json writes special tokens as "text" or {"content": "text", ...}.
std::optional<std::string> config_token_text(const json& config, const char* key) {
  if (!config.contains(key)) return std::nullopt;
  const json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

void apply_config(const std::filesystem::path& config_path, TokenizerData& data) {
  const json config = read_json(config_path);
  const std::string source = config_path.string();
  auto find_id = [&](const char* key) -> std::optional<int32_t> {
    const auto text = config_token_text(config, key);
    if (!text) return std::nullopt;
    for (size_t id = 0; id < data.tokens.size(); ++id) {
      if (data.kinds[id] != TokenKind::Normal && data.tokens[id] == *text) return static_cast<int32_t>(id);
    }
    fail(source, key, "token '" + *text + "' is not an added token of " + data.source);
  };
  data.bos_id = find_id("bos_token");
  data.eos_id = find_id("eos_token");
  data.pad_id = find_id("pad_token");
  if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean()) {
    data.add_bos = config["add_bos_token"].get<bool>();
  }
}

}  // namespace

TokenizerData Tokenizer::load_hf_json_text(const std::string& text, const std::string& source) {
  tokenizer_detail::HfTokenizerJson file = tokenizer_detail::read_hf_tokenizer_json(text, source);
  const json& root = file.rest;
  TokenizerData data;
  data.source = source;
  try {
    const json& model = member(root, "model", source, "");
    if (!model.is_object()) wrong_type(source, "model", "an object", model);
    if (optional_string_member(model, "type", "BPE", source, "model.") != "BPE") fail(source, "model.type", "expected BPE");
    auto set_and_not_empty = [&](const char* key) {
      return model.contains(key) && !model[key].is_null() && model[key] != "";
    };
    if (set_and_not_empty("continuing_subword_prefix") || set_and_not_empty("end_of_word_suffix")) {
      fail(source, "model", "continuing_subword_prefix / end_of_word_suffix are not supported");
    }
    if (model.contains("byte_fallback") && model["byte_fallback"] == true) {
      fail(source, "model.byte_fallback", "not supported");
    }
    // The reader takes vocab and merges out of the tree only in their expected shapes; any other
    // shape stays in it and is named here.
    if (!file.has_vocab) {
      if (model.contains("vocab")) wrong_type(source, "model.vocab", "an object {\"token\": id, ...}", model["vocab"]);
      fail(source, "model.vocab", "missing");
    }
    if (!file.has_merges) {
      if (model.contains("merges")) wrong_type(source, "model.merges", "an array of merges", model["merges"]);
      fail(source, "model.merges", "missing");
    }

    // Vocabulary: model.vocab plus added_tokens (ids past the BPE vocab, or the same text at a vocab id).
    const json& added = root.contains("added_tokens") ? root["added_tokens"] : json::array();
    if (!added.is_array()) wrong_type(source, "added_tokens", "an array", added);
    auto added_where = [](size_t i) { return "added_tokens[" + std::to_string(i) + "]."; };
    int64_t max_id = -1;
    for (const auto& [text, id] : file.vocab) {
      if (id < 0) fail(source, "model.vocab." + text, "expected an id >= 0");
      max_id = std::max(max_id, id);
    }
    for (size_t i = 0; i < added.size(); ++i) max_id = std::max(max_id, id_member(added[i], source, added_where(i)));
    if (max_id < 0) fail(source, "model.vocab", "empty");
    if (max_id > kMaxTokenId) fail(source, "model.vocab", "id " + std::to_string(max_id) + " is implausibly large");
    // Every id up to the largest needs a token: fewer tokens than ids leave a hole, found here
    // before a few bytes of input size a vocabulary of millions of entries.
    const size_t given = file.vocab.size() + added.size();
    if (static_cast<size_t>(max_id) >= given) {
      fail(source, "model.vocab",
           "ids run to " + std::to_string(max_id) + ", but " + std::to_string(given) + " tokens cannot fill them");
    }
    const auto n = static_cast<size_t>(max_id + 1);
    data.tokens.resize(n);
    data.kinds.assign(n, TokenKind::Unused);
    enum class Filler : uint8_t { None, Vocab, Added };
    std::vector<Filler> filled(n, Filler::None);
    for (auto& [text, id] : file.vocab) {
      const auto i = static_cast<size_t>(id);
      if (filled[i] != Filler::None) fail(source, "model.vocab." + text, "id " + std::to_string(i) + " is used twice");
      data.tokens[i] = std::move(text);
      data.kinds[i] = TokenKind::Normal;
      filled[i] = Filler::Vocab;
    }
    for (size_t i = 0; i < added.size(); ++i) {
      const json& token = added[i];
      const std::string where = added_where(i);
      const auto id = static_cast<size_t>(id_member(token, source, where));
      const std::string& text = string_member(token, "content", source, where);
      if (filled[id] != Filler::None && data.tokens[id] != text) {
        fail(source, where.substr(0, where.size() - 1),
             "'" + text + "' has id " + std::to_string(id) + ", which " +
                 (filled[id] == Filler::Vocab ? "model.vocab" : "added_tokens") + " already gives to '" +
                 data.tokens[id] + "'");
      }
      const bool special = flag_member(token, "special", source, where);
      if (flag_member(token, "normalized", source, where) || flag_member(token, "lstrip", source, where) ||
          flag_member(token, "rstrip", source, where) || flag_member(token, "single_word", source, where)) {
        log::get("tokenizer")->warn("{}: added token '{}' asks for normalized/lstrip/rstrip/single_word; "
                                    "matched as plain raw text", source, text);
      }
      data.tokens[id] = text;
      data.kinds[id] = special || looks_like_control(text) ? TokenKind::Control : TokenKind::UserDefined;
      if (special) data.skip_on_decode.push_back(static_cast<int32_t>(id));
      filled[id] = Filler::Added;
    }
    for (size_t id = 0; id < n; ++id) {
      if (filled[id] == Filler::None) fail(source, "model.vocab", "id " + std::to_string(id) + " has no token");
    }
    data.merges = std::move(file.merges);

    data.nfc = normalizer_is_nfc(root.contains("normalizer") ? root["normalizer"] : json(), source);
    data.split_pattern = split_pattern_of(member(root, "pre_tokenizer", source, ""), source);
  } catch (const json::exception& e) {
    throw Error(source + ": unexpected JSON structure: " + e.what());
  }
  return data;
}

TokenizerData Tokenizer::load_hf_json(const std::filesystem::path& path) {
  const auto started = std::chrono::steady_clock::now();
  const std::string source = path.string();
  TokenizerData data = load_hf_json_text(read_file(path), source);
  const auto config_path = path.parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(config_path)) {
    try {
      apply_config(config_path, data);
    } catch (const json::exception& e) {
      throw Error(config_path.string() + ": unexpected JSON structure: " + e.what());
    }
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  log::get("tokenizer")->debug("{}: read {} tokens and {} merges in {:.1f} ms", source, data.tokens.size(),
                               data.merges.size(), ms);
  return data;
}

Tokenizer Tokenizer::from_hf_json(const std::filesystem::path& path) {
  const auto started = std::chrono::steady_clock::now();
  Tokenizer tokenizer = from_data(load_hf_json(path));
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  log::get("tokenizer")->info("loaded {} ({} tokens) in {:.0f} ms", path.string(), tokenizer.vocab_size(), ms);
  return tokenizer;
}

}  // namespace peregrine
