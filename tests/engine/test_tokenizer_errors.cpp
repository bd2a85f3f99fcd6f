// Loading: both merge formats of tokenizer.json, and an Error naming the file and key for every
// kind of broken input (missing keys, bad JSON, unknown merge tokens, count mismatches).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "peregrine/tokenizer.h"

namespace peregrine {
namespace {

using nlohmann::json;

// GPT-2 byte-to-unicode spelling of one byte.
std::string byte_level(unsigned char b) {
  const bool itself = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
  unsigned cp = b;
  if (!itself) {
    unsigned next = 256;
    for (unsigned c = 0; c < b; ++c) {
      if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE)) ++next;
    }
    cp = next;
  }
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

// 256 byte tokens, merges h+e, l+l, he+ll, Ġ+w, then <|im_end|> (control) and <think>.
TokenizerData tiny_data() {
  TokenizerData d;
  d.source = "tiny";
  for (int b = 0; b < 256; ++b) {
    d.tokens.push_back(byte_level(static_cast<unsigned char>(b)));
    d.kinds.push_back(TokenKind::Normal);
  }
  for (const char* t : {"he", "ll", "hell", "\xC4\xA0w"}) {
    d.tokens.push_back(t);
    d.kinds.push_back(TokenKind::Normal);
  }
  d.merges = {{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"\xC4\xA0", "w"}};
  d.tokens.push_back("<|im_end|>");
  d.kinds.push_back(TokenKind::Control);
  d.tokens.push_back("<think>");
  d.kinds.push_back(TokenKind::UserDefined);
  d.skip_on_decode = {260};
  d.eos_id = 260;
  d.split_pattern = kQwen2SplitPattern;
  return d;
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("peregrine-tokenizer-test-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::filesystem::path write(const std::string& name, const std::string& content) const {
    std::ofstream(path_ / name, std::ios::binary) << content;
    return path_ / name;
  }

 private:
  std::filesystem::path path_;
};

json tiny_json(bool string_merges) {
  const TokenizerData d = tiny_data();
  json vocab = json::object();
  for (size_t id = 0; id < 260; ++id) vocab[d.tokens[id]] = id;
  json merges = json::array();
  for (const auto& [a, b] : d.merges) {
    if (string_merges) {
      merges.push_back(a + " " + b);
    } else {
      merges.push_back(json::array({a, b}));
    }
  }
  return json{
      {"added_tokens",
       json::array({json{{"id", 260}, {"content", "<|im_end|>"}, {"special", true}},
                    json{{"id", 261}, {"content", "<think>"}, {"special", false}}})},
      {"normalizer", json{{"type", "NFC"}}},
      {"pre_tokenizer",
       json{{"type", "Sequence"},
            {"pretokenizers",
             json::array({json{{"type", "Split"},
                               {"pattern", json{{"Regex", std::string(kQwen2SplitPattern)}}},
                               {"behavior", "Isolated"},
                               {"invert", false}},
                          json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}}},
      {"model", json{{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
  };
}

TEST(TokenizerLoad, TinyDataEncodesByRank) {
  const Tokenizer t = Tokenizer::from_data(tiny_data());
  EXPECT_EQ(t.encode("hello"), (std::vector<int32_t>{258, 'o'}));
  EXPECT_EQ(t.encode("hello wow<think><|im_end|>"),
            (std::vector<int32_t>{258, 'o', 259, 'o', 'w', 261, 260}));
  EXPECT_EQ(t.encode("<|im_end|>", EncodeOptions().with_special(SpecialTokens::UserDefinedOnly)).size(), 10u);
  EXPECT_EQ(t.decode(t.encode("hello <think>"), DecodeOptions::skipping_special()), "hello <think>");
  EXPECT_TRUE(t.is_end_of_generation(260));
  EXPECT_EQ(t.think(), 261);
}

TEST(TokenizerLoad, BosFollowsTheModelUnlessOverridden) {
  TokenizerData d = tiny_data();
  d.bos_id = 260;
  d.add_bos = true;
  const Tokenizer t = Tokenizer::from_data(d);
  EXPECT_EQ(t.encode("he"), (std::vector<int32_t>{260, 256}));
  EXPECT_EQ(t.encode("he", EncodeOptions().with_bos(false)), (std::vector<int32_t>{256}));
  const Tokenizer plain = Tokenizer::from_data(tiny_data());
  EXPECT_EQ(plain.encode("he"), (std::vector<int32_t>{256}));
  d.bos_id.reset();
  EXPECT_THROW(Tokenizer::from_data(d), Error);  // add_bos without a bos id
}

TEST(TokenizerLoad, BothMergeFormatsOfTokenizerJson) {
  TempDir dir;
  const auto pairs = dir.write("pairs.json", tiny_json(false).dump());
  const auto strings = dir.write("strings.json", tiny_json(true).dump());
  const Tokenizer a = Tokenizer::from_hf_json(pairs);
  const Tokenizer b = Tokenizer::from_hf_json(strings);
  for (const char* text : {"hello well", "<think>hell</think>", "wow<|im_end|>"}) {
    EXPECT_EQ(a.encode(text), b.encode(text)) << text;
  }
  EXPECT_EQ(a.encode("hello"), (std::vector<int32_t>{258, 'o'}));
  EXPECT_EQ(a.token_kind(260), TokenKind::Control);
  EXPECT_EQ(a.token_kind(261), TokenKind::UserDefined);
  EXPECT_EQ(a.decode(a.encode("x<|im_end|>"), DecodeOptions::skipping_special()), "x");
}

TEST(TokenizerLoad, JsonErrorsNameFileAndKey) {
  TempDir dir;
  const auto missing_file = error_of([&] { Tokenizer::from_hf_json("/nonexistent/tokenizer.json"); });
  EXPECT_NE(missing_file.find("/nonexistent/tokenizer.json"), std::string::npos) << missing_file;

  const auto bad = dir.write("bad.json", "{\"model\": [1, 2");
  const auto bad_json = error_of([&] { Tokenizer::from_hf_json(bad); });
  EXPECT_NE(bad_json.find("bad.json"), std::string::npos) << bad_json;
  EXPECT_NE(bad_json.find("invalid JSON"), std::string::npos) << bad_json;

  json no_vocab = tiny_json(false);
  no_vocab["model"].erase("vocab");
  const auto no_vocab_msg = error_of([&] { Tokenizer::from_hf_json(dir.write("novocab.json", no_vocab.dump())); });
  EXPECT_NE(no_vocab_msg.find("model.vocab"), std::string::npos) << no_vocab_msg;
  EXPECT_NE(no_vocab_msg.find("novocab.json"), std::string::npos) << no_vocab_msg;

  json bad_merge = tiny_json(true);
  bad_merge["model"]["merges"][2] = "hell";
  const auto bad_merge_msg = error_of([&] { Tokenizer::from_hf_json(dir.write("m.json", bad_merge.dump())); });
  EXPECT_NE(bad_merge_msg.find("model.merges[2]"), std::string::npos) << bad_merge_msg;

  json unknown = tiny_json(false);
  unknown["model"]["merges"].push_back(json::array({"q", "zz"}));
  const auto unknown_msg = error_of([&] { Tokenizer::from_hf_json(dir.write("u.json", unknown.dump())); });
  EXPECT_NE(unknown_msg.find("u.json"), std::string::npos) << unknown_msg;
  EXPECT_NE(unknown_msg.find("'zz'"), std::string::npos) << unknown_msg;

  json no_split = tiny_json(false);
  no_split["pre_tokenizer"] = json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  const auto no_split_msg = error_of([&] { Tokenizer::from_hf_json(dir.write("s.json", no_split.dump())); });
  EXPECT_NE(no_split_msg.find("pre_tokenizer"), std::string::npos) << no_split_msg;

  json gap = tiny_json(false);
  gap["added_tokens"][1]["id"] = 300;
  const auto gap_msg = error_of([&] { Tokenizer::from_hf_json(dir.write("g.json", gap.dump())); });
  EXPECT_NE(gap_msg.find("ids run to 300, but 262 tokens cannot fill them"), std::string::npos) << gap_msg;

  // A few bytes must not size a vocabulary of 16 million entries (512 MB) before the gap is
  // noticed (fuzz_tokenizer_json with -malloc_limit_mb=64 reports it).
  const auto huge_msg = error_of([&] {
    Tokenizer::load_hf_json_text(
        R"({"added_tokens": [{"id": 15999999, "content": "x"}], "model": {"vocab": {"a": 0}, "merges": []}})", "huge");
  });
  EXPECT_NE(huge_msg.find("huge: model.vocab: ids run to 15999999, but 2 tokens cannot fill them"), std::string::npos)
      << huge_msg;

  json hole = tiny_json(false);  // as many tokens as ids, one id twice: the hole is named
  hole["model"]["vocab"]["\u0100"] = 5;  // byte 0's token moved onto id 5
  const auto hole_msg = error_of([&] { Tokenizer::from_hf_json(dir.write("h.json", hole.dump())); });
  EXPECT_NE(hole_msg.find("id 5 is used twice"), std::string::npos) << hole_msg;
}

TEST(TokenizerLoad, JsonWrongTypesNameKeyExpectedAndActualType) {
  TempDir dir;
  auto message_for = [&](const char* name, const json& document) {
    return error_of([&] { Tokenizer::from_hf_json(dir.write(name, document.dump())); });
  };
  auto expect_parts = [](const std::string& message, std::initializer_list<const char*> parts) {
    for (const char* part : parts) EXPECT_NE(message.find(part), std::string::npos) << part << " in: " << message;
    EXPECT_EQ(message.find("missing"), std::string::npos) << message;
  };

  json merges_string = tiny_json(true);
  merges_string["model"]["merges"] = "h e";
  expect_parts(message_for("ms.json", merges_string), {"ms.json", "model.merges", "expected an array", "a string"});

  json vocab_list = tiny_json(false);
  vocab_list["model"]["vocab"] = json::array({"h", "e"});
  expect_parts(message_for("vl.json", vocab_list), {"vl.json", "model.vocab", "expected an object", "an array"});

  json id_string = tiny_json(false);
  id_string["added_tokens"][0]["id"] = "260";
  expect_parts(message_for("is.json", id_string), {"added_tokens[0].id", "expected an integer", "a string"});

  json content_number = tiny_json(false);
  content_number["added_tokens"][1]["content"] = 7;
  expect_parts(message_for("cn.json", content_number), {"added_tokens[1].content", "expected a string", "a number"});

  json added_object = tiny_json(false);
  added_object["added_tokens"] = json::object();
  expect_parts(message_for("ao.json", added_object), {"added_tokens", "expected an array", "an object"});

  json model_type = tiny_json(false);
  model_type["model"]["type"] = 5;
  expect_parts(message_for("mt.json", model_type), {"model.type", "expected a string", "a number"});

  json normalizer_type = tiny_json(false);
  normalizer_type["normalizer"] = json{{"type", json::array({1})}};
  expect_parts(message_for("nt.json", normalizer_type), {"normalizer.type", "expected a string", "an array"});

  json split_behavior = tiny_json(false);
  split_behavior["pre_tokenizer"]["pretokenizers"][0]["behavior"] = 1;
  expect_parts(message_for("sb.json", split_behavior), {"pre_tokenizer.Split.behavior", "expected a string", "a number"});

  json byte_level_flag = tiny_json(false);
  byte_level_flag["pre_tokenizer"]["pretokenizers"][1]["use_regex"] = "no";
  expect_parts(message_for("bl.json", byte_level_flag), {"pre_tokenizer.ByteLevel.use_regex", "true or false", "a string"});
}

TEST(TokenizerLoad, AddedTokenReusingAVocabIdIsNamed) {
  TempDir dir;
  json reused = tiny_json(false);
  reused["added_tokens"][1]["id"] = 65;  // byte token 'A' in model.vocab
  const auto message = error_of([&] { Tokenizer::from_hf_json(dir.write("r.json", reused.dump())); });
  EXPECT_NE(message.find("r.json: added_tokens[1]: '<think>' has id 65, which model.vocab already gives to 'A'"),
            std::string::npos)
      << message;

  json twice = tiny_json(false);
  twice["added_tokens"][1]["id"] = 260;  // the id of the first added token
  const auto twice_msg = error_of([&] { Tokenizer::from_hf_json(dir.write("t.json", twice.dump())); });
  EXPECT_NE(twice_msg.find("added_tokens[1]: '<think>' has id 260, which added_tokens already gives to '<|im_end|>'"),
            std::string::npos)
      << twice_msg;
}

TEST(TokenizerLoad, DataErrors) {
  TokenizerData types = tiny_data();
  types.kinds.pop_back();
  EXPECT_NE(error_of([&] { Tokenizer::from_data(types); }).find("261 token types for 262 tokens"), std::string::npos);

  TokenizerData merge = tiny_data();
  merge.merges.emplace_back("he", "xyz");
  const auto merge_msg = error_of([&] { Tokenizer::from_data(merge); });
  EXPECT_NE(merge_msg.find("merge 4 'he xyz' refers to unknown token 'xyz'"), std::string::npos) << merge_msg;

  TokenizerData result = tiny_data();
  result.merges.emplace_back("o", "w");  // both exist, "ow" does not
  EXPECT_NE(error_of([&] { Tokenizer::from_data(result); }).find("unknown token 'ow'"), std::string::npos);

  TokenizerData no_byte = tiny_data();
  no_byte.tokens[65] = "AA";
  EXPECT_NE(error_of([&] { Tokenizer::from_data(no_byte); }).find("no token for byte 65"), std::string::npos);

  TokenizerData alphabet = tiny_data();
  alphabet.tokens[257] = "\xE4\xBD\xA0";  // a raw CJK character is not a byte-level spelling
  EXPECT_NE(error_of([&] { Tokenizer::from_data(alphabet); }).find("not in the byte-level BPE alphabet"),
            std::string::npos);

  TokenizerData regex = tiny_data();
  regex.split_pattern = "(unclosed";
  const auto regex_msg = error_of([&] { Tokenizer::from_data(regex); });
  EXPECT_NE(regex_msg.find("tiny: pre-tokenizer regex does not compile"), std::string::npos) << regex_msg;

  TokenizerData eos = tiny_data();
  eos.eos_id = 1000;
  EXPECT_NE(error_of([&] { Tokenizer::from_data(eos); }).find("eos token id 1000"), std::string::npos);

  TokenizerData empty;
  empty.source = "empty";
  EXPECT_NE(error_of([&] { Tokenizer::from_data(empty); }).find("empty: the vocabulary is empty"), std::string::npos);
}

}  // namespace
}  // namespace peregrine
