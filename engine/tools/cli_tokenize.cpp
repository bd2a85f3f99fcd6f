// peregrine-cli tokenize / detokenize: text <-> token ids with a model's (or a tokenizer.json's) vocabulary.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_args.h"
#include "cli_commands.h"
#include "peregrine/error.h"
#include "peregrine/gguf.h"
#include "peregrine/tokenizer.h"

namespace peregrine::cli {
namespace {

Tokenizer load_tokenizer(const std::string& cmd, const ParsedArgs& a) {
  auto model = a.value("--model");
  auto json = a.value("--tokenizer");
  if (model && json) throw UsageError(cmd + ": give either --model or --tokenizer, not both");
  if (model) return Tokenizer::from_gguf(GgufFile::open(*model));
  if (json) return Tokenizer::from_hf_json(*json);
  throw UsageError(cmd + ": missing --model MODEL.gguf or --tokenizer tokenizer.json");
}

std::string read_stdin() {
  std::ostringstream ss;
  ss << std::cin.rdbuf();
  return ss.str();
}

}  // namespace

int run_tokenize(const std::vector<std::string>& args) {
  const std::string cmd = "tokenize";
  const ParsedArgs a = parse_args(cmd, args, {"--no-special"}, {"--model", "--tokenizer"});
  if (a.help) {
    std::fputs(
        "usage: peregrine-cli tokenize (--model M.gguf | --tokenizer tokenizer.json) [--no-special] < text\n"
        "prints a JSON array of token ids; --no-special spells control tokens out as text\n",
        stdout);
    return 0;
  }
  if (!a.positionals.empty()) throw UsageError(cmd + ": unexpected argument '" + a.positionals.front() + "'");
  const Tokenizer tok = load_tokenizer(cmd, a);
  EncodeOptions options;
  options.special = a.has("--no-special") ? SpecialTokens::UserDefinedOnly : SpecialTokens::All;
  const std::vector<int32_t> ids = tok.encode(read_stdin(), options);
  std::fputs((nlohmann::json(ids).dump() + "\n").c_str(), stdout);
  return 0;
}

int run_detokenize(const std::vector<std::string>& args) {
  const std::string cmd = "detokenize";
  const ParsedArgs a = parse_args(cmd, args, {}, {"--model", "--tokenizer"});
  if (a.help) {
    std::fputs("usage: peregrine-cli detokenize (--model M.gguf | --tokenizer tokenizer.json) < ids.json\n", stdout);
    return 0;
  }
  if (!a.positionals.empty()) throw UsageError(cmd + ": unexpected argument '" + a.positionals.front() + "'");
  const Tokenizer tok = load_tokenizer(cmd, a);
  std::vector<int32_t> ids;
  try {
    const nlohmann::json j = nlohmann::json::parse(read_stdin());
    if (!j.is_array()) throw Error("not an array");
    for (const auto& e : j) {
      if (!e.is_number_integer()) throw Error("an element is not an integer");
      const int64_t id = e.get<int64_t>();
      if (id < 0 || id >= tok.vocab_size())
        throw Error("id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(tok.vocab_size()) + ")");
      ids.push_back(static_cast<int32_t>(id));
    }
  } catch (const std::exception& e) {
    throw Error(std::string("stdin: expected a JSON array of token ids: ") + e.what());
  }
  const std::string text = tok.decode(ids);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace peregrine::cli
