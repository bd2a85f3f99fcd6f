// Finds added tokens (<|im_start|>, <think>, ...) in raw text: leftmost match first, and the
// longest one among those starting at the same byte (HF's LeftmostLongest), before any
// normalization. Which tokens take part is chosen per call.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "peregrine/tokenizer.h"

namespace peregrine::tokenizer_detail {

struct TextSegment {
  std::string_view text;  // the matched token's text, or plain text between tokens
  int32_t token = -1;     // id of the added token, or -1 for plain text
};

class AddedTokenMatcher {
 public:
  void add(int32_t id, std::string text, TokenKind kind);

  // Cuts `text` into plain-text runs and added tokens (appended to `out` in order).
  void split(std::string_view text, SpecialTokens which, std::vector<TextSegment>& out) const;

  bool empty() const { return tokens_.empty(); }

 private:
  struct Token {
    std::string text;
    int32_t id;
    TokenKind kind;
  };
  bool participates(const Token& t, SpecialTokens which) const;

  std::vector<Token> tokens_;
  // Per first byte: indexes into tokens_, longest text first.
  std::array<std::vector<uint32_t>, 256> by_first_byte_;
};

}  // namespace peregrine::tokenizer_detail
