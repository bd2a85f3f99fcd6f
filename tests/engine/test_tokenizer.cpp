// The Qwen3 tokenizer.json against Hugging Face's ids for 492 hard strings, in every variant
// of tests/data/tokenizer-qwen3/README.md.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "peregrine/tokenizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "test_tokenizer_corpus.h"

namespace peregrine {
namespace {

class QwenTokenizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto started = std::chrono::steady_clock::now();
    TokenizerData data = Tokenizer::load_hf_json(test::tokenizer_data_dir() + "/tokenizer.json");
    qwen3_ = new Tokenizer(Tokenizer::from_data(data));
    load_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    data.split_pattern = kQwen35SplitPattern;
    qwen35_ = new Tokenizer(Tokenizer::from_data(std::move(data)));
    corpus_ = new std::vector<test::CorpusLine>(test::read_corpus());
  }
  static void TearDownTestSuite() {
    delete qwen3_;
    delete qwen35_;
    delete corpus_;
  }

  // Encodes every corpus line and compares with expected[key]; reports the pass count.
  static void check_variant(const Tokenizer& tokenizer, const EncodeOptions& options, const char* key) {
    int passed = 0;
    int reported = 0;
    for (const auto& line : *corpus_) {
      const auto expected = line.expected.at(key).get<std::vector<int32_t>>();
      const auto ids = tokenizer.encode(line.text, options);
      if (ids == expected) {
        ++passed;
      } else if (reported++ < 10) {
        ADD_FAILURE() << key << ": line " << line.id << " (" << line.tag << ") differs: got "
                      << ::testing::PrintToString(ids) << " expected " << ::testing::PrintToString(expected);
      }
    }
    std::printf("[ variant  ] %-18s %d/%zu lines pass\n", key, passed, corpus_->size());
    EXPECT_EQ(passed, static_cast<int>(corpus_->size())) << key;
  }

  static Tokenizer* qwen3_;
  static Tokenizer* qwen35_;
  static std::vector<test::CorpusLine>* corpus_;
  static double load_ms_;
};

Tokenizer* QwenTokenizer::qwen3_ = nullptr;
Tokenizer* QwenTokenizer::qwen35_ = nullptr;
std::vector<test::CorpusLine>* QwenTokenizer::corpus_ = nullptr;
double QwenTokenizer::load_ms_ = 0;

TEST_F(QwenTokenizer, CorpusHasAllLines) { ASSERT_EQ(corpus_->size(), 492u); }

TEST_F(QwenTokenizer, LoadsQuickly) {
  std::printf("[ load     ] tokenizer.json (11 MB) parsed and built in %.0f ms\n", load_ms_);
  EXPECT_EQ(qwen3_->vocab_size(), 151669);
  // A generous bound for a RelWithDebInfo build on a loaded 2-core machine; typical is far less.
  EXPECT_LT(load_ms_, 3000.0);
}

TEST_F(QwenTokenizer, Ids) { check_variant(*qwen3_, {}, "ids"); }

TEST_F(QwenTokenizer, IdsNoSpecial) { check_variant(*qwen3_, EncodeOptions().with_special(SpecialTokens::None), "ids_no_special"); }

TEST_F(QwenTokenizer, IdsNoControl) {
  check_variant(*qwen3_, EncodeOptions().with_special(SpecialTokens::UserDefinedOnly), "ids_no_control");
}

TEST_F(QwenTokenizer, IdsNoNfc) { check_variant(*qwen3_, EncodeOptions().with_nfc(false), "ids_no_nfc"); }

TEST_F(QwenTokenizer, IdsQwen35Regex) { check_variant(*qwen35_, {}, "ids_qwen35"); }

TEST_F(QwenTokenizer, IdsQwen35RegexNoNfc) { check_variant(*qwen35_, EncodeOptions().with_nfc(false), "ids_qwen35_no_nfc"); }

TEST_F(QwenTokenizer, DecodeOfEncodeIsNfcOfText) {
  int passed = 0;
  for (const auto& line : *corpus_) {
    const auto expected = line.expected.at("decoded").get<std::string>();
    const std::string decoded = qwen3_->decode(qwen3_->encode(line.text));
    if (decoded == expected) {
      ++passed;
    } else {
      ADD_FAILURE() << "line " << line.id << ": decode(encode(text)) differs from NFC(text)";
    }
    // Without NFC nothing at all is lost.
    EXPECT_EQ(qwen3_->decode(qwen3_->encode(line.text, EncodeOptions().with_nfc(false))), line.text) << "line " << line.id;
  }
  std::printf("[ variant  ] %-18s %d/%zu lines pass\n", "decoded", passed, corpus_->size());
  EXPECT_EQ(passed, static_cast<int>(corpus_->size()));
}

TEST_F(QwenTokenizer, NamedSpecialTokens) {
  const Tokenizer& t = *qwen3_;
  EXPECT_EQ(t.end_of_text(), 151643);
  EXPECT_EQ(t.im_start(), 151644);
  EXPECT_EQ(t.im_end(), 151645);
  EXPECT_EQ(t.think(), 151667);
  EXPECT_EQ(t.end_think(), 151668);
  // From tokenizer_config.json: eos <|im_end|>, pad <|endoftext|>, no bos, add_bos_token false.
  EXPECT_EQ(t.eos(), 151645);
  EXPECT_EQ(t.pad(), 151643);
  EXPECT_EQ(t.bos(), std::nullopt);
  EXPECT_FALSE(t.adds_bos());
  EXPECT_TRUE(t.uses_nfc());
  EXPECT_TRUE(t.is_end_of_generation(151645));
  EXPECT_TRUE(t.is_end_of_generation(151643));
  EXPECT_FALSE(t.is_end_of_generation(151644));
  EXPECT_FALSE(t.is_end_of_generation(151668));
  EXPECT_EQ(t.token_kind(151644), TokenKind::Control);
  EXPECT_EQ(t.token_kind(151659), TokenKind::Control);  // <|fim_prefix|>: not special in HF, control in GGUF
  EXPECT_EQ(t.token_kind(151667), TokenKind::UserDefined);
  EXPECT_EQ(t.token_kind(9707), TokenKind::Normal);
}

TEST_F(QwenTokenizer, PiecesAreRawBytes) {
  const Tokenizer& t = *qwen3_;
  EXPECT_EQ(t.token_piece(9707), "Hello");
  EXPECT_EQ(t.token_piece(1879), " world");
  EXPECT_EQ(t.token_piece(220), " ");
  EXPECT_EQ(t.token_piece(198), "\n");
  EXPECT_EQ(t.token_piece(151644), "<|im_start|>");
  EXPECT_EQ(t.token_id(" world"), 1879);
  EXPECT_EQ(t.token_id("<think>"), 151667);
  EXPECT_EQ(t.token_id("no such token in the vocabulary"), std::nullopt);
  EXPECT_THROW(t.token_piece(-1), Error);
  EXPECT_THROW(t.token_piece(151669), Error);
}

TEST_F(QwenTokenizer, AddedTokensLongestMatchOnRawText) {
  const Tokenizer& t = *qwen3_;
  EXPECT_EQ(t.encode("<|im_start|>user\n"), (std::vector<int32_t>{151644, 872, 198}));
  // Near misses are plain text.
  for (const char* text : {"<|IM_START|>", "< |im_start|>", "<think >", "<|im_start|"}) {
    for (int32_t id : t.encode(text)) EXPECT_LT(id, 151643) << text;
  }
  // Control tokens spelled out, user-defined ones still matched.
  const auto ids = t.encode("<|im_end|><think>", EncodeOptions().with_special(SpecialTokens::UserDefinedOnly));
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids.back(), 151667);
  EXPECT_NE(ids.front(), 151645);
  EXPECT_EQ(t.decode(ids), "<|im_end|><think>");
}

std::vector<std::string> split(std::string_view pattern, std::string_view text) {
  tokenizer_detail::RegexSplitter splitter(pattern, "test");
  std::vector<std::string_view> pieces;
  splitter.split(text, pieces);
  return {pieces.begin(), pieces.end()};
}

TEST(PreTokenizer, WhiteSpaceIsUnicodeWhiteSpace) {
  using V = std::vector<std::string>;
  const std::string mvs = "\xE1\xA0\x8E";  // U+180E
  const std::string nel = "\xC2\x85";       // U+0085
  const std::string bom = "\xEF\xBB\xBF";  // U+FEFF
  // U+180E has not been White_Space since Unicode 6.3 (PCRE2's UCP \s still matches it): it
  // groups like punctuation. As a space it would give " " | "\u180eword".
  EXPECT_EQ(split(kQwen2SplitPattern, "a " + mvs + "word"), (V{"a", " " + mvs, "word"}));
  // U+0085 is White_Space, U+FEFF is not (corpus lines 78 and 85).
  EXPECT_EQ(split(kQwen2SplitPattern, "  " + nel), (V{"  " + nel}));
  EXPECT_EQ(split(kQwen2SplitPattern, "  " + bom), (V{" ", " " + bom}));
  EXPECT_EQ(split(kQwen2SplitPattern, "Hello world's 123!!\n\n  x"),
            (V{"Hello", " world", "'s", " ", "1", "2", "3", "!!\n\n", " ", " x"}));
  // \p{M} joins letters only in the Qwen3.5 pattern (NFD "e" + U+0301).
  EXPECT_EQ(split(kQwen2SplitPattern, "ce\xCC\x81t"), (V{"ce", "\xCC\x81t"}));
  EXPECT_EQ(split(kQwen35SplitPattern, "ce\xCC\x81t"), (V{"ce\xCC\x81t"}));
}

TEST(PreTokenizer, GapsBetweenMatchesArePieces) {
  using V = std::vector<std::string>;
  EXPECT_EQ(split("[0-9]+", "ab12cd3"), (V{"ab", "12", "cd", "3"}));
  EXPECT_EQ(split("x*", "abx"), (V{"ab", "x"}));  // empty matches split nothing
}

TEST(PreTokenizer, WhiteSpaceRewriteKeepsClassesIntact) {
  using tokenizer_detail::with_unicode_white_space;
  EXPECT_EQ(with_unicode_white_space(R"(a\d[\]\\s])"), R"(a\d[\]\\s])");  // escaped backslash, not \s
  // A ']' right after '[' is a member, so the \s after it is inside the class.
  EXPECT_EQ(with_unicode_white_space("[]\\s]").rfind("[]\\t-\\r", 0), 0u);
  const std::string rewritten = with_unicode_white_space(R"([^\s\p{L}]|\s+(?!\S))");
  EXPECT_EQ(rewritten.find("\\s"), std::string::npos);
  EXPECT_EQ(rewritten.find("\\S"), std::string::npos);
  EXPECT_EQ(rewritten.find("[^\\t-\\r"), 0u);
}

TEST_F(QwenTokenizer, LongWordsAreNotQuadratic) {
  // 200 KB without a split point: a single pre-token. Must finish fast and round-trip.
  std::string word(200'000, 'a');
  for (size_t i = 0; i < word.size(); i += 7) word[i] = static_cast<char>('a' + i % 26);
  const auto started = std::chrono::steady_clock::now();
  const auto ids = qwen3_->encode(word);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  EXPECT_EQ(qwen3_->decode(ids), word);
  EXPECT_LT(ms, 2000.0);
}

TEST_F(QwenTokenizer, EmptyAndInvalidInput) {
  EXPECT_TRUE(qwen3_->encode("").empty());
  EXPECT_EQ(qwen3_->decode(std::vector<int32_t>{}), "");
  EXPECT_THROW(qwen3_->encode("bad \xC3( utf-8"), Error);
  EXPECT_THROW(qwen3_->encode("\xED\xA0\x80"), Error);  // a surrogate
}

TEST_F(QwenTokenizer, ConstMethodsAreThreadSafe) {
  std::vector<std::thread> threads;
  std::vector<int> mismatches(3, 0);
  for (int k = 0; k < 3; ++k) {
    threads.emplace_back([&, k] {
      for (const auto& line : *corpus_) {
        const Tokenizer& t = k == 2 ? *qwen35_ : *qwen3_;
        const char* key = k == 2 ? "ids_qwen35" : "ids";
        if (t.encode(line.text) != line.expected.at(key).get<std::vector<int32_t>>()) ++mismatches[k];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches, (std::vector<int>{0, 0, 0}));
}

}  // namespace
}  // namespace peregrine
