// decode() and StreamingDecoder: skipping specials, U+FFFD for invalid bytes, never half a
// UTF-8 character in a streamed chunk.
#include <gtest/gtest.h>

#include "peregrine/tokenizer.h"
#include "test_tokenizer_corpus.h"

namespace peregrine {
namespace {

const std::string kReplacement = "\xEF\xBF\xBD";

class TokenizerDecode : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tokenizer_ = new Tokenizer(Tokenizer::from_hf_json(test::tokenizer_data_dir() + "/tokenizer.json"));
  }
  static void TearDownTestSuite() { delete tokenizer_; }

  // Id of the single-byte token for `byte`.
  static int32_t byte_token(unsigned char byte) {
    const auto id = tokenizer_->token_id(std::string(1, static_cast<char>(byte)));
    EXPECT_TRUE(id.has_value());
    return id.value_or(0);
  }

  // Well-formed UTF-8 per Unicode table 3-7 (written independently of the library's checker).
  static bool valid_utf8(const std::string& s) {
    size_t i = 0;
    while (i < s.size()) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x80) {
        ++i;
        continue;
      }
      size_t n;
      unsigned lo = 0x80, hi = 0xBF;
      if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
      } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
      } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
      } else {
        return false;
      }
      if (i + n > s.size()) return false;
      const auto second = static_cast<unsigned char>(s[i + 1]);
      if (second < lo || second > hi) return false;
      for (size_t k = 2; k < n; ++k) {
        if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
      }
      i += n;
    }
    return true;
  }

  static Tokenizer* tokenizer_;
};

Tokenizer* TokenizerDecode::tokenizer_ = nullptr;

TEST_F(TokenizerDecode, StreamingMatchesDecodeOnCorpus) {
  int passed = 0;
  size_t held_back = 0;  // how often a token ended inside a character
  for (const auto& line : test::read_corpus()) {
    const auto ids = line.expected.at("ids").get<std::vector<int32_t>>();
    StreamingDecoder stream(*tokenizer_);
    std::string text;
    bool chunks_valid = true;
    for (int32_t id : ids) {
      const std::string chunk = stream.push(id);
      chunks_valid = chunks_valid && valid_utf8(chunk);
      if (stream.pending_bytes() > 0) ++held_back;
      text += chunk;
    }
    text += stream.flush();
    EXPECT_TRUE(chunks_valid) << "line " << line.id;
    if (text == line.expected.at("decoded").get<std::string>() && chunks_valid) {
      ++passed;
    } else {
      ADD_FAILURE() << "line " << line.id << ": streamed text differs from the reference";
    }
  }
  std::printf("[ variant  ] %-18s %d/492 lines pass (%zu tokens ended mid-character)\n", "streamed", passed,
              held_back);
  EXPECT_EQ(passed, 492);
  EXPECT_GT(held_back, 0u);  // the corpus does split characters across tokens
}

TEST_F(TokenizerDecode, HoldsBackIncompleteCharacter) {
  StreamingDecoder stream(*tokenizer_);
  // "你" is E4 BD A0: fed one byte token at a time.
  EXPECT_EQ(stream.push(byte_token(0xE4)), "");
  EXPECT_EQ(stream.pending_bytes(), 1u);
  EXPECT_EQ(stream.push(byte_token(0xBD)), "");
  EXPECT_EQ(stream.push(byte_token(0xA0)), "\xE4\xBD\xA0");
  EXPECT_EQ(stream.pending_bytes(), 0u);
  EXPECT_EQ(stream.flush(), "");
}

TEST_F(TokenizerDecode, InvalidBytesBecomeReplacementCharacters) {
  const Tokenizer& t = *tokenizer_;
  // Truncated sequence followed by ASCII: one U+FFFD for the maximal subpart, then the text.
  const std::vector<int32_t> truncated{byte_token(0xE4), byte_token(0xBD), byte_token('a')};
  EXPECT_EQ(t.decode(truncated), kReplacement + "a");
  StreamingDecoder stream(t);
  std::string text;
  for (int32_t id : truncated) text += stream.push(id);
  EXPECT_EQ(text, kReplacement + "a");
  // A lone continuation byte and an impossible byte each give one U+FFFD.
  EXPECT_EQ(t.decode(std::vector<int32_t>{byte_token(0x80), byte_token(0xFF), byte_token('b')}),
            kReplacement + kReplacement + "b");
  // Surrogates (ED A0..BF) are ill-formed: ED alone is the maximal subpart, A0 another.
  EXPECT_EQ(t.decode(std::vector<int32_t>{byte_token(0xED), byte_token(0xA0), byte_token(0x80)}),
            kReplacement + kReplacement + kReplacement);
  // Incomplete at the end: decode() replaces it, the stream holds it until flush().
  EXPECT_EQ(t.decode(std::vector<int32_t>{byte_token('x'), byte_token(0xF0), byte_token(0x9F)}), "x" + kReplacement);
  StreamingDecoder tail(t);
  EXPECT_EQ(tail.push(byte_token('x')), "x");
  EXPECT_EQ(tail.push(byte_token(0xF0)), "");
  EXPECT_EQ(tail.push(byte_token(0x9F)), "");
  EXPECT_EQ(tail.pending_bytes(), 2u);
  EXPECT_EQ(tail.flush(), kReplacement);
  EXPECT_EQ(tail.pending_bytes(), 0u);
}

TEST_F(TokenizerDecode, StreamingEqualsWholeDecodeOnRandomBytes) {
  // Byte tokens drawn mostly from the bytes that matter to UTF-8 (leads, continuations,
  // impossible bytes, ASCII): chunked decoding must give exactly what decode() gives at once,
  // and every chunk must be valid UTF-8.
  const unsigned char pool[] = {'a', ' ', 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0,
                                0xE4, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF};
  uint32_t state = 12345;
  auto next = [&] {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  int mismatches = 0;
  for (int round = 0; round < 3000; ++round) {
    std::vector<int32_t> ids;
    const size_t length = 1 + next() % 10;
    for (size_t i = 0; i < length; ++i) ids.push_back(byte_token(pool[next() % sizeof pool]));
    StreamingDecoder stream(*tokenizer_);
    std::string streamed;
    bool chunks_valid = true;
    for (int32_t id : ids) {
      const std::string chunk = stream.push(id);
      chunks_valid = chunks_valid && valid_utf8(chunk);
      streamed += chunk;
    }
    const std::string tail = stream.flush();
    chunks_valid = chunks_valid && valid_utf8(tail);
    streamed += tail;
    const std::string whole = tokenizer_->decode(ids);
    if (streamed != whole || !chunks_valid || !valid_utf8(whole)) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0);
}

TEST_F(TokenizerDecode, SkipSpecialDropsOnlyHfSpecialTokens) {
  const Tokenizer& t = *tokenizer_;
  const std::string text = "<|im_start|>assistant\n<think>\nhm\n</think>\n\nHi<|im_end|><|endoftext|><|fim_prefix|>";
  const auto ids = t.encode(text);
  EXPECT_EQ(t.decode(ids), text);
  // HF skip_special_tokens: special=true tokens go; <think> and <|fim_prefix|> (special=false) stay.
  EXPECT_EQ(t.decode(ids, DecodeOptions::skipping_special()), "assistant\n<think>\nhm\n</think>\n\nHi<|fim_prefix|>");
  StreamingDecoder stream(t, DecodeOptions::skipping_special());
  std::string streamed;
  for (int32_t id : ids) streamed += stream.push(id);
  streamed += stream.flush();
  EXPECT_EQ(streamed, "assistant\n<think>\nhm\n</think>\n\nHi<|fim_prefix|>");
}

TEST_F(TokenizerDecode, RejectsBadIds) {
  EXPECT_THROW(tokenizer_->decode(std::vector<int32_t>{1, -5}), Error);
  EXPECT_THROW(tokenizer_->decode(std::vector<int32_t>{tokenizer_->vocab_size()}), Error);
  StreamingDecoder stream(*tokenizer_);
  EXPECT_THROW(stream.push(1 << 30), Error);
}

}  // namespace
}  // namespace peregrine
